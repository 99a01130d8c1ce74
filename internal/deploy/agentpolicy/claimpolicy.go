package agentpolicy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentgate/agentgate/contract/provisioning"
)

// ClaimParams are the inputs of the claim certificate's policy.
type ClaimParams struct {
	// IoTARN is "arn:<partition>:iot:<region>:<account>" (may hold CDK tokens).
	IoTARN string
	// TemplateName is the one provisioning template the claim may use.
	TemplateName string
}

// Validate reports every invalid parameter.
func (p ClaimParams) Validate() error {
	var errs []error
	if p.IoTARN == "" || strings.HasSuffix(p.IoTARN, ":") {
		errs = append(errs, fmt.Errorf("IoT ARN prefix %q must look like arn:<partition>:iot:<region>:<account> (no trailing colon)", p.IoTARN))
	}
	if err := provisioning.ValidateTemplateName(p.TemplateName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ClaimPolicy is the IoT policy of the claim certificate an installer
// carries. It allows fleet provisioning by claim through one template and
// nothing else (Device provisioning MQTT API,
// https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html):
//
//   - connect only with a client ID under provisioning.ClaimClientIDPrefix,
//     which no agent's client ID (its thing name) can have;
//   - publish exactly CreateCertificateFromCsr (JSON) and RegisterThing of
//     this template; CreateKeysAndCertificate ($aws/certificates/create/…,
//     where AWS generates the private key) is not allowed;
//   - subscribe to and receive exactly the accepted and rejected topics of
//     those two. IoT answers on the connection that made the request, so
//     installers sharing a claim certificate do not see each other's
//     certificates (same page: "returns the device provisioning MQTT API
//     results through the same MQTT connection used to publish the API
//     request").
//
// No wildcard filters, no retained publishing, no tenant topic, no role
// alias: a leaked claim certificate can only ask for enrolments, and the
// pre-provisioning hook admits none without an install token.
func ClaimPolicy(p ClaimParams) Document {
	arn := func(kind, rest string) string { return p.IoTARN + ":" + kind + "/" + rest }
	t := p.TemplateName
	responses := []string{provisioning.CreateFromCSRAccepted, provisioning.CreateFromCSRRejected, provisioning.ProvisionAccepted(t), provisioning.ProvisionRejected(t)}
	var filters, topics []string
	for _, r := range responses {
		filters = append(filters, arn("topicfilter", r))
		topics = append(topics, arn("topic", r))
	}
	return Document{Version: "2012-10-17", Statement: []Statement{
		{
			Sid:      "ConnectToEnrol",
			Effect:   "Allow",
			Action:   []string{"iot:Connect"},
			Resource: []string{arn("client", provisioning.ClaimClientIDPrefix+"*")},
		},
		{
			Sid:      "RequestCertificateAndRegistration",
			Effect:   "Allow",
			Action:   []string{"iot:Publish"},
			Resource: []string{arn("topic", provisioning.CreateFromCSRTopic), arn("topic", provisioning.ProvisionTopic(t))},
		},
		{
			Sid:      "SubscribeResponses",
			Effect:   "Allow",
			Action:   []string{"iot:Subscribe"},
			Resource: filters,
		},
		{
			Sid:      "ReceiveResponses",
			Effect:   "Allow",
			Action:   []string{"iot:Receive"},
			Resource: topics,
		},
	}}
}
