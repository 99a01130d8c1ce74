package agentpolicy

import "github.com/agentgate/agentgate/contract/provisioning"

// ProvisioningTemplateBody is the fleet-provisioning template body
// (Provisioning templates,
// https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html):
//
//   - thing: name = the AgentId parameter, thing type = the CustomerId
//     parameter, which only the pre-provisioning hook sets (from the
//     install token's record; it refuses a request that carries it);
//     OverrideSettings ThingTypeName DO_NOTHING, so re-enrolling an
//     existing thing can never move it to another customer;
//   - certificate: the one CreateCertificateFromCsr made
//     (AWS::IoT::Certificate::Id), ACTIVE;
//   - policy: the agents' existing IoT policy, by name;
//   - DeviceConfiguration: CustomerId, so the agent learns its customer
//     (its topics' first level) from RegisterThing's answer. That a hook's
//     parameterOverrides are visible to Ref here as they are to the
//     resources is unverified (the hook page says the overrides are added to
//     the request's parameters).
//
// The device's other parameters (InstallToken, ExpectedCustomerId) are
// declared so the request validates; the hook reads them, the template
// does not use them.
func ProvisioningTemplateBody(agentPolicyName string) map[string]any {
	str := map[string]any{"Type": "String"}
	return map[string]any{
		"Parameters": map[string]any{
			provisioning.ParamAgentID:            str,
			provisioning.ParamCustomerID:         str,
			provisioning.ParamInstallToken:       str,
			provisioning.ParamExpectedCustomerID: map[string]any{"Type": "String", "Default": ""},
			"AWS::IoT::Certificate::Id":          str,
		},
		"Resources": map[string]any{
			"thing": map[string]any{
				"Type": "AWS::IoT::Thing",
				"Properties": map[string]any{
					"ThingName":     map[string]any{"Ref": provisioning.ParamAgentID},
					"ThingTypeName": map[string]any{"Ref": provisioning.ParamCustomerID},
				},
				"OverrideSettings": map[string]any{"ThingTypeName": "DO_NOTHING"},
			},
			"certificate": map[string]any{
				"Type": "AWS::IoT::Certificate",
				"Properties": map[string]any{
					"CertificateId": map[string]any{"Ref": "AWS::IoT::Certificate::Id"},
					"Status":        "ACTIVE",
				},
			},
			"policy": map[string]any{
				"Type":       "AWS::IoT::Policy",
				"Properties": map[string]any{"PolicyName": agentPolicyName},
			},
		},
		"DeviceConfiguration": map[string]any{
			provisioning.ParamCustomerID: map[string]any{"Ref": provisioning.ParamCustomerID},
		},
	}
}
