package stacks_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
)

// Every fleet's enrollment stack holds the provisioning template (attaching
// that fleet's agent policy, with the hook set), the claim policy, the hook
// and the token table, and deploys after the identity stack.
func TestEnrollmentStacksHoldTemplateClaimPolicyHookAndTable(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	for _, f := range b.sys.Fleets {
		t.Run(f.Config.Name, func(t *testing.T) {
			name := b.cfg.StackName(f.Config.Name, "enrollment")
			if f.Enrollment == nil || *f.Enrollment.Stack.StackName() != name {
				t.Fatalf("no enrollment stack %s", name)
			}
			tm := tmpls[name]
			for typ, n := range map[string]int{
				"AWS::IoT::ProvisioningTemplate": 1, "AWS::IoT::Policy": 1, "AWS::Lambda::Function": 1, "AWS::DynamoDB::Table": 1, "AWS::Lambda::Permission": 1,
			} {
				if got := len(cdktest.ResourcesOfType(t, tm, typ)); got != n {
					t.Errorf("%d %s, want %d", got, typ, n)
				}
			}
			// The claim policy as synthesized passes the claim matrix.
			for _, r := range cdktest.ResourcesOfType(t, tm, "AWS::IoT::Policy") {
				doc, err := policymatrix.Resolve(cdktest.Properties(t, r)["PolicyDocument"], map[string]string{
					"AWS::Partition": "aws", "AWS::Region": f.Config.Region, "AWS::AccountId": f.Config.Account})
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := json.Marshal(doc)
				pol, err := policyeval.Parse(raw)
				if err != nil {
					t.Fatal(err)
				}
				m := policymatrix.ClaimMatrix{IoTARN: iotARN(f.Config), TemplateName: provisioning.DefaultTemplateName, RoleAliasName: b.cfg.Identity.RoleAliasName}
				if allowed, denied := policymatrix.RunClaim(t, m, pol); allowed == 0 || denied < 40 {
					t.Errorf("claim matrix: %d allowed, %d denied", allowed, denied)
				}
			}
			for _, r := range cdktest.ResourcesOfType(t, tm, "AWS::IoT::ProvisioningTemplate") {
				p := cdktest.Properties(t, r)
				if p["TemplateName"] != provisioning.DefaultTemplateName || p["PreProvisioningHook"] == nil {
					t.Errorf("template %v", p)
				}
			}
			deps := map[string]bool{}
			for _, d := range *f.Enrollment.Stack.Dependencies() {
				deps[*d.StackName()] = true
			}
			if !deps[*f.Identity.Stack.StackName()] {
				t.Errorf("enrollment stack does not depend on %s", *f.Identity.Stack.StackName())
			}
		})
	}
}

// The roles AWS IoT assumes for the enrolment template and the data
// plane's rules trust it only on this account's behalf (aws:SourceAccount
// and aws:SourceArn, internal/deploy/iotprincipal): a role without both
// conditions is a confused-deputy opening.
func TestIoTAssumedRolesAreHeldToTheAccount(t *testing.T) {
	b := load(t)
	checked := 0
	for _, f := range b.sys.Fleets {
		for _, s := range []awscdk.Stack{f.Enrollment.Stack, f.ControlPlane.Stack} {
			for id, r := range cdktest.Resources(t, cdktest.Template(t, s), "AWS::IAM::Role") {
				doc, _ := json.Marshal(r["Properties"].(map[string]any)["AssumeRolePolicyDocument"])
				if !strings.Contains(string(doc), `"iot.amazonaws.com"`) {
					continue
				}
				checked++
				if !strings.Contains(string(doc), `"aws:SourceAccount"`) || !strings.Contains(string(doc), `"aws:SourceArn"`) || !strings.Contains(string(doc), `:iot:${AWS::Region}:${AWS::AccountId}:*`) {
					t.Errorf("%s/%s trusts AWS IoT without the account conditions: %s", *s.StackName(), id, doc)
				}
			}
		}
	}
	if checked < 2*len(b.sys.Fleets) {
		t.Errorf("%d roles assumed by AWS IoT checked, want at least 2 per fleet (provisioning, telemetry rule)", checked)
	}
}
