package agentpolicy_test

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
)

func claimParams() agentpolicy.ClaimParams {
	return agentpolicy.ClaimParams{IoTARN: iotARN, TemplateName: provisioning.DefaultTemplateName}
}

// The claim certificate reaches its template's provisioning topics only.
func TestClaimPolicyReachesOnlyItsProvisioningTopics(t *testing.T) {
	m := policymatrix.ClaimMatrix{IoTARN: iotARN, TemplateName: provisioning.DefaultTemplateName, RoleAliasName: "agentgate-agent"}
	allowed, denied := policymatrix.RunClaim(t, m, parse(t, agentpolicy.ClaimPolicy(claimParams())))
	if size := len(strings.Join(strings.Fields(string(agentpolicy.ClaimPolicy(claimParams()).JSON())), "")); size > agentpolicy.MaxIoTPolicySize {
		t.Errorf("claim policy is %d characters", size)
	}
	if allowed != 11 || denied < 40 {
		t.Errorf("matrix too small: %d allowed, %d denied", allowed, denied)
	}
}

// The matrix is not vacuous: common over-broad claim policies fail it.
func TestClaimMatrixCatchesLeakyClaimPolicies(t *testing.T) {
	m := policymatrix.ClaimMatrix{IoTARN: iotARN, TemplateName: provisioning.DefaultTemplateName, RoleAliasName: "agentgate-agent"}
	for name, mutate := range map[string]func(*agentpolicy.Document){
		"connect as anyone": func(d *agentpolicy.Document) { d.Statement[0].Resource = []string{iotARN + ":client/*"} },
		"every template": func(d *agentpolicy.Document) {
			d.Statement[1].Resource = append(d.Statement[1].Resource, iotARN+":topic/$aws/provisioning-templates/*")
		},
		"AWS's example filter": func(d *agentpolicy.Document) {
			d.Statement[2].Resource = []string{iotARN + ":topicfilter/$aws/certificates/create/*"}
		},
		"publish on responses": func(d *agentpolicy.Document) {
			d.Statement[1].Resource = append(d.Statement[1].Resource, iotARN+":topic/$aws/*")
		},
		"receive everything below": func(d *agentpolicy.Document) { d.Statement[3].Resource = []string{iotARN + ":topic/*"} },
	} {
		d := agentpolicy.ClaimPolicy(claimParams())
		mutate(&d)
		r := &recorder{TB: t}
		policymatrix.RunClaim(r, m, parse(t, d))
		if r.failures == 0 {
			t.Errorf("%s: the claim matrix passed a leaky policy", name)
		}
	}
}

func TestClaimParamsValidate(t *testing.T) {
	if err := claimParams().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []agentpolicy.ClaimParams{{IoTARN: iotARN + ":", TemplateName: "t"}, {IoTARN: iotARN, TemplateName: "a/b"}, {IoTARN: iotARN, TemplateName: strings.Repeat("t", 37)}} {
		if p.Validate() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
