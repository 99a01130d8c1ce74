package preflight

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
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
// stack's custom resource calls the same API at deploy time. A denial here
// is a failure, not an unknown: a service control policy that denies it to
// the caller denies it to the custom resource's role as well.
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
			if deniedCodes[apiCode(err)] {
				res.Status = Fail
				res.Message = strings.TrimPrefix(res.Message, "could not check: ") +
					"; the edge stack looks the endpoints up with the same call at deploy time"
			}
			return res
		}
		host := aws.ToString(out.EndpointAddress)
		found[typ] = host
	}
	return Result{Check: CheckIoTEndpoints, Scope: scope, Status: OK,
		Message: fmt.Sprintf("%s %s, %s %s", EndpointDataATS, found[EndpointDataATS], EndpointCredentialProvider, found[EndpointCredentialProvider])}
}
