package preflight

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Error codes AWS answers when the caller's policy denies the action
// (EC2: UnauthorizedOperation; query and REST-XML services: AccessDenied;
// JSON services: AccessDeniedException; IoT also UnauthorizedException).
var deniedCodes = map[string]bool{
	"AccessDenied":          true,
	"AccessDeniedException": true,
	"UnauthorizedOperation": true,
	"UnauthorizedException": true,
	"AuthorizationError":    true,
}

// Error codes for credentials AWS does not accept at all.
var badCredentialCodes = map[string]bool{
	"AuthFailure":                 true, // EC2
	"InvalidClientTokenId":        true,
	"UnrecognizedClientException": true,
	"SignatureDoesNotMatch":       true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"InvalidSignatureException":   true,
}

// isThrottle reports the throttling codes the SDK's standard retryer knows
// (retry.DefaultThrottleErrorCodes): an answer still throttled after the
// retries is reported as such.
func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// couldNot turns a failed call into an Unknown result: the message names the
// IAM action (which is also the API call) and what went wrong; the fix says
// what to do about it.
func couldNot(check, scope, action string, err error) Result {
	msg, fix := explain(action, err)
	return Result{Check: check, Scope: scope, Status: Unknown, Message: "could not check: " + msg, Fix: fix}
}

// explain describes why the call behind action failed, in one line, and
// the remedy. It never returns the SDK's multi-part error text verbatim.
func explain(action string, err error) (msg, fix string) {
	attempts := ""
	var maxErr *retry.MaxAttemptsError
	if errors.As(err, &maxErr) {
		attempts = fmt.Sprintf(" after %d attempts", maxErr.Attempt)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		text := ae.ErrorMessage()
		switch {
		case deniedCodes[code]:
			return fmt.Sprintf("%s was denied (%s: %s)", action, code, text),
				fmt.Sprintf("allow %s for these credentials (the read-only policy is in docs/preflight.md), or check the service control policies and permission boundaries that apply to them.", action)
		case badCredentialCodes[code]:
			return fmt.Sprintf("%s: AWS rejected the credentials (%s: %s)", action, code, text),
				"refresh the credentials (aws sso login, a new session token) or choose another profile with AWS_PROFILE, then run preflight again."
		case isThrottle(code):
			return fmt.Sprintf("%s was throttled%s (%s)", action, attempts, code),
				"run preflight again in a minute; if it keeps happening, another tool is using this account's API rate."
		}
		return fmt.Sprintf("%s failed%s: %s: %s", action, attempts, code, text), "run preflight again; if it persists, the message above is AWS's own."
	}
	var de *smithy.DeserializationError
	var xmlErr *xml.SyntaxError
	var jsonErr *json.SyntaxError
	var jsonType *json.UnmarshalTypeError
	if errors.As(err, &de) || errors.Is(err, errMalformedAnswer) || errors.As(err, &xmlErr) ||
		errors.As(err, &jsonErr) || errors.As(err, &jsonType) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Sprintf("%s: malformed answer from AWS (%v)", action, rootCause(err)),
			"run preflight again; if it persists, check for a proxy or endpoint override (AWS_ENDPOINT_URL*) between you and AWS."
	}
	var quota ratelimit.QuotaExceededError
	if errors.As(err, &quota) {
		return fmt.Sprintf("%s: gave up retrying (the SDK's retry quota is spent: too many failed calls)", action),
			"run preflight again in a minute."
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("%s: no answer in time%s", action, attempts),
			"check network access to AWS (proxy, firewall, VPN) and run preflight again."
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Sprintf("%s: interrupted", action), ""
	}
	var send *smithyhttp.RequestSendError
	var netErr net.Error
	if errors.As(err, &send) || errors.As(err, &netErr) {
		cause := rootCause(err)
		var op *net.OpError
		if errors.As(err, &op) {
			cause = op // "dial tcp 127.0.0.1:1: connect: connection refused"
		}
		return fmt.Sprintf("%s: network error%s (%v)", action, attempts, cause),
			"check network access to AWS (proxy, firewall, VPN, HTTPS_PROXY) and run preflight again."
	}
	if strings.Contains(err.Error(), "get identity") {
		return fmt.Sprintf("%s: no usable AWS credentials (%v)", action, rootCause(err)),
			"configure credentials (aws configure, aws sso login, or AWS_PROFILE) and run preflight again."
	}
	return fmt.Sprintf("%s failed: %v", action, rootCause(err)), "run preflight again."
}

// malformed is an answer that parsed but makes no sense (a quota of -1, an
// account ID of "x"): reported like an answer that did not parse.
func malformed(format string, args ...any) error {
	return &smithy.DeserializationError{Err: fmt.Errorf(format, args...)}
}

// rootCause returns the innermost wrapped error, which is the part worth
// printing (the outer layers repeat the operation and request ID).
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
