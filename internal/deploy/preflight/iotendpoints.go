package preflight

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/smithy-go"
)

// Endpoint types of iot:DescribeEndpoint the edge stack discovers at deploy
// time (constructs/endpointdiscovery; a test keeps the two in step).
const (
	EndpointDataATS            = "iot:Data-ATS"
	EndpointCredentialProvider = "iot:CredentialProvider"
)

// hostRe accepts a DNS host name: what the relay will dial.
var hostRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}(\.[a-z]{2,63})?$`)

// checkIoTEndpoints checks that the caller can describe the account's IoT
// data (ATS) and credentials-provider endpoints in the region: the edge
// stack's custom resource calls the same API at deploy time, under its own
// role, which the stack grants iot:DescribeEndpoint. So a denial is
// usually only the caller's read-only credentials lacking the action
// (unknown), and a failure only when AWS says a service control policy
// denied it: that applies to every principal of the account, the custom
// resource's role included (scpDenied).
func (r *runner) checkIoTEndpoints(ctx context.Context, reg region) Result {
	scope := fmt.Sprintf("%s/%s", reg.account, reg.name)
	const action = "iot:DescribeEndpoint"
	found := map[string]string{}
	for _, typ := range []string{EndpointDataATS, EndpointCredentialProvider} {
		c, cancel := r.call(ctx)
		out, err := r.clients.iot(reg.name).DescribeEndpoint(c, &iot.DescribeEndpointInput{EndpointType: aws.String(typ)})
		cancel()
		if err == nil {
			if host := aws.ToString(out.EndpointAddress); len(host) > 253 || !hostRe.MatchString(host) {
				err = malformed("endpoint address %q is not a host name", host)
			}
		}
		if err != nil {
			res := couldNot(CheckIoTEndpoints, scope, action, err)
			res.Message += " (endpointType " + typ + ")"
			switch {
			case deniedCodes[apiCode(err)] && scpDenied(err):
				res.Status = Fail
				res.Message = strings.TrimPrefix(res.Message, "could not check: ") +
					"; a service control policy denies it to every principal of the account, so the edge stack's lookup of the endpoints at deploy time fails too"
				res.Fix = fmt.Sprintf("ask your organization's administrators to allow %s in %s for account %s in the service control policies (the edge stack cannot deploy otherwise).", action, reg.name, reg.account)
			case deniedCodes[apiCode(err)]:
				res.Message += "; these credentials lack it, but the edge stack looks the endpoints up at deploy time under its own role, which it grants " + action + ", so this says nothing about the deploy"
			}
			return res
		}
		host := aws.ToString(out.EndpointAddress)
		found[typ] = host
	}
	return Result{Check: CheckIoTEndpoints, Scope: scope, Status: OK,
		Message: fmt.Sprintf("%s %s, %s %s", EndpointDataATS, found[EndpointDataATS], EndpointCredentialProvider, found[EndpointCredentialProvider])}
}

// scpDenied reports whether an access-denied answer says a service control
// policy denied the call. AWS's access-denied messages name the policy
// type that denied ("with an explicit deny in a service control policy",
// "because no service control policy allows the …"; an SCP's deny may read
// "explicit" even when it is implicit): IAM User Guide, "Troubleshoot
// access denied error messages". Some services do not use that format (the
// same page), so a message that names no policy type is not taken as one.
func scpDenied(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && strings.Contains(strings.ToLower(ae.ErrorMessage()), "service control policy")
}
