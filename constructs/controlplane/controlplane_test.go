package controlplane_test

import (
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/controlplane"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

type fixture struct {
	stack awscdk.Stack
	cp    controlplane.ControlPlane
}

var unit = sync.OnceValue(func() fixture {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("ControlPlaneTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	topic := awssns.NewTopic(stack, jsii.String("Alarms"), nil)
	cp := controlplane.New(stack, jsii.String("ControlPlane"), &controlplane.Props{ReleaseChannels: jsii.Strings("stable", "beta"), AlarmTopic: topic})
	agents := awsiam.NewRole(stack, jsii.String("AgentRole"), &awsiam.RoleProps{AssumedBy: awsiam.NewServicePrincipal(jsii.String("credentials.iot.amazonaws.com"), nil)})
	cp.GrantReadReleases(agents)
	return fixture{stack, cp}
})

func tmpl(t *testing.T) assertions.Template { return cdktest.Template(t, unit().stack) }

func TestBucketsAreVersionedPrivateAndSSLOnly(t *testing.T) {
	tm := tmpl(t)
	buckets := cdktest.Resources(t, tm, "AWS::S3::Bucket")
	if len(buckets) != 3 {
		t.Fatalf("%d buckets, want config, artifacts and access logs", len(buckets))
	}
	versioned := 0
	for id, b := range buckets {
		p := cdktest.Properties(t, b)
		pab, _ := json.Marshal(p["PublicAccessBlockConfiguration"])
		if string(pab) != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` {
			t.Errorf("%s: public access not fully blocked: %s", id, pab)
		}
		if vc, ok := p["VersioningConfiguration"].(map[string]any); ok && vc["Status"] == "Enabled" {
			versioned++
			if p["LoggingConfiguration"] == nil {
				t.Errorf("%s: versioned bucket without server access logs", id)
			}
		}
		if p["BucketEncryption"] == nil {
			t.Errorf("%s: no default encryption", id)
		}
	}
	if versioned != 2 {
		t.Errorf("%d versioned buckets, want 2 (config, artifacts)", versioned)
	}
	// Every bucket's policy denies requests without TLS.
	policies := cdktest.Resources(t, tm, "AWS::S3::BucketPolicy")
	if len(policies) != 3 {
		t.Fatalf("%d bucket policies, want 3", len(policies))
	}
	for id, p := range policies {
		doc, _ := json.Marshal(p["Properties"].(map[string]any)["PolicyDocument"])
		if !strings.Contains(string(doc), `"Condition":{"Bool":{"aws:SecureTransport":"false"}},"Effect":"Deny"`) {
			t.Errorf("%s: no Deny on aws:SecureTransport=false: %s", id, doc)
		}
	}
}

func TestQueuesHaveDLQsWithMaxReceiveCountAndAlarms(t *testing.T) {
	tm := tmpl(t)
	queues := cdktest.Resources(t, tm, "AWS::SQS::Queue")
	var redriven, dlqs []string
	for id, q := range queues {
		p, _ := q["Properties"].(map[string]any)
		if rp, ok := p["RedrivePolicy"].(map[string]any); ok {
			if rp["maxReceiveCount"] != float64(5) {
				t.Errorf("%s: maxReceiveCount %v, want 5", id, rp["maxReceiveCount"])
			}
			target := cdktest.Get[string](t, rp, "deadLetterTargetArn", "Fn::GetAtt", 0)
			dlqs = append(dlqs, target)
			redriven = append(redriven, id)
		}
		if p["SqsManagedSseEnabled"] != true {
			t.Errorf("%s: not encrypted with SSE-SQS", id)
		}
	}
	if len(redriven) != 2 {
		t.Fatalf("queues with a DLQ: %v; want the config and release queues", redriven)
	}
	alarms := cdktest.Resources(t, tm, "AWS::CloudWatch::Alarm")
	for _, dlq := range dlqs {
		found := false
		for _, a := range alarms {
			p := cdktest.Properties(t, a)
			dims, _ := json.Marshal(p["Dimensions"])
			if p["MetricName"] == "ApproximateNumberOfMessagesVisible" && strings.Contains(string(dims), `"`+dlq+`"`) && p["Threshold"] == float64(1) {
				found = true
			}
		}
		if !found {
			t.Errorf("no depth alarm on DLQ %s", dlq)
		}
	}
	cdktest.Must(t, func() {
		tm.ResourcePropertiesCountIs(jsii.String("AWS::Lambda::EventSourceMapping"), map[string]any{
			"FunctionResponseTypes": []string{"ReportBatchItemFailures"},
		}, jsii.Number(2))
	})
}

func TestPublishersAreArm64GoFunctions(t *testing.T) {
	cdktest.Must(t, func() {
		tmpl(t).ResourcePropertiesCountIs(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Runtime": "provided.al2023", "Architectures": []string{"arm64"}, "Handler": "bootstrap",
			"LoggingConfig": assertions.Match_ObjectLike(&map[string]any{"LogFormat": "JSON"}),
		}, jsii.Number(2))
	})
}

// Each publisher gets exactly the variables it reads at cold start (their
// names are package lambdaenv's, shared with the Lambdas' mains), and the
// optional iot-data endpoint only when the props give one.
func TestPublishersGetTheEnvironmentTheyRead(t *testing.T) {
	want := map[string]map[string]bool{
		"configuration": {lambdaenv.ConfigBucket: true, lambdaenv.FanoutQueueURL: true},
		"releases":      {lambdaenv.ArtifactsBucket: true, lambdaenv.ReleaseChannels: true, lambdaenv.ReleaseSigningKey: true},
	}
	seen := 0
	for id, fn := range cdktest.Resources(t, tmpl(t), "AWS::Lambda::Function") {
		var p struct {
			Description string
			Environment struct{ Variables map[string]any }
		}
		b, _ := json.Marshal(fn["Properties"])
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		for what, names := range want {
			if !strings.HasPrefix(p.Description, "agentgate:") || !strings.Contains(p.Description, what) {
				continue
			}
			seen++
			got := map[string]bool{}
			for k := range p.Environment.Variables {
				got[k] = true
			}
			if !maps.Equal(got, names) {
				t.Errorf("%s (%s): environment %v, want exactly %v", id, what, p.Environment.Variables, names)
			}
			if what == "releases" && p.Environment.Variables[lambdaenv.ReleaseChannels] != strings.Join([]string{"stable", "beta"}, lambdaenv.ListSeparator) {
				t.Errorf("%s: %s = %v, want the props' channels joined by %q", id, lambdaenv.ReleaseChannels, p.Environment.Variables[lambdaenv.ReleaseChannels], lambdaenv.ListSeparator)
			}
		}
	}
	if seen != len(want) {
		t.Fatalf("found %d publishers by description, want %d", seen, len(want))
	}
}

func TestS3EventsReachTheQueues(t *testing.T) {
	cdktest.Must(t, func() {
		tmpl(t).HasResourceProperties(jsii.String("Custom::S3BucketNotifications"), map[string]any{
			"NotificationConfiguration": map[string]any{"QueueConfigurations": assertions.Match_ArrayWith(&[]any{
				assertions.Match_ObjectLike(&map[string]any{"Events": []string{"s3:ObjectCreated:*"}, "Filter": map[string]any{"Key": map[string]any{"FilterRules": assertions.Match_ArrayWith(&[]any{map[string]any{"Name": "suffix", "Value": "/manifest.json"}})}}}),
			})},
		})
	})
}

type statement struct {
	Sid      string
	Effect   string
	Action   any
	Resource any
}

func list(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			} else {
				b, _ := json.Marshal(e)
				out = append(out, string(b))
			}
		}
		return out
	default:
		b, _ := json.Marshal(x)
		return []string{string(b)}
	}
}

// unscopable are IoT actions IAM accepts only on "*" (no resource types in
// the Service Authorization Reference); both are read-only.
var unscopable = map[string]bool{"iot:ListThings": true, "iot:DescribeEndpoint": true}

func TestIAMIsLeastPrivilegeForIoT(t *testing.T) {
	var publishResources []string
	for id, p := range cdktest.Resources(t, tmpl(t), "AWS::IAM::Policy") {
		raw, _ := json.Marshal(p["Properties"].(map[string]any)["PolicyDocument"].(map[string]any)["Statement"])
		var sts []statement
		if err := json.Unmarshal(raw, &sts); err != nil {
			t.Fatal(err)
		}
		for _, st := range sts {
			actions, resources := list(st.Action), list(st.Resource)
			iotOnly, scopable := false, false
			for _, a := range actions {
				if a == "*" || a == "iot:*" || (strings.HasPrefix(a, "iot:") && strings.Contains(a, "*")) {
					t.Errorf("%s %s: wildcard action %q", id, st.Sid, a)
				}
				if strings.HasPrefix(a, "iot:") {
					iotOnly = true
					scopable = scopable || !unscopable[a]
				}
			}
			if !iotOnly {
				continue
			}
			for _, r := range resources {
				if r == "*" && scopable {
					t.Errorf("%s %s: %v on resource \"*\"", id, st.Sid, actions)
				}
			}
			if strings.Contains(strings.Join(actions, ","), "iot:RetainPublish") {
				publishResources = append(publishResources, resources...)
			}
		}
	}
	joined := strings.Join(publishResources, "\n")
	for _, want := range []string{":topic/*/*/config", ":topic/agentgate/releases/stable", ":topic/agentgate/releases/beta"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no retained-publish grant on %s; have:\n%s", want, joined)
		}
	}
	if strings.Count(joined, `topic/`) != 3 {
		t.Errorf("retained publishing granted on other topics too:\n%s", joined)
	}
}

func TestAgentsMayReadOnlyReleases(t *testing.T) {
	cdktest.Must(t, func() {
		tmpl(t).HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
			"Roles": []any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^AgentRole"))}},
			"PolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Action": []string{"s3:GetObject", "s3:GetObjectVersion"}, "Effect": "Allow",
				"Resource": map[string]any{"Fn::Join": []any{"", []any{
					map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^ControlPlaneArtifactsBucket")), "Arn"}}, "/releases/*"}}},
			}}},
		})
	})
	if got := *unit().cp.ReleasePrefix(); got != "releases/" {
		t.Errorf("ReleasePrefix = %q", got)
	}
}

func TestMisuseFailsEarly(t *testing.T) {
	for name, p := range map[string]*controlplane.Props{
		"bad channel":       {ReleaseChannels: jsii.Strings("a/b")},
		"no channels":       {ReleaseChannels: &[]*string{}},
		"zero max receives": {MaxReceiveCount: jsii.Number(0)},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r, _ := recover().(string); !strings.HasPrefix(r, "controlplane: ") {
					t.Errorf("recovered %q; want a controlplane panic", r)
				}
			}()
			controlplane.New(awscdk.NewStack(cdktest.NewApp(), jsii.String("S"), nil), jsii.String("CP"), p)
		})
	}
}

// Every alarm of the control plane (two DLQ depths, two publisher error
// counts) notifies the topic when it fires and when it recovers.
func TestEveryAlarmNotifiesTheAlarmTopic(t *testing.T) {
	alarms := cdktest.Resources(t, tmpl(t), "AWS::CloudWatch::Alarm")
	if len(alarms) != 4 {
		t.Fatalf("%d alarms, want 4 (two DLQ depths, two publisher errors)", len(alarms))
	}
	topicID := cdktest.LogicalIDs(t, tmpl(t), "AWS::SNS::Topic")
	if len(topicID) != 1 {
		t.Fatalf("SNS topics %v, want the fixture's one", topicID)
	}
	want := `[{"Ref":"` + topicID[0] + `"}]`
	for id, a := range alarms {
		p := cdktest.Properties(t, a)
		for _, key := range []string{"AlarmActions", "OKActions"} {
			if got, _ := json.Marshal(p[key]); string(got) != want {
				t.Errorf("%s %s = %s, want %s", id, key, got, want)
			}
		}
	}
	if len(unit().cp.DeadLetterAlarms()) != 2 || len(unit().cp.ErrorAlarms()) != 2 {
		t.Errorf("exposed %d DLQ and %d error alarms, want 2 and 2", len(unit().cp.DeadLetterAlarms()), len(unit().cp.ErrorAlarms()))
	}
}

// Without a topic the alarms would notify nobody; synth says so.
func TestNoAlarmTopicWarns(t *testing.T) {
	stack := awscdk.NewStack(cdktest.NewApp(), jsii.String("NoTopic"), &awscdk.StackProps{Env: cdktest.TestEnv})
	controlplane.New(stack, jsii.String("ControlPlane"), nil)
	found := assertions.Annotations_FromStack(stack).FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("no AlarmTopic.*notify nobody")))
	if len(*found) == 0 {
		t.Error("no warning about alarms without a topic")
	}
}
