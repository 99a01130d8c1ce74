package enrollment_test

import (
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/enrollment"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

const agentPolicy = "agentgate-agent"

var unit = sync.OnceValue(func() awscdk.Stack {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("EnrollmentTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	enrollment.New(stack, jsii.String("Enrollment"), &enrollment.Props{AgentPolicyName: jsii.String(agentPolicy)})
	return stack
})

func tmpl(t *testing.T) map[string]any { return cdktest.TemplateJSON(t, unit()) }

func one(t *testing.T, typ string) (string, map[string]any) {
	t.Helper()
	rs := cdktest.ResourcesOfType(t, tmpl(t), typ)
	if len(rs) != 1 {
		t.Fatalf("%d %s, want 1", len(rs), typ)
	}
	for id, r := range rs {
		return id, r
	}
	return "", nil
}

var values = map[string]string{"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "111111111111"}

// The template creates thing = AgentId with type = CustomerId (which only
// the hook sets), never moves an existing thing's type, activates the
// certificate and attaches the agents' policy; the hook is set.
func TestProvisioningTemplate(t *testing.T) {
	hookID, _ := one(t, "AWS::Lambda::Function")
	_, r := one(t, "AWS::IoT::ProvisioningTemplate")
	p := cdktest.Properties(t, r)
	if p["TemplateName"] != provisioning.DefaultTemplateName || p["Enabled"] != true || p["TemplateType"] != "FLEET_PROVISIONING" {
		t.Fatalf("template props %v", p)
	}
	hook := cdktest.Object(t, p, "PreProvisioningHook")
	if ref, _ := json.Marshal(hook["TargetArn"]); string(ref) != `{"Fn::GetAtt":["`+hookID+`","Arn"]}` || hook["PayloadVersion"] != "2020-04-01" {
		t.Errorf("hook %v", hook)
	}
	body, err := policymatrix.Resolve(p["TemplateBody"], values)
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal([]byte(body.(string)), &b); err != nil {
		t.Fatalf("body %v: %v", body, err)
	}
	thing := cdktest.Object(t, b, "Resources", "thing")
	if got, _ := json.Marshal(thing); string(got) != `{"OverrideSettings":{"ThingTypeName":"DO_NOTHING"},"Properties":{"ThingName":{"Ref":"AgentId"},"ThingTypeName":{"Ref":"CustomerId"}},"Type":"AWS::IoT::Thing"}` {
		t.Errorf("thing %s", got)
	}
	if got := cdktest.Get[string](t, b, "Resources", "policy", "Properties", "PolicyName"); got != agentPolicy {
		t.Errorf("policy %q", got)
	}
	if got := cdktest.Get[string](t, b, "Resources", "certificate", "Properties", "Status"); got != "ACTIVE" {
		t.Errorf("certificate status %q", got)
	}
	if len(body.(string)) > 10240 {
		t.Errorf("template body %d characters; CreateProvisioningTemplate allows 10240", len(body.(string)))
	}
}

func TestClaimPolicyInTheTemplatePassesTheClaimMatrix(t *testing.T) {
	_, r := one(t, "AWS::IoT::Policy")
	p := cdktest.Properties(t, r)
	if p["PolicyName"] != provisioning.DefaultTemplateName+"-claim" {
		t.Errorf("claim policy name %v", p["PolicyName"])
	}
	doc, err := policymatrix.Resolve(p["PolicyDocument"], values)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(doc)
	pol, err := policyeval.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	m := policymatrix.ClaimMatrix{IoTARN: "arn:aws:iot:eu-west-1:111111111111", TemplateName: provisioning.DefaultTemplateName, RoleAliasName: agentPolicy}
	if allowed, denied := policymatrix.RunClaim(t, m, pol); allowed == 0 || denied < 40 {
		t.Errorf("claim matrix: %d allowed, %d denied", allowed, denied)
	}
}

func TestHookAndTable(t *testing.T) {
	_, fn := one(t, "AWS::Lambda::Function")
	p := cdktest.Properties(t, fn)
	if p["Runtime"] != "provided.al2023" || cdktest.Get[string](t, p, "Architectures", 0) != "arm64" || p["Timeout"] != float64(enrollment.HookTimeoutSec) || p["ReservedConcurrentExecutions"] != nil {
		t.Errorf("hook %v", p)
	}
	env := cdktest.Object(t, p, "Environment", "Variables")
	if env[lambdaenv.ProvisioningTemplate] != provisioning.DefaultTemplateName || env[lambdaenv.EnrolRatePerMinute] != "60" || env[lambdaenv.TokenTable] == nil {
		t.Errorf("env %v", env)
	}
	_, perm := one(t, "AWS::Lambda::Permission")
	pp := cdktest.Properties(t, perm)
	src, _ := policymatrix.Resolve(pp["SourceArn"], values)
	if pp["Principal"] != "iot.amazonaws.com" || src != "arn:aws:iot:eu-west-1:111111111111:provisioningtemplate/"+provisioning.DefaultTemplateName || pp["SourceAccount"] != "111111111111" {
		t.Errorf("invoke permission %v", pp)
	}
	_, table := one(t, "AWS::DynamoDB::Table")
	if table["DeletionPolicy"] != "Retain" {
		t.Errorf("table not retained: %v", table["DeletionPolicy"])
	}
	tp := cdktest.Properties(t, table)
	if cdktest.Get[bool](t, tp, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true ||
		cdktest.Get[bool](t, tp, "SSESpecification", "SSEEnabled") != true ||
		cdktest.Get[string](t, tp, "TimeToLiveSpecification", "AttributeName") != tokenstore.TTLAttribute ||
		cdktest.Get[string](t, tp, "KeySchema", 0, "AttributeName") != tokenstore.KeyAttribute {
		t.Errorf("table %v", tp)
	}
	// The hook's role: only GetItem/UpdateItem on the table and DescribeThing.
	var actions []string
	for _, pol := range cdktest.ResourcesOfType(t, tmpl(t), "AWS::IAM::Policy") {
		for _, st := range cdktest.Objects(t, pol, "Properties", "PolicyDocument", "Statement") {
			switch a := st["Action"].(type) {
			case string:
				actions = append(actions, a)
			case []any:
				for _, x := range a {
					actions = append(actions, x.(string))
				}
			}
		}
	}
	sort.Strings(actions)
	if got := strings.Join(actions, ","); got != "dynamodb:GetItem,dynamodb:UpdateItem,iot:DescribeThing,logs:CreateLogStream,logs:PutLogEvents" {
		t.Errorf("hook actions %s", got)
	}
}

func TestNagFindingsAreOnlyTheDocumentedOnes(t *testing.T) {
	got := map[string]bool{}
	for _, f := range cdktest.NagFindings(unit()) {
		rest := strings.TrimPrefix(strings.SplitN(f, " ", 2)[1], "/EnrollmentTest")
		if i := strings.Index(rest, "]: "); i >= 0 {
			rest = rest[:i+1]
		}
		got[rest] = true
	}
	for _, w := range []string{
		"/Enrollment/ProvisioningRole/Resource: AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTThingsRegistration]",
		"/Enrollment/Hook/ServiceRole/DefaultPolicy/Resource: AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:iot:eu-west-1:111111111111:thing/*]",
	} {
		if !got[w] {
			t.Errorf("expected finding missing (update this list and stacks/enrollment_nag.go together): %s", w)
		}
		delete(got, w)
	}
	for g := range got {
		t.Errorf("unexpected cdk-nag finding: %s", g)
	}
}

func TestPropsAreValidatedEarly(t *testing.T) {
	for want, props := range map[string]*enrollment.Props{
		"AgentPolicyName is required": {},
		"provisioning template name":  {AgentPolicyName: jsii.String("p"), TemplateName: jsii.String("a/b")},
		"RatePerMinute":               {AgentPolicyName: jsii.String("p"), RatePerMinute: jsii.Number(0.5)},
	} {
		cdktest.MustPanic(t, want, func() {
			stack := awscdk.NewStack(awscdk.NewApp(nil), jsii.String("S"), &awscdk.StackProps{Env: cdktest.TestEnv})
			enrollment.New(stack, jsii.String("E"), props)
		})
	}
}
