// Package provisioning is agentgate's contract for enrolment by fleet
// provisioning by claim: the provisioning template's name rule and
// parameter names, AWS IoT's fleet-provisioning MQTT topics and their JSON
// request and response shapes, the pre-provisioning hook's input and
// output, and the vendor-issued install token. The agent (agent/enroll),
// the hook Lambda, the enrollment construct, the admin CLI and the test
// stand-ins all use it, so a renamed topic, parameter or field changes
// every side or fails to compile. It imports only the standard library and
// contract/topics.
//
// Sources (AWS IoT developer guide):
//   - Device provisioning MQTT API,
//     https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html
//     (topics, payloads, the one-hour certificateOwnershipToken);
//   - Pre-provisioning hooks,
//     https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html
//     (hook input and output, ACCESS_DENIED on refusal, five seconds);
//   - CreateProvisioningTemplate API reference,
//     https://docs.aws.amazon.com/iot/latest/apireference/API_CreateProvisioningTemplate.html
//     (template name rule).
package provisioning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/topics"
)

// DefaultTemplateName is the provisioning template agentgate deploys in
// each fleet (account and region).
const DefaultTemplateName = "agentgate-agents"

// MaxTemplateNameLen and templateNamePattern are CreateProvisioningTemplate's
// rule for templateName: 1..36 characters of [0-9A-Za-z_-].
const MaxTemplateNameLen = 36

var templateNamePattern = regexp.MustCompile(`^[0-9A-Za-z_-]+$`)

// ValidateTemplateName reports whether name can name a provisioning template.
func ValidateTemplateName(name string) error {
	switch {
	case name == "":
		return errors.New("provisioning template name is empty")
	case len(name) > MaxTemplateNameLen:
		return fmt.Errorf("provisioning template name %.20q… is %d characters; at most %d allowed", name, len(name), MaxTemplateNameLen)
	case !templateNamePattern.MatchString(name):
		return fmt.Errorf("provisioning template name %q has characters outside [0-9A-Za-z_-]", name)
	}
	return nil
}

// The template's parameters. The device sends ParamAgentID and
// ParamInstallToken (and optionally ParamExpectedCustomerID) in
// RegisterThing's parameters; the hook refuses a request that carries
// ParamCustomerID and sets it itself from the token record through
// parameterOverrides, so the thing type can only ever come from the token.
const (
	// ParamAgentID is the thing name the agent asks for (its agent ID).
	ParamAgentID = "AgentId"
	// ParamInstallToken is the vendor-issued install token.
	ParamInstallToken = "InstallToken"
	// ParamExpectedCustomerID is the customer the installer was configured
	// for; the hook refuses a token of another customer (optional).
	ParamExpectedCustomerID = "ExpectedCustomerId"
	// ParamCustomerID is the thing type, set by the hook only.
	ParamCustomerID = "CustomerId"
)

// DevicePayloadFormat is the payload format agentgate uses: JSON (the API
// also offers CBOR).
const DevicePayloadFormat = "json"

// Fleet-provisioning MQTT topics (Device provisioning MQTT API).
const (
	// CreateFromCSRTopic is where the device publishes CreateCertificateFromCsr.
	CreateFromCSRTopic = "$aws/certificates/create-from-csr/" + DevicePayloadFormat
	// CreateFromCSRAccepted carries the certificate.
	CreateFromCSRAccepted = CreateFromCSRTopic + "/accepted"
	// CreateFromCSRRejected carries an ErrorResponse.
	CreateFromCSRRejected = CreateFromCSRTopic + "/rejected"
)

// ProvisionTopic is where the device publishes RegisterThing for template.
func ProvisionTopic(template string) string {
	return "$aws/provisioning-templates/" + template + "/provision/" + DevicePayloadFormat
}

// ProvisionAccepted carries RegisterThing's RegisterThingResponse.
func ProvisionAccepted(template string) string { return ProvisionTopic(template) + "/accepted" }

// ProvisionRejected carries RegisterThing's ErrorResponse.
func ProvisionRejected(template string) string { return ProvisionTopic(template) + "/rejected" }

// CreateCertificateFromCSRRequest is the payload of CreateFromCSRTopic.
type CreateCertificateFromCSRRequest struct {
	// CertificateSigningRequest is the CSR in PEM format.
	CertificateSigningRequest string `json:"certificateSigningRequest"`
}

// CreateCertificateFromCSRResponse is the payload of CreateFromCSRAccepted.
type CreateCertificateFromCSRResponse struct {
	// CertificateID is the new certificate's ID (PENDING_ACTIVATION until RegisterThing).
	CertificateID string `json:"certificateId"`
	// CertificatePEM is the new certificate.
	CertificatePEM string `json:"certificatePem"`
	// CertificateOwnershipToken proves ownership to RegisterThing; it
	// expires after one hour.
	CertificateOwnershipToken string `json:"certificateOwnershipToken"`
}

// RegisterThingRequest is the payload of ProvisionTopic.
type RegisterThingRequest struct {
	// CertificateOwnershipToken is CreateCertificateFromCSRResponse's token.
	CertificateOwnershipToken string `json:"certificateOwnershipToken"`
	// Parameters are the template's parameters the device supplies.
	Parameters map[string]string `json:"parameters"`
}

// RegisterThingResponse is the payload of ProvisionAccepted.
type RegisterThingResponse struct {
	// DeviceConfiguration is the template's DeviceConfiguration section.
	DeviceConfiguration map[string]string `json:"deviceConfiguration,omitempty"`
	// ThingName is the provisioned thing's name.
	ThingName string `json:"thingName"`
}

// ErrorResponse is the payload of every …/rejected topic.
type ErrorResponse struct {
	// StatusCode is an HTTP-like status.
	StatusCode int `json:"statusCode"`
	// ErrorCode is e.g. "InvalidParameters" or "ACCESS_DENIED" (a hook refusal).
	ErrorCode string `json:"errorCode"`
	// ErrorMessage is free text.
	ErrorMessage string `json:"errorMessage"`
}

// Error makes a rejection an error.
func (e ErrorResponse) Error() string {
	return fmt.Sprintf("rejected: %d %s: %s", e.StatusCode, e.ErrorCode, e.ErrorMessage)
}

// ErrorCodeAccessDenied is the error code of a RegisterThing the
// pre-provisioning hook refused (or that failed or timed out).
const ErrorCodeAccessDenied = "ACCESS_DENIED"

// A request over the account's rate. The device provisioning MQTT API
// documents only the shape of a rejection ({statusCode, errorCode,
// errorMessage}), no error codes; the control-plane API of the same names
// answers ThrottlingException ("The rate exceeds the limit", e.g.
// https://docs.aws.amazon.com/iot/latest/apireference/API_RegisterThing.html).
// That the MQTT API rejects with this code and status 429 is unverified:
// the test stand-in answers so, and Throttled accepts either sign.
const (
	ErrorCodeThrottling = "ThrottlingException"
	StatusThrottled     = 429
)

// Throttled reports whether e refuses a request for its rate (worth
// sending again later, unchanged): status 429, or an error code naming
// throttling (ThrottlingException, TooManyRequestsException, any case).
func (e ErrorResponse) Throttled() bool {
	code := strings.ToLower(e.ErrorCode)
	return e.StatusCode == StatusThrottled || strings.Contains(code, "throttl") || strings.Contains(code, "toomanyrequests")
}

// Size bounds. A CSR of an ECDSA P-256 or RSA-4096 key is well below 8 KiB;
// certificates below 8 KiB; every message is below IoT's message limit.
const (
	// MaxCSRBytes bounds a CSR in PEM.
	MaxCSRBytes = 8 << 10
	// MaxCertificateBytes bounds a certificate in PEM.
	MaxCertificateBytes = 8 << 10
	// MaxFieldBytes bounds IDs, tokens and messages in the payloads.
	MaxFieldBytes = 2 << 10
	// MaxParameters bounds how many parameters a request may carry.
	MaxParameters = 16
	// MaxMessageBytes bounds every fleet-provisioning payload.
	MaxMessageBytes = 32 << 10
)

// ErrTooLarge is returned for a payload above MaxMessageBytes.
var ErrTooLarge = fmt.Errorf("provisioning payload larger than %d bytes", MaxMessageBytes)

// decode reads exactly one JSON object of at most max bytes into v.
func decode(b []byte, max int, v any) error {
	if len(b) > max {
		return ErrTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not a valid payload: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("not a valid payload: data after the JSON object")
	}
	return nil
}

func checkField(name, v string, max int, required bool) error {
	if required && v == "" {
		return fmt.Errorf("%s is missing", name)
	}
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes; at most %d allowed", name, len(v), max)
	}
	return nil
}

// ParseCreateCertificateRequest parses and checks a CreateCertificateFromCsr request.
func ParseCreateCertificateRequest(b []byte) (CreateCertificateFromCSRRequest, error) {
	var r CreateCertificateFromCSRRequest
	if err := decode(b, MaxMessageBytes, &r); err != nil {
		return r, err
	}
	return r, checkField("certificateSigningRequest", r.CertificateSigningRequest, MaxCSRBytes, true)
}

// ParseCreateCertificateResponse parses and checks CreateFromCSRAccepted's payload.
func ParseCreateCertificateResponse(b []byte) (CreateCertificateFromCSRResponse, error) {
	var r CreateCertificateFromCSRResponse
	if err := decode(b, MaxMessageBytes, &r); err != nil {
		return r, err
	}
	return r, errors.Join(
		checkField("certificateId", r.CertificateID, MaxFieldBytes, true),
		checkField("certificatePem", r.CertificatePEM, MaxCertificateBytes, true),
		checkField("certificateOwnershipToken", r.CertificateOwnershipToken, MaxFieldBytes, true),
	)
}

func checkParameters(ps map[string]string) error {
	if len(ps) > MaxParameters {
		return fmt.Errorf("%d parameters; at most %d allowed", len(ps), MaxParameters)
	}
	var errs []error
	for k, v := range ps {
		errs = append(errs, checkField("parameter name", k, MaxFieldBytes, true), checkField("parameter "+trim(k), v, MaxFieldBytes, false))
	}
	return errors.Join(errs...)
}

// ParseRegisterThingRequest parses and checks a RegisterThing request.
func ParseRegisterThingRequest(b []byte) (RegisterThingRequest, error) {
	var r RegisterThingRequest
	if err := decode(b, MaxMessageBytes, &r); err != nil {
		return r, err
	}
	return r, errors.Join(checkField("certificateOwnershipToken", r.CertificateOwnershipToken, MaxFieldBytes, true), checkParameters(r.Parameters))
}

// ParseRegisterThingResponse parses and checks ProvisionAccepted's payload;
// the thing name must be a valid agent thing name.
func ParseRegisterThingResponse(b []byte) (RegisterThingResponse, error) {
	var r RegisterThingResponse
	if err := decode(b, MaxMessageBytes, &r); err != nil {
		return r, err
	}
	if err := topics.ValidateThingName(r.ThingName); err != nil {
		return r, err
	}
	return r, checkParameters(r.DeviceConfiguration)
}

// ParseErrorResponse parses a …/rejected payload.
func ParseErrorResponse(b []byte) (ErrorResponse, error) {
	var r ErrorResponse
	if err := decode(b, MaxMessageBytes, &r); err != nil {
		return r, err
	}
	return r, errors.Join(checkField("errorCode", r.ErrorCode, MaxFieldBytes, false), checkField("errorMessage", r.ErrorMessage, MaxFieldBytes, false))
}

// trim shortens s for an error message.
func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// ClaimClientIDPrefix starts the MQTT client ID of every connection made
// with a claim certificate: ClaimClientID(agentID). Agent client IDs are
// thing names, which agentgate never lets contain ':' (contract/topics), so
// an enrolling installer can never take over (and disconnect) a running
// agent's session, and the claim policy allows exactly client/enrol:*.
// AWS IoT allows ':' in thing names, which serve as client IDs throughout
// the developer guide; a ':' in a client ID itself is unverified against a
// deployed account.
const ClaimClientIDPrefix = "enrol:"

// HookTimeLimit is how long AWS IoT waits for the pre-provisioning hook
// before it fails the RegisterThing request (Pre-provisioning hooks page,
// https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html:
// "The Lambda function must finish running and return within 5 seconds,
// otherwise the provisioning request fails").
const HookTimeLimit = 5 * time.Second

// DefaultEnrolmentsPerMinute is the hook's per-customer enrolment rate
// when the deployment sets none.
const DefaultEnrolmentsPerMinute = 60

// ClaimClientID is the client ID an installer uses while enrolling agentID.
func ClaimClientID(agentID string) string { return ClaimClientIDPrefix + agentID }

// MaxClientIDLen is AWS IoT's limit on an MQTT client ID, 128 bytes
// (AWS IoT Core endpoints and quotas, message broker: "Client ID size",
// https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits).
const MaxClientIDLen = 128

// MaxAgentIDLen bounds an enrolling agent's ID so that its claim client ID
// (ClaimClientID) stays within MaxClientIDLen.
const MaxAgentIDLen = MaxClientIDLen - len(ClaimClientIDPrefix)

// ValidateAgentID reports whether id can be enrolled: a valid thing name
// (topics.ValidateThingName) short enough for its claim client ID.
func ValidateAgentID(id string) error {
	if err := topics.ValidateThingName(id); err != nil {
		return err
	}
	if len(id) > MaxAgentIDLen {
		return fmt.Errorf("agent ID is %d bytes; at most %d, so that the enrolment's client ID %q+ID fits AWS IoT's %d-byte limit", len(id), MaxAgentIDLen, ClaimClientIDPrefix, MaxClientIDLen)
	}
	return nil
}
