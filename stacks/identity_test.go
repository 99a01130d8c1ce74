package stacks_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
	"github.com/agentgate/agentgate/stacks"
)

// templates reads every stack template of the synthesized app from the
// cloud assembly, keyed by stack name.
func templates(t *testing.T, b *built) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, s := range allStacks(b) {
		art := readManifest(t, b.dir).Artifacts[*s.ArtifactId()]
		data, err := os.ReadFile(filepath.Join(b.dir, art.Properties.TemplateFile))
		if err != nil {
			t.Fatal(err)
		}
		var tmpl map[string]any
		if err := json.Unmarshal(data, &tmpl); err != nil {
			t.Fatal(err)
		}
		out[*s.StackName()] = tmpl
	}
	return out
}

func iotARN(f deployconfig.Fleet) string { return "arn:aws:iot:" + f.Region + ":" + f.Account }

// Thing A of customer X reaches its own topics and nothing of thing B or
// customer Y, through both paths, in every fleet's synthesized identity
// stack.
func TestIdentityStacksIsolateAgents(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	for _, f := range b.sys.Fleets {
		t.Run(f.Config.Name, func(t *testing.T) {
			name := b.cfg.StackName(f.Config.Name, "identity")
			if got := *f.Identity.Stack.StackName(); got != name {
				t.Errorf("identity stack is named %q, want %q", got, name)
			}
			if *f.Identity.Stack.Account() != f.Config.Account || *f.Identity.Stack.Region() != f.Config.Region {
				t.Errorf("%s is in %s/%s, want %s/%s", name, *f.Identity.Stack.Account(), *f.Identity.Stack.Region(), f.Config.Account, f.Config.Region)
			}
			// The only cross-stack reference is the control plane's artifacts bucket.
			const bucketARN = "arn:aws:s3:::agentgate-artifacts-test"
			values := map[string]string{"AWS::Partition": "aws"}
			refs := crossStackRefs(tmpls[name])
			if len(refs) == 0 {
				t.Fatal("identity stack does not reference the control plane's artifacts bucket")
			}
			for _, ref := range refs {
				values[ref] = bucketARN
			}
			iot, role, err := policymatrix.FromTemplate(tmpls[name], values)
			if err != nil {
				t.Fatal(err)
			}
			m := policymatrix.Matrix{IoTARN: iotARN(f.Config), RoleAliasName: b.cfg.Identity.RoleAliasName, ReleaseChannels: b.cfg.Topics.ReleaseChannels, BucketARN: bucketARN}
			m.Kind = policymatrix.IoT
			a1, d1 := policymatrix.Run(t, m, iot)
			m.Kind = policymatrix.Role
			a2, d2 := policymatrix.Run(t, m, role)
			t.Logf("IoT policy %d allowed / %d denied; role policy %d / %d", a1, d1, a2, d2)
		})
	}
}

// statements yields every policy statement anywhere in a template (IAM
// roles, policies, managed policies, IoT policies, resource policies).
func statements(v any, visit func(path string, st map[string]any)) {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["Effect"]; ok {
				visit(path, x)
				return
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(path+"/"+k, x[k])
			}
		case []any:
			for _, e := range x {
				walk(path, e)
			}
		}
	}
	walk("", v)
}

func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil // intrinsics: not a literal "*"
}

// The IoT data-plane actions an agent could abuse, and a control-plane one.
var iotActions = []string{"iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive", "iot:RetainPublish", "iot:UpdateThing", "iot:AttachPolicy"}

// Across every stack of the app: no statement allows IoT actions on every
// resource ("*" with iot:*, *, or any IoT data-plane action), nothing uses
// NotAction/NotResource to allow, and no IoT policy resource contains an
// MQTT wildcard (policies treat '+' and '#' literally, so one there is
// either useless or a mistake). A single non-wildcard control-plane action
// on "*" (iot:DescribeEndpoint needs that) is allowed.
func TestNoTemplateGrantsIoTWildcards(t *testing.T) {
	checked := 0
	for stackName, tmpl := range templates(t, load(t)) {
		problems, n := iotWildcardProblems(t, tmpl)
		checked += n
		for _, p := range problems {
			t.Errorf("%s: %s", stackName, p)
		}
	}
	if checked == 0 {
		t.Fatal("no policy statements found in any template")
	}
}

// The scanner itself catches each mistake it looks for.
func TestIoTWildcardScannerCatchesMistakes(t *testing.T) {
	st := func(typ, effect string, action, resource any, extra ...string) map[string]any {
		s := map[string]any{"Effect": effect, "Action": action, "Resource": resource}
		for _, k := range extra {
			s[k] = "x"
		}
		return map[string]any{"Type": typ, "Properties": map[string]any{"PolicyDocument": map[string]any{"Statement": []any{s}}}}
	}
	for name, c := range map[string]struct {
		res  map[string]any
		want int
	}{
		"iot:* on *":                 {st("AWS::IAM::Policy", "Allow", "iot:*", "*"), 1},
		"* on *":                     {st("AWS::IAM::Policy", "Allow", []any{"*"}, []any{"*"}), 1},
		"iot:Pub* on *":              {st("AWS::IAM::Policy", "Allow", "iot:Pub*", "*"), 1},
		"iot:Subscribe on *":         {st("AWS::IAM::Policy", "Allow", "iot:Subscribe", "*"), 1},
		"+ in an IoT policy":         {st("AWS::IoT::Policy", "Allow", "iot:Subscribe", "arn:aws:iot:r:1:topicfilter/x/+/config"), 1},
		"# in an IoT deny":           {st("AWS::IoT::Policy", "Deny", "iot:Subscribe", "arn:aws:iot:r:1:topicfilter/x/#"), 1},
		"allow with NotAction":       {st("AWS::IAM::Policy", "Allow", "s3:GetObject", "*", "NotAction"), 1},
		"iot:DescribeEndpoint on *":  {st("AWS::IAM::Policy", "Allow", "iot:DescribeEndpoint", "*"), 0},
		"deny iot:* on *":            {st("AWS::IAM::Policy", "Deny", "iot:*", "*"), 0},
		"scoped iot publish":         {st("AWS::IAM::Policy", "Allow", "iot:Publish", "arn:aws:iot:r:1:topic/a/b"), 0},
		"+ in an IAM topic resource": {st("AWS::IAM::Policy", "Allow", "iot:Publish", "arn:aws:iot:r:1:topic/a+b"), 0},
	} {
		problems, n := iotWildcardProblems(t, map[string]any{"Resources": map[string]any{"R": c.res}})
		if n != 1 || len(problems) != c.want {
			t.Errorf("%s: %d statements, problems %q; want 1 statement and %d problems", name, n, problems, c.want)
		}
	}
}

// iotWildcardProblems lists the IoT wildcard mistakes in tmpl and counts
// the statements it looked at.
func iotWildcardProblems(t testing.TB, tmpl map[string]any) (problems []string, checked int) {
	dataPlane := map[string]bool{"iot:connect": true, "iot:publish": true, "iot:subscribe": true, "iot:receive": true, "iot:retainpublish": true}
	for id, r := range cdktest.ResourcesOfType(t, tmpl, "") {
		typ := r["Type"]
		statements(r, func(path string, st map[string]any) {
			checked++
			where := id + path
			allow := st["Effect"] == "Allow"
			if allow && (st["NotAction"] != nil || st["NotResource"] != nil) {
				problems = append(problems, where+": Allow with NotAction/NotResource")
			}
			resourcesOf := stringsOf(st["Resource"])
			if typ == "AWS::IoT::Policy" {
				for _, res := range resourcesOf {
					if strings.ContainsAny(res, "+#") {
						problems = append(problems, fmt.Sprintf("%s: IoT policy resource %q contains an MQTT wildcard; policies treat it literally", where, res))
					}
				}
			}
			star := false
			for _, res := range resourcesOf {
				star = star || res == "*"
			}
			if !allow || !star {
				return
			}
			for _, a := range stringsOf(st["Action"]) {
				for _, iotAction := range iotActions {
					if policyeval.Match(a, iotAction, true) && (strings.ContainsAny(a, "*?") || dataPlane[strings.ToLower(a)]) {
						problems = append(problems, fmt.Sprintf("%s: allows %q on \"*\"", where, a))
						break
					}
				}
			}
		})
	}
	sort.Strings(problems)
	return problems, checked
}

// Device Defender's audit configuration and IoT logging are singletons per
// account and region: at most one stack of the app may own each there.
func TestAccountSingletonsHaveOneOwnerPerAccountAndRegion(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	owners := map[string][]string{}
	for _, s := range allStacks(b) {
		resources, _ := tmpls[*s.StackName()]["Resources"].(map[string]any)
		for _, r := range resources {
			switch typ := r.(map[string]any)["Type"].(string); typ {
			case "AWS::IoT::AccountAuditConfiguration", "AWS::IoT::Logging", "AWS::IoT::ScheduledAudit":
				key := typ + " in " + *s.Account() + "/" + *s.Region()
				owners[key] = append(owners[key], *s.StackName())
			}
		}
	}
	for key, stacks := range owners {
		if len(stacks) > 1 {
			t.Errorf("%s is owned by %d stacks: %v", key, len(stacks), stacks)
		}
	}
	for _, f := range b.sys.Fleets {
		key := "AWS::IoT::AccountAuditConfiguration in " + f.Config.Account + "/" + f.Config.Region
		if len(owners[key]) != 1 {
			t.Errorf("fleet %s: audit configuration owners %v, want its identity stack", f.Config.Name, owners[key])
		}
	}
}

// With identity.manageIotLogging and identity.manageDeviceDefenderAudit
// false (an account whose IoT logging and audit belong to someone else),
// the identity stack creates neither singleton nor its role, says so in its
// description, and stays cdk-nag clean; each switch alone removes only its
// own part.
func TestIdentityStackLeavesUnmanagedSingletonsAlone(t *testing.T) {
	b := load(t)
	f := b.cfg.Fleets[0]
	no := false
	for _, tc := range []struct {
		name             string
		logging, audit   *bool
		wantLogging      bool
		wantAudit        bool
		descriptionLacks []string
	}{
		{"both (the default)", nil, nil, true, true, nil},
		{"neither", &no, &no, false, false, []string{"IoT logging", "Device Defender"}},
		{"audit only", &no, nil, false, true, []string{"IoT logging"}},
		{"logging only", nil, &no, true, false, []string{"Device Defender"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := b.cfg.Identity
			id.ManageIotLogging, id.ManageDeviceDefenderAudit = tc.logging, tc.audit
			app := awscdk.NewApp(&awscdk.AppProps{Context: cdkJSONContext(t)})
			env := &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}
			ident := stacks.NewIdentityStack(app, "Identity", &stacks.IdentityStackProps{
				StackProps: awscdk.StackProps{Env: env}, Fleet: f, Identity: id, Topics: b.cfg.Topics,
			}).Stack
			awscdk.Aspects_Of(ident).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
			cdktest.NoNagFindings(t, ident)
			doc := cdktest.TemplateJSON(t, ident)
			count := func(typ string) int { return len(cdktest.PropertiesOfType(doc, typ)) }
			if got := count("AWS::IoT::Logging"); (got == 1) != tc.wantLogging || got > 1 {
				t.Errorf("%d AWS::IoT::Logging, want managed = %v", got, tc.wantLogging)
			}
			for _, typ := range []string{"AWS::IoT::AccountAuditConfiguration", "AWS::IoT::ScheduledAudit"} {
				if got := count(typ); (got == 1) != tc.wantAudit || got > 1 {
					t.Errorf("%d %s, want managed = %v", got, typ, tc.wantAudit)
				}
			}
			if got := count("AWS::IAM::Role"); got != 1+b2i(tc.wantLogging)+b2i(tc.wantAudit) {
				t.Errorf("%d roles, want the agents' role plus one per managed singleton", got)
			}
			desc, _ := doc["Description"].(string)
			if tc.wantLogging && !strings.Contains(desc, "IoT logging") || tc.wantAudit && !strings.Contains(desc, "Device Defender audit") {
				t.Errorf("description %q does not name what the stack manages", desc)
			}
			for _, lacks := range tc.descriptionLacks {
				if strings.Contains(desc, lacks) {
					t.Errorf("description %q names %s, which the stack does not manage", desc, lacks)
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Once the control plane passes its artifacts bucket (from another stack),
// the identity stack is still cdk-nag clean and agents may read releases,
// and nothing else in the bucket. This builds that wiring in its own app,
// with the feature flags cdk.json sets.
func TestIdentityStackWithArtifactsBucketFromAnotherStack(t *testing.T) {
	b := load(t)
	f := b.cfg.Fleets[0]
	// With cdk.json's context (feature flags), as a real `cdk synth` runs:
	// partition literals (the suppressions must match "arn:aws:…" too) and
	// policy minimization (which must not merge the agent statements).
	app := awscdk.NewApp(&awscdk.AppProps{Context: cdkJSONContext(t)})
	env := &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}
	producer := awscdk.NewStack(app, jsii.String("Artifacts"), &awscdk.StackProps{Env: env})
	bucket := awss3.NewBucket(producer, jsii.String("Bucket"), &awss3.BucketProps{BucketName: jsii.String("agentgate-artifacts-test")})
	ident := stacks.NewIdentityStack(app, "IdentityWithBucket", &stacks.IdentityStackProps{
		StackProps: awscdk.StackProps{Env: env}, Fleet: f, Identity: b.cfg.Identity, Topics: b.cfg.Topics, ArtifactsBucket: bucket,
	})
	// cdk-nag on the identity stack only: the stand-in bucket is not the subject.
	awscdk.Aspects_Of(ident.Stack).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	cdktest.NoNagFindings(t, ident.Stack)

	doc := cdktest.TemplateJSON(t, ident.Stack)
	values := map[string]string{"AWS::Partition": "aws"}
	// The cross-stack reference to the bucket's ARN is an import or a stack
	// output, depending on the feature flags.
	for _, ref := range crossStackRefs(doc) {
		values[ref] = "arn:aws:s3:::agentgate-artifacts-test"
	}
	iot, role, err := policymatrix.FromTemplate(doc, values)
	if err != nil {
		t.Fatal(err)
	}
	m := policymatrix.Matrix{IoTARN: iotARN(f), RoleAliasName: b.cfg.Identity.RoleAliasName, ReleaseChannels: b.cfg.Topics.ReleaseChannels, BucketARN: "arn:aws:s3:::agentgate-artifacts-test"}
	m.Kind = policymatrix.IoT
	policymatrix.Run(t, m, iot)
	m.Kind = policymatrix.Role
	policymatrix.Run(t, m, role)
}

// crossStackRefs returns the Resolve keys of every cross-stack reference in v.
func crossStackRefs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if name, ok := x["Fn::ImportValue"].(string); ok {
			out = append(out, "import:"+name)
		}
		if ref, ok := x["Fn::GetStackOutput"].(map[string]any); ok {
			out = append(out, fmt.Sprint("output:", ref["OutputName"]))
		}
		for _, e := range x {
			out = append(out, crossStackRefs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, crossStackRefs(e)...)
		}
	}
	return out
}

// The IoT policy and the role alias have fixed names that every agent
// certificate and every agent's configuration refer to. A changed logical
// ID makes CloudFormation create a replacement with the same name (which
// fails) and delete the original (which is attached to every certificate).
// Only change these IDs with a planned migration.
func TestIdentityLogicalIDsArePinned(t *testing.T) {
	for _, f := range load(t).sys.Fleets {
		tmpl := cdktest.Template(t, f.Identity.Stack)
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::IoT::Policy", "IdentityPolicy0A0C8574")
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::IoT::RoleAlias", "IdentityRoleAlias7142D9CF")
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::IoT::AccountAuditConfiguration", "IdentityAccountAudit2A636121")
		cdktest.PinnedLogicalIDs(t, tmpl, "AWS::IoT::Logging", "IdentityLogging063A98A5")
	}
}

// cdkJSONContext is the context of the repository's cdk.json, with bundling off.
func cdkJSONContext(t *testing.T) *map[string]any {
	t.Helper()
	ctx, err := cliContext()
	if err != nil {
		t.Fatal(err)
	}
	return &ctx
}
