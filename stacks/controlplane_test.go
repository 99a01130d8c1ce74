package stacks_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

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
