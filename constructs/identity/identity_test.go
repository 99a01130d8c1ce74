package identity_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/identity"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

const (
	bucketName = "agentgate-artifacts-test"
	iotARN     = "arn:aws:iot:eu-west-1:111111111111"
)

type fixture struct {
	full, minimal awscdk.Stack
	ident         identity.Identity
	publisher     awsiam.Role
}

// build creates one app with two stacks: everything on (bucket, two
// channels, two-hour credentials, a publisher granted both grants) and the
// minimal use (defaults, account singletons off).
var build = sync.OnceValue(func() *fixture {
	app := cdktest.NewApp()
	f := &fixture{}
	f.full = awscdk.NewStack(app, jsii.String("IdentityFull"), &awscdk.StackProps{Env: cdktest.TestEnv})
	f.ident = identity.New(f.full, jsii.String("Identity"), &identity.Props{
		ArtifactsBucket:       awss3.Bucket_FromBucketName(f.full, jsii.String("Artifacts"), jsii.String(bucketName)),
		ReleaseChannels:       jsii.Strings("stable", "beta"),
		CredentialDurationSec: jsii.Number(7200),
	})
	f.publisher = awsiam.NewRole(f.full, jsii.String("Publisher"), &awsiam.RoleProps{AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)})
	f.ident.GrantPublishConfig(f.publisher)
	f.ident.GrantPublishReleases(f.publisher)

	f.minimal = awscdk.NewStack(app, jsii.String("IdentityMinimal"), &awscdk.StackProps{Env: cdktest.TestEnv})
	identity.New(f.minimal, jsii.String("Identity"), &identity.Props{
		ManageAccountAudit: jsii.Bool(false),
		ManageLogging:      jsii.Bool(false),
	})
	return f
})

// policies extracts the agent IoT policy and the agent role's inline policy
// from tmpl, with CDK's intrinsics resolved for eu-west-1/111111111111.
func policies(t *testing.T, tmpl assertions.Template) (iot, role *policyeval.Policy) {
	t.Helper()
	var doc map[string]any
	cdktest.Must(t, func() {
		b, _ := json.Marshal(tmpl.ToJSON())
		_ = json.Unmarshal(b, &doc)
	})
	iot, role, err := policymatrix.FromTemplate(doc, map[string]string{"AWS::Partition": "aws"})
	if err != nil {
		t.Fatal(err)
	}
	return iot, role
}

// The synthesized documents, not just the rendered ones, pass the isolation
// matrix for thing A of customer X.
func TestSynthesizedPoliciesIsolateAgents(t *testing.T) {
	f := build()
	for _, c := range []struct {
		name     string
		stack    awscdk.Stack
		channels []string
		bucket   string
	}{
		{"full", f.full, []string{"stable", "beta"}, "arn:aws:s3:::" + bucketName},
		{"minimal", f.minimal, []string{"stable"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			iot, role := policies(t, cdktest.Template(t, c.stack))
			m := policymatrix.Matrix{IoTARN: iotARN, RoleAliasName: identity.DefaultRoleAliasName, ReleaseChannels: c.channels, BucketARN: c.bucket}
			m.Kind = policymatrix.IoT
			a1, d1 := policymatrix.Run(t, m, iot)
			m.Kind = policymatrix.Role
			a2, d2 := policymatrix.Run(t, m, role)
			t.Logf("IoT policy: %d allowed / %d denied cases; role policy: %d / %d", a1, d1, a2, d2)
		})
	}
}

func TestRoleAliasAndRole(t *testing.T) {
	f := build()
	tmpl := cdktest.Template(t, f.full)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::IoT::RoleAlias"), map[string]any{
			"RoleAlias":                 identity.DefaultRoleAliasName,
			"CredentialDurationSeconds": 7200,
			"RoleArn":                   map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^IdentityRole")), "Arn"}},
		})
		// The alias's duration must not exceed the role's maximum session.
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{
			"MaxSessionDuration": 7200,
			"AssumeRolePolicyDocument": map[string]any{"Statement": []any{map[string]any{
				"Action": "sts:AssumeRole", "Effect": "Allow",
				"Principal": map[string]any{"Service": "credentials.iot.amazonaws.com"},
			}}},
		})
		tmpl.HasResourceProperties(jsii.String("AWS::IoT::Policy"), map[string]any{"PolicyName": identity.DefaultRoleAliasName})
	})
	if got := *f.ident.RoleAliasName(); got != identity.DefaultRoleAliasName {
		t.Errorf("RoleAliasName() = %q", got)
	}
	if got := *f.ident.PolicyName(); got != identity.DefaultRoleAliasName {
		t.Errorf("PolicyName() = %q", got)
	}
	if f.ident.Role() == nil || f.ident.AuditRole() == nil || f.ident.LoggingRole() == nil {
		t.Error("Role(), AuditRole() or LoggingRole() is nil with everything on")
	}
	// The minimal stack keeps the service's default lifetime and the role's default maximum.
	cdktest.Must(t, func() {
		cdktest.Template(t, f.minimal).HasResourceProperties(jsii.String("AWS::IoT::RoleAlias"), map[string]any{"CredentialDurationSeconds": 3600})
	})
}

// Account-level singletons exist by default and disappear when turned off.
func TestAccountSingletonsAreOptional(t *testing.T) {
	f := build()
	full, minimal := cdktest.Template(t, f.full), cdktest.Template(t, f.minimal)
	for _, typ := range []string{"AWS::IoT::AccountAuditConfiguration", "AWS::IoT::ScheduledAudit", "AWS::IoT::Logging"} {
		if n := len(cdktest.Resources(t, full, typ)); n != 1 {
			t.Errorf("full stack has %d %s, want 1", n, typ)
		}
		if n := len(cdktest.Resources(t, minimal, typ)); n != 0 {
			t.Errorf("stack with singletons off has %d %s, want 0", n, typ)
		}
	}
	if n := len(cdktest.Resources(t, minimal, "AWS::IAM::Role")); n != 1 {
		t.Errorf("stack with singletons off has %d roles, want only the agent role", n)
	}
}

func TestAuditChecksAndSchedule(t *testing.T) {
	tmpl := cdktest.Template(t, build().full)
	var cfgID string
	for id, r := range cdktest.Resources(t, tmpl, "AWS::IoT::AccountAuditConfiguration") {
		cfgID = id
		checks := cdktest.Object(t, r, "Properties", "AuditCheckConfigurations")
		enabled := 0
		for name := range checks {
			if cdktest.Object(t, checks, name)["Enabled"] == true {
				enabled++
			} else if !strings.Contains(name, "Cognito") {
				t.Errorf("check %s is off; only the Cognito checks may be (no identity pools)", name)
			}
		}
		if enabled != len(identity.EnabledAuditChecks()) || len(checks) != len(identity.AuditChecks()) {
			t.Errorf("%d of %d checks enabled in the template, want %d of %d", enabled, len(checks), len(identity.EnabledAuditChecks()), len(identity.AuditChecks()))
		}
	}
	for id, r := range cdktest.Resources(t, tmpl, "AWS::IoT::ScheduledAudit") {
		props := cdktest.Properties(t, r)
		got, _ := json.Marshal(props["TargetCheckNames"])
		want, _ := json.Marshal(identity.EnabledAuditChecks())
		if string(got) != string(want) || props["Frequency"] != "DAILY" {
			t.Errorf("%s: checks %s, frequency %v; want %s DAILY", id, got, props["Frequency"], want)
		}
		if deps, _ := json.Marshal(r["DependsOn"]); !strings.Contains(string(deps), cfgID) {
			t.Errorf("%s does not depend on the audit configuration %s (it may only name enabled checks)", id, cfgID)
		}
	}
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::IoT::Logging"), map[string]any{"DefaultLogLevel": "WARN", "AccountId": "111111111111"})
	})
}

// The publishers' grants reach exactly what they publish to.
func TestGrants(t *testing.T) {
	tmpl := cdktest.Template(t, build().full)
	for id, r := range cdktest.Resources(t, tmpl, "AWS::IAM::Policy") {
		if !strings.HasPrefix(id, "PublisherDefaultPolicy") {
			continue
		}
		resolved, err := policymatrix.Resolve(cdktest.Properties(t, r)["PolicyDocument"], map[string]string{"AWS::Partition": "aws"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(resolved)
		p, err := policyeval.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			action, topic string
			allow         bool
		}{
			{"iot:RetainPublish", "custx/agent-a/config", true},
			{"iot:Publish", "custy/agent-b/config", true},
			{"iot:RetainPublish", "agentgate/releases/beta", true},
			{"iot:Publish", "custx/agent-a/telemetry", false},
			{"iot:Publish", "agentgate/releases/nightly", false},
			{"iot:Subscribe", "custx/agent-a/config", false},
		} {
			d := policyeval.Evaluate(policyeval.Request{Action: c.action, Resource: iotARN + ":topic/" + c.topic}, p)
			if d.Allowed() != c.allow {
				t.Errorf("publisher %s %s = %v, want allowed=%v", c.action, c.topic, d, c.allow)
			}
		}
		return
	}
	t.Fatal("publisher policy not found")
}

// cdk-nag: the construct's only findings are the ones stacks/ suppresses
// with reasons: the wildcard resources the design needs (IAM5: one thing's
// topic subtree, receiving release announcements, the release prefix, IoT's own log group, the config
// publisher's every-agent config topic) and the AWS-managed Device Defender
// audit policy (IAM4). Anything else is a new finding to fix or justify.
func TestNagFindingsAreOnlyTheDocumentedOnes(t *testing.T) {
	const arn = "arn:<AWS::Partition>:iot:eu-west-1:111111111111:"
	own := "<credentials-iot:ThingTypeName>/<credentials-iot:ThingName>/"
	agentRole := []string{
		"/Identity/Role/Resource: AwsSolutions-IAM5[Resource::" + arn + "topic/" + own + "*]",
		"/Identity/Role/Resource: AwsSolutions-IAM5[Resource::" + arn + "topic/" + own + "up/*]",
		"/Identity/Role/Resource: AwsSolutions-IAM5[Resource::" + arn + "topicfilter/" + own + "down/*]",
		"/Identity/Role/Resource: AwsSolutions-IAM5[Resource::" + arn + "topic/agentgate/releases/*]",
	}
	f := build()
	for _, c := range []struct {
		stack awscdk.Stack
		want  []string
	}{
		{f.full, append([]string{
			"/Identity/AuditRole/Resource: AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit]",
			"/Identity/LoggingRole/Resource: AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:eu-west-1:111111111111:log-group:AWSIotLogsV2:*]",
			"/Identity/Role/Resource: AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::" + bucketName + "/releases/*]",
			"/Publisher/DefaultPolicy/Resource: AwsSolutions-IAM5[Resource::" + arn + "topic/*/*/config]",
		}, agentRole...)},
		{f.minimal, agentRole},
	} {
		got := map[string]bool{}
		for _, finding := range cdktest.NagFindings(c.stack) {
			// "error /Stack/path: AwsSolutions-RULE[appliesTo]: text" → "/path: AwsSolutions-RULE[appliesTo]"
			rest := strings.TrimPrefix(strings.SplitN(finding, " ", 2)[1], "/"+*c.stack.StackName())
			if i := strings.Index(rest, "]: "); i >= 0 {
				rest = rest[:i+1]
			}
			got[rest] = true
		}
		for _, w := range c.want {
			if !got[w] {
				t.Errorf("%s: expected finding missing (update this list and stacks/identity_nag.go together): %s", *c.stack.StackName(), w)
			}
			delete(got, w)
		}
		for g := range got {
			t.Errorf("%s: unexpected cdk-nag finding: %s", *c.stack.StackName(), g)
		}
	}
}

func TestPropsAreValidatedEarly(t *testing.T) {
	bucket := func(s awscdk.Stack) awss3.IBucket {
		return awss3.Bucket_FromBucketName(s, jsii.String("B"), jsii.String("bkt"))
	}
	for _, c := range []struct {
		name  string
		props func(awscdk.Stack) *identity.Props
		want  string
	}{
		{"duration too short", func(awscdk.Stack) *identity.Props { return &identity.Props{CredentialDurationSec: jsii.Number(899)} }, "CredentialDurationSec 899 is outside 900..43200"},
		{"duration too long", func(awscdk.Stack) *identity.Props { return &identity.Props{CredentialDurationSec: jsii.Number(43201)} }, "CredentialDurationSec 43201"},
		{"fractional duration", func(awscdk.Stack) *identity.Props { return &identity.Props{CredentialDurationSec: jsii.Number(1000.5)} }, "whole seconds"},
		{"alias with slash", func(awscdk.Stack) *identity.Props { return &identity.Props{RoleAliasName: jsii.String("agents/x")} }, `role alias name "agents/x"`},
		{"empty alias", func(awscdk.Stack) *identity.Props { return &identity.Props{RoleAliasName: jsii.String("")} }, `role alias name ""`},
		{"policy name with space", func(awscdk.Stack) *identity.Props { return &identity.Props{PolicyName: jsii.String("my policy")} }, `PolicyName "my policy"`},
		{"wildcard channel", func(awscdk.Stack) *identity.Props { return &identity.Props{ReleaseChannels: jsii.Strings("#")} }, `release channel "#"`},
		{"too many channels for the IoT policy quota", func(awscdk.Stack) *identity.Props {
			var chs []string
			for i := 0; i < 12; i++ {
				chs = append(chs, "a-rather-long-channel-name-"+string(rune('a'+i)))
			}
			return &identity.Props{ReleaseChannels: jsii.Strings(chs...)}
		}, "AWS IoT allows 2048"},
		{"no channels", func(awscdk.Stack) *identity.Props { return &identity.Props{ReleaseChannels: &[]*string{}} }, "at least one release channel"},
		{"prefix without slash", func(s awscdk.Stack) *identity.Props {
			return &identity.Props{ArtifactsBucket: bucket(s), ReleasePrefix: jsii.String("releases")}
		}, `ReleasePrefix "releases"`},
		{"prefix with wildcard", func(s awscdk.Stack) *identity.Props {
			return &identity.Props{ArtifactsBucket: bucket(s), ReleasePrefix: jsii.String("rel*/")}
		}, `ReleasePrefix "rel*/"`},
		{"prefix without bucket", func(awscdk.Stack) *identity.Props { return &identity.Props{ReleasePrefix: jsii.String("r/")} }, "ArtifactsBucket is not"},
		{"frequency", func(awscdk.Stack) *identity.Props { return &identity.Props{AuditFrequency: jsii.String("HOURLY")} }, `AuditFrequency "HOURLY"`},
		{"cert age", func(awscdk.Stack) *identity.Props { return &identity.Props{CertAgeThresholdDays: jsii.Number(7)} }, "CertAgeThresholdDays 7"},
		{"log level", func(awscdk.Stack) *identity.Props { return &identity.Props{LogLevel: jsii.String("DISABLED")} }, `LogLevel "DISABLED"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			stack := awscdk.NewStack(awscdk.NewApp(nil), jsii.String("S"), &awscdk.StackProps{Env: cdktest.TestEnv})
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if r == nil || !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, "identity: ") {
					t.Errorf("panic = %v, want a message starting \"identity: \" containing %q", r, c.want)
				}
			}()
			identity.New(stack, jsii.String("Identity"), c.props(stack))
		})
	}
}

// Minimal use is one statement with no props.
func TestMinimalUseNeedsNoProps(t *testing.T) {
	stack := awscdk.NewStack(awscdk.NewApp(nil), jsii.String("S"), &awscdk.StackProps{Env: cdktest.TestEnv})
	var ident identity.Identity
	cdktest.Must(t, func() { ident = identity.New(stack, jsii.String("Identity"), nil) })
	if *ident.RoleAliasName() != identity.DefaultRoleAliasName || *ident.PolicyName() != identity.DefaultRoleAliasName {
		t.Errorf("defaults: alias %q, policy %q", *ident.RoleAliasName(), *ident.PolicyName())
	}
	if ident.AuditRole() == nil || ident.LoggingRole() == nil {
		t.Error("audit and logging must be on by default")
	}
}

// A verbose log level is allowed but warned about (cost at fleet scale).
func TestVerboseLogLevelWarns(t *testing.T) {
	stack := awscdk.NewStack(awscdk.NewApp(nil), jsii.String("S"), &awscdk.StackProps{Env: cdktest.TestEnv})
	identity.New(stack, jsii.String("Identity"), &identity.Props{LogLevel: jsii.String("INFO")})
	cdktest.Must(t, func() {
		assertions.Annotations_FromStack(stack).HasWarning(jsii.String("/S/Identity"), assertions.Match_StringLikeRegexp(jsii.String("LogLevel INFO logs every connect")))
	})
}
