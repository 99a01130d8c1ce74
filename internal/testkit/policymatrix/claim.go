package policymatrix

import (
	"testing"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
)

// ClaimMatrix is the isolation matrix of the claim certificate's IoT
// policy: an installer holding it reaches the fleet-provisioning topics of
// its one template and nothing else: no tenant topic, no release topic, no
// role alias, no other template, no agent's client ID.
type ClaimMatrix struct {
	// IoTARN is "arn:<partition>:iot:<region>:<account>".
	IoTARN string
	// TemplateName is the template the claim may use.
	TemplateName string
	// RoleAliasName is the agents' role alias, which the claim must not use.
	RoleAliasName string
}

// ClaimIdentity is the context of a claim-certificate connection: the
// certificate is attached to no thing, so no thing variable resolves.
func ClaimIdentity() map[string]string {
	return map[string]string{agentpolicy.IoTIsAttachedKey: "false"}
}

// Cases returns the claim matrix.
func (m ClaimMatrix) Cases() []Case {
	id := ClaimIdentity()
	var cs []Case
	add := func(allow bool, name, action, resource string) {
		cs = append(cs, Case{Name: name, Request: policyeval.Request{Action: action, Resource: resource, Context: id}, Allow: allow})
	}
	res := func(kind, rest string) string { return m.IoTARN + ":" + kind + "/" + rest }
	t := m.TemplateName
	other := "other-template"

	add(true, "claim connects to enrol agent-a", "iot:Connect", res("client", provisioning.ClaimClientID(ThingA)))
	add(true, "claim publishes CreateCertificateFromCsr", "iot:Publish", res("topic", provisioning.CreateFromCSRTopic))
	add(true, "claim publishes RegisterThing", "iot:Publish", res("topic", provisioning.ProvisionTopic(t)))
	for _, r := range []string{provisioning.CreateFromCSRAccepted, provisioning.CreateFromCSRRejected, provisioning.ProvisionAccepted(t), provisioning.ProvisionRejected(t)} {
		add(true, "claim subscribes to "+r, "iot:Subscribe", res("topicfilter", r))
		add(true, "claim receives "+r, "iot:Receive", res("topic", r))
	}

	// Sessions of agents: connecting with their client ID would disconnect them.
	for _, c := range []string{ThingA, ThingB, ThingYB, "enrol", "enrol-" + ThingA, "*", "#", ""} {
		add(false, "claim connects as "+c, "iot:Connect", res("client", c))
	}
	// Other templates, other payload formats, CreateKeysAndCertificate.
	for _, tp := range []string{
		provisioning.ProvisionTopic(other), provisioning.ProvisionAccepted(other),
		"$aws/provisioning-templates/" + t + "/provision/cbor", "$aws/certificates/create-from-csr/cbor",
		"$aws/certificates/create/json", "$aws/certificates/create/json/accepted",
	} {
		add(false, "claim publishes to "+tp, "iot:Publish", res("topic", tp))
		add(false, "claim subscribes to "+tp, "iot:Subscribe", res("topicfilter", tp))
		add(false, "claim receives "+tp, "iot:Receive", res("topic", tp))
	}
	// Wildcard filters are literal and match none of the exact resources.
	for _, f := range []string{
		"$aws/certificates/create-from-csr/json/+", "$aws/certificates/create-from-csr/#", "$aws/provisioning-templates/+/provision/json/accepted",
		"$aws/provisioning-templates/#", "$aws/#", "#", "+/+/config",
	} {
		add(false, "claim subscribes to "+f, "iot:Subscribe", res("topicfilter", f))
	}
	// Responses are never written by the claim, nor retained.
	add(false, "claim publishes a forged accepted response", "iot:Publish", res("topic", provisioning.ProvisionAccepted(t)))
	add(false, "claim retains on the request topic", "iot:RetainPublish", res("topic", provisioning.ProvisionTopic(t)))
	// Tenant topics and release topics.
	for _, tp := range []string{
		topics.ConfigTopic(CustomerX, ThingA), topics.ThingPrefix(CustomerX, ThingA) + "/telemetry", topics.ConfigTopic(CustomerY, ThingYB),
		topics.ReleaseTopic("stable"), "$aws/things/" + ThingA + "/shadow/update", "$aws/events/presence/connected/" + ThingA,
	} {
		add(false, "claim subscribes to "+tp, "iot:Subscribe", res("topicfilter", tp))
		add(false, "claim receives "+tp, "iot:Receive", res("topic", tp))
		add(false, "claim publishes to "+tp, "iot:Publish", res("topic", tp))
	}
	// No credentials, no registry.
	add(false, "claim gets role credentials", "iot:AssumeRoleWithCertificate", res("rolealias", m.RoleAliasName))
	add(false, "claim creates a thing", "iot:CreateThing", res("thing", ThingA))
	add(false, "claim changes a thing type", "iot:UpdateThing", res("thing", ThingA))
	add(false, "claim attaches a policy", "iot:AttachPolicy", res("cert", "0123456789abcdef"))
	add(false, "claim reads an artifact", "s3:GetObject", "arn:aws:s3:::any-artifacts-bucket/releases/x")
	return cs
}

// RunClaim evaluates every claim case against policies, failing t for each
// wrong decision, and returns the counts checked.
func RunClaim(t testing.TB, m ClaimMatrix, policies ...*policyeval.Policy) (allowed, denied int) {
	t.Helper()
	for _, c := range m.Cases() {
		d := policyeval.Evaluate(c.Request, policies...)
		if d.Allowed() != c.Allow {
			t.Errorf("claim policy: %s: %s on %s = %v, want allowed=%v", c.Name, c.Request.Action, c.Request.Resource, d, c.Allow)
		}
		if c.Allow {
			allowed++
		} else {
			denied++
		}
	}
	return allowed, denied
}
