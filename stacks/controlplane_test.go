package stacks_test

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/dataplane"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/stacks"
)

// The buckets are stateful (configuration history, released builds): a
// changed logical ID would make CloudFormation replace them.
func TestControlPlaneBucketsArePinnedRetainedAndBound(t *testing.T) {
	b := load(t)
	for i, f := range b.sys.Fleets {
		s := f.ControlPlane
		if s == nil {
			t.Fatalf("fleet %s has no control-plane stack", f.Config.Name)
		}
		if want := b.cfg.StackName(f.Config.Name, "control"); *s.StackName() != want {
			t.Errorf("stack name %s, want %s", *s.StackName(), want)
		}
		if *s.Account() != b.cfg.Fleets[i].Account || *s.Region() != b.cfg.Fleets[i].Region {
			t.Errorf("%s is in %s/%s, want the fleet's", *s.StackName(), *s.Account(), *s.Region())
		}
		tmpl := cdktest.Template(t, s.Stack)
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::S3::Bucket",
			"ControlPlaneAccessLogsF316084C", "ControlPlaneArtifactsBucketB69ADED2", "ControlPlaneConfigBucketAC5F7B11")
		for id, r := range cdktest.Resources(t, tmpl, "AWS::S3::Bucket") {
			if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("%s bucket %s is not retained: %v/%v", *s.StackName(), id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
			}
		}
		// The release signing key is pinned by every agent: never replaced,
		// never deleted with the stack, and its ARN is an output.
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::KMS::Key", "AlarmTopicKeyBA1A4AA7", "ControlPlaneReleaseSigningKey8EC33FE2")
		key := cdktest.Resources(t, tmpl, "AWS::KMS::Key")["ControlPlaneReleaseSigningKey8EC33FE2"]
		if key["DeletionPolicy"] != "Retain" || key["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s: the release signing key is not retained", *s.StackName())
		}
		outs, _ := cdktest.TemplateJSON(t, s.Stack)["Outputs"].(map[string]any)
		if ref := cdktest.Get[string](t, outs, stacks.ReleaseSigningKeyOutput, "Value", "Fn::GetAtt", 0); ref != "ControlPlaneReleaseSigningKey8EC33FE2" {
			t.Errorf("%s output %s = %s", *s.StackName(), stacks.ReleaseSigningKeyOutput, ref)
		}
		if outs[stacks.ArtifactsBucketOutput] == nil {
			t.Errorf("%s has no %s output", *s.StackName(), stacks.ArtifactsBucketOutput)
		}
		if s.ControlPlane.ArtifactsBucket() == nil || *s.ControlPlane.ReleasePrefix() != "releases/" {
			t.Error("artifacts bucket or release prefix not exposed")
		}
	}
}

// The real app runs with cdk.json's feature flags, which change how some
// ARNs render (enablePartitionLiterals): the suppressions must match both.
func TestControlPlaneIsNagCleanWithTheAppsFeatureFlags(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: cdkJSONContext(t)})
	f := load(t).cfg.Fleets[0]
	s := stacks.NewControlPlaneStack(app, "flags-control", &stacks.ControlPlaneStackProps{
		StackProps:      awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}},
		Fleet:           f,
		ReleaseChannels: []string{"stable"},
	})
	cdktest.ApplyNag(app)
	app.Synth(nil)
	cdktest.NoNagFindings(t, s.Stack)
}

// The telemetry rule (contract/telemetry) in the synthesized template: its
// name, SQL and version, the Kinesis action with one partition key per
// agent on the stack's own encrypted stream (aws/kinesis), the SQS error action on the
// dead-letter queue, and the alarm on that queue.
func TestDataPlaneTelemetryRule(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := cdktest.Template(t, f.ControlPlane.Stack)
		rules := cdktest.Resources(t, tmpl, "AWS::IoT::TopicRule")
		if len(rules) != 3 {
			t.Fatalf("%d topic rules, want 3 (telemetry, presence, presence status)", len(rules))
		}
		statusRule := ""
		for id, r := range rules {
			p := r["Properties"].(map[string]any)
			if p["RuleName"] == status.RuleName {
				statusRule = id
				pl := p["TopicRulePayload"].(map[string]any)
				acts := pl["Actions"].([]any)
				l, _ := acts[0].(map[string]any)["Lambda"].(map[string]any)
				sqs, _ := pl["ErrorAction"].(map[string]any)["Sqs"].(map[string]any)
				if pl["Sql"] != "SELECT version, connectedAt, topic(1) AS customer, topic(2) AS thing, timestamp() AS receivedAt FROM '+/+/up/status' WHERE isUndefined(version) = false" ||
					pl["AwsIotSqlVersion"] != "2016-03-23" || pl["RuleDisabled"] != false || len(acts) != 1 || l == nil ||
					!refersTo(l["FunctionArn"], "DataPlanePresenceHandler") || sqs == nil || !refersTo(sqs["QueueUrl"], "DataPlaneTelemetryDeadLetters") {
					t.Errorf("presence status rule %v", pl)
				}
				continue
			}
			if p["RuleName"] == dataplane.PresenceRuleName {
				pl := p["TopicRulePayload"].(map[string]any)
				acts := pl["Actions"].([]any)
				l, _ := acts[0].(map[string]any)["Lambda"].(map[string]any)
				sqs, _ := pl["ErrorAction"].(map[string]any)["Sqs"].(map[string]any)
				if pl["Sql"] != "SELECT * FROM '$aws/events/presence/+/+' WHERE NOT startswith(clientId, 'enrol:')" || len(acts) != 1 || l == nil || !refersTo(l["FunctionArn"], "DataPlanePresenceHandler") ||
					sqs == nil || !refersTo(sqs["QueueUrl"], "DataPlaneTelemetryDeadLetters") {
					t.Errorf("presence rule %v", pl)
				}
				continue
			}
			pl := p["TopicRulePayload"].(map[string]any)
			if p["RuleName"] != telemetry.RuleName || pl["Sql"] != telemetry.SQL || pl["AwsIotSqlVersion"] != "2016-03-23" || pl["RuleDisabled"] != false {
				t.Errorf("rule %v", p)
			}
			acts := pl["Actions"].([]any)
			if len(acts) != 1 {
				t.Fatalf("%d actions", len(acts))
			}
			k, _ := acts[0].(map[string]any)["Kinesis"].(map[string]any)
			if k == nil || k["PartitionKey"] != "${topic(1)}/${topic(2)}" || !refersTo(k["StreamName"], "DataPlaneTelemetryStream") {
				t.Errorf("kinesis action %v", acts[0])
			}
			sqs, _ := pl["ErrorAction"].(map[string]any)["Sqs"].(map[string]any)
			if sqs == nil || !refersTo(sqs["QueueUrl"], "DataPlaneTelemetryDeadLetters") || sqs["UseBase64"] != false {
				t.Errorf("error action %v", pl["ErrorAction"])
			}
		}
		// The status rule may invoke the presence Lambda, and only with its own ARN.
		allowed := false
		for _, pm := range cdktest.Resources(t, tmpl, "AWS::Lambda::Permission") {
			p := pm["Properties"].(map[string]any)
			if p["Principal"] == "iot.amazonaws.com" && refersTo(p["FunctionName"], "DataPlanePresenceHandler") && statusRule != "" && refersTo(p["SourceArn"], statusRule) {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("no Lambda permission for the presence status rule %q", statusRule)
		}
		for _, s := range cdktest.Resources(t, tmpl, "AWS::Kinesis::Stream") {
			p := s["Properties"].(map[string]any)
			enc, _ := p["StreamEncryption"].(map[string]any)
			if enc["EncryptionType"] != "KMS" || enc["KeyId"] != "alias/aws/kinesis" {
				t.Errorf("stream encryption %v", p["StreamEncryption"])
			}
		}
		for _, tb := range cdktest.Resources(t, tmpl, "AWS::DynamoDB::Table") {
			p := tb["Properties"].(map[string]any)
			if !refersTo(p["KeySchema"], "customer") || !refersTo(p["KeySchema"], "thing") || tb["DeletionPolicy"] != "Retain" {
				t.Errorf("presence table %v (deletion %v)", p["KeySchema"], tb["DeletionPolicy"])
			}
		}
		alarmed := false
		for _, a := range cdktest.Resources(t, tmpl, "AWS::CloudWatch::Alarm") {
			p := a["Properties"].(map[string]any)
			if fmt.Sprint(p["MetricName"]) == "ApproximateNumberOfMessagesVisible" && refersTo(p["Dimensions"], "DataPlaneTelemetryDeadLetters") && len(p["AlarmActions"].([]any)) == 1 {
				alarmed = true
			}
		}
		if !alarmed {
			t.Error("no alarm with an action on the telemetry dead-letter queue")
		}
	}
}

// refersTo reports whether a template value mentions a logical ID starting with prefix.
func refersTo(v any, prefix string) bool {
	b, _ := json.Marshal(v)
	return strings.Contains(string(b), `"`+prefix)
}

// Across every template of the app, kms:Sign (or a wildcard covering it)
// is allowed in exactly one statement per fleet: the release signing key's
// policy, for the release publisher's role. No identity policy (the agents'
// role included) and no other key allows it.
func TestOnlyTheReleasePublisherCanSignReleases(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	signers := 0
	for _, s := range allStacks(b) {
		name := *s.StackName()
		for id, r := range tmpls[name]["Resources"].(map[string]any) {
			statements(r, func(path string, st map[string]any) {
				if st["Effect"] != "Allow" {
					return
				}
				raw, _ := json.Marshal(st["Action"])
				acts := string(raw)
				if !strings.Contains(acts, `"kms:Sign"`) && !strings.Contains(acts, `"kms:*"`) && !strings.Contains(acts, `"*"`) && !strings.Contains(acts, `"kms:S*"`) {
					return
				}
				typ, _ := r.(map[string]any)["Type"].(string)
				principal, _ := json.Marshal(st["Principal"])
				if typ == "AWS::KMS::Key" && id == "ControlPlaneReleaseSigningKey8EC33FE2" && acts == `"kms:Sign"` &&
					strings.Contains(string(principal), "ControlPlaneReleasePublisherServiceRole") {
					signers++
					return
				}
				if typ == "AWS::KMS::Key" && id != "ControlPlaneReleaseSigningKey8EC33FE2" {
					return // other keys (the alarm topic's) are not signing keys: SIGN_VERIFY is only this one
				}
				t.Errorf("%s/%s %s allows %s to %s", name, id, path, principal, acts)
			})
		}
	}
	if signers != len(b.sys.Fleets) {
		t.Errorf("%d publisher signing statements, want one per fleet (%d)", signers, len(b.sys.Fleets))
	}
}

// The presence Lambda's role allows only what the handler calls: GetItem
// and UpdateItem on the presence table (a TransactWriteItems of Update
// actions is authorized as UpdateItem), DescribeThing, and writing its logs.
func TestDataPlanePresenceHandlerPermissions(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := cdktest.Template(t, f.ControlPlane.Stack)
		var actions []string
		for id, pol := range cdktest.Resources(t, tmpl, "AWS::IAM::Policy") {
			if !strings.HasPrefix(id, "DataPlanePresenceHandler") {
				continue
			}
			for _, st := range cdktest.Objects(t, pol, "Properties", "PolicyDocument", "Statement") {
				var acts []string
				switch a := st["Action"].(type) {
				case string:
					acts = []string{a}
				case []any:
					for _, x := range a {
						acts = append(acts, x.(string))
					}
				}
				for _, a := range acts {
					if strings.HasPrefix(a, "dynamodb:") && !refersTo(st["Resource"], "DataPlanePresenceTable") {
						t.Errorf("%s on %v, want only the presence table", a, st["Resource"])
					}
				}
				actions = append(actions, acts...)
			}
		}
		sort.Strings(actions)
		if got := strings.Join(actions, ","); got != "dynamodb:GetItem,dynamodb:UpdateItem,iot:DescribeThing,logs:CreateLogStream,logs:PutLogEvents" {
			t.Errorf("presence handler actions %s", got)
		}
	}
}
