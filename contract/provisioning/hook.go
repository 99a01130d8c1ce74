package provisioning

import (
	"errors"
	"strings"
)

// HookEvent is what AWS IoT sends the pre-provisioning hook Lambda when a
// device calls RegisterThing (Pre-provisioning hooks, "Pre-provision hook
// input").
type HookEvent struct {
	// ClaimCertificateID is the certificate the device connected with.
	ClaimCertificateID string `json:"claimCertificateId"`
	// CertificateID is the certificate being registered.
	CertificateID string `json:"certificateId"`
	// CertificatePEM is that certificate.
	CertificatePEM string `json:"certificatePem"`
	// TemplateARN is arn:<partition>:iot:<region>:<account>:provisioningtemplate/<name>.
	TemplateARN string `json:"templateArn"`
	// ClientID is the MQTT client ID of the device's connection.
	ClientID string `json:"clientId"`
	// Parameters are RegisterThing's parameters as the device sent them.
	Parameters map[string]string `json:"parameters"`
}

// HookResponse is what the hook returns ("Pre-provision hook return
// value"); provisioning proceeds only with AllowProvisioning true, and
// ParameterOverrides are added to the request's parameters.
type HookResponse struct {
	// AllowProvisioning admits the request.
	AllowProvisioning bool `json:"allowProvisioning"`
	// ParameterOverrides are added to the template's parameters.
	ParameterOverrides map[string]string `json:"parameterOverrides,omitempty"`
}

// MaxHookEventBytes bounds the hook's input: a certificate, a handful of
// IDs and at most MaxParameters parameters.
const MaxHookEventBytes = 64 << 10

// ParseHookEvent parses and bounds the hook's input.
func ParseHookEvent(b []byte) (HookEvent, error) {
	var e HookEvent
	if err := decode(b, MaxHookEventBytes, &e); err != nil {
		return e, err
	}
	return e, errors.Join(
		checkField("claimCertificateId", e.ClaimCertificateID, MaxFieldBytes, true),
		checkField("certificateId", e.CertificateID, MaxFieldBytes, true),
		checkField("certificatePem", e.CertificatePEM, MaxCertificateBytes, false),
		checkField("templateArn", e.TemplateARN, MaxFieldBytes, true),
		checkField("clientId", e.ClientID, MaxFieldBytes, false),
		checkParameters(e.Parameters),
	)
}

// TemplateNameFromARN returns the template name of a provisioning template
// ARN, or "" when arn is not one.
func TemplateNameFromARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iot" {
		return ""
	}
	name, ok := strings.CutPrefix(parts[5], "provisioningtemplate/")
	if !ok || ValidateTemplateName(name) != nil {
		return ""
	}
	return name
}

// Reason is why the hook refused an enrolment. AWS IoT answers every
// refusal with ACCESS_DENIED on the rejected topic; the reason is in the
// hook's log line (and, in agentgate's stand-in, nowhere else either).
type Reason string

// The hook's refusal reasons.
const (
	// ReasonMalformedEvent: the hook's input does not parse or is oversize.
	ReasonMalformedEvent Reason = "malformed_event"
	// ReasonWrongTemplate: the request is for another provisioning template.
	ReasonWrongTemplate Reason = "wrong_template"
	// ReasonBadParameters: a missing or invalid AgentId, an unknown
	// parameter, or a CustomerId sent by the device.
	ReasonBadParameters Reason = "bad_parameters"
	// ReasonTokenMalformed: the install token is not agt1.<id>.<secret>.
	ReasonTokenMalformed Reason = "token_malformed"
	// ReasonTokenOversize: the install token is longer than MaxTokenInput.
	ReasonTokenOversize Reason = "token_oversize"
	// ReasonTokenUnknown: no such token, or its secret does not match.
	ReasonTokenUnknown Reason = "token_unknown"
	// ReasonTokenRevoked: the vendor revoked the token.
	ReasonTokenRevoked Reason = "token_revoked"
	// ReasonTokenExpired: the token's validity ended.
	ReasonTokenExpired Reason = "token_expired"
	// ReasonTokenUsedUp: every use of the token was taken (a replay).
	ReasonTokenUsedUp Reason = "token_used_up"
	// ReasonWrongCustomer: the token is another customer's than the
	// installer expected.
	ReasonWrongCustomer Reason = "wrong_customer"
	// ReasonAgentTaken: a thing of that name exists and this token did not
	// create it, or another token (of this customer or another) owns the
	// agent ID.
	ReasonAgentTaken Reason = "agent_id_taken"
	// ReasonAgentRevoked: the vendor revoked the agent (agentgate-admin
	// agent revoke); its ID is enrolled again only after agent delete.
	ReasonAgentRevoked Reason = "agent_revoked"
	// ReasonAgentDeleted: a repeat of an enrolment whose agent the vendor
	// deleted since (agentgate-admin agent delete); re-enrolling that
	// agent ID needs another token.
	ReasonAgentDeleted Reason = "agent_deleted"
	// ReasonRetryWindowOver: a repeat of an interrupted enrolment later
	// than the retry window after its admission.
	ReasonRetryWindowOver Reason = "retry_window_over"
	// ReasonRateLimited: the customer's enrolments this minute reached the limit.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonInternal: the token table or IoT could not be asked.
	ReasonInternal Reason = "internal_error"
)
