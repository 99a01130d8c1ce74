package preflight

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// IoT interface endpoint services the network stack creates endpoints for.
// The IoT developer guide ("Using AWS IoT Core with interface VPC
// endpoints") says to call describe-vpc-endpoint-services first "to ensure
// that you are choosing an Availability Zone where AWS IoT Core is present":
// the services are not offered in every zone.
const (
	iotDataService        = "iot.data"
	iotCredentialsService = "iot.credentials"
)

// EndpointServiceName is the VPC endpoint service name of an AWS service in
// region, e.g. "com.amazonaws.eu-west-1.iot.data".
func EndpointServiceName(region, service string) string {
	return "com.amazonaws." + region + "." + service
}

// maxPages bounds every paginated read.
const maxPages = 20

// checkEndpointZones checks that every zone of the fleet offers both IoT
// endpoint services.
func (r *runner) checkEndpointZones(ctx context.Context, reg region, f fleetRef) Result {
	scope := fmt.Sprintf("%s/%s (fleet %s)", reg.account, reg.name, f.Name)
	var missing []string
	var offeredByAll []string
	for i, svc := range []string{iotDataService, iotCredentialsService} {
		name := EndpointServiceName(reg.name, svc)
		zones, offered, err := r.endpointServiceZones(ctx, reg.name, name)
		if err != nil {
			return couldNot(CheckEndpointZones, scope, "ec2:DescribeVpcEndpointServices", err)
		}
		if !offered {
			return Result{Check: CheckEndpointZones, Scope: scope, Status: Fail,
				Message: fmt.Sprintf("%s does not offer %s as a VPC endpoint service", reg.name, name),
				Fix:     fmt.Sprintf("move fleet %s to a region that offers both %s and %s (aws ec2 describe-vpc-endpoint-services --service-names com.amazonaws.<region>.%s --region <region>).", f.Name, iotDataService, iotCredentialsService, svc)}
		}
		var lacking []string
		for _, z := range f.AvailabilityZones {
			if !slices.Contains(zones, z) {
				lacking = append(lacking, z)
			}
		}
		if len(lacking) > 0 {
			missing = append(missing, fmt.Sprintf("%s lacks %s (offered in %s)", strings.Join(lacking, ", "), name, strings.Join(zones, ", ")))
		}
		if i == 0 {
			offeredByAll = zones
		} else {
			offeredByAll = slices.DeleteFunc(offeredByAll, func(z string) bool { return !slices.Contains(zones, z) })
		}
	}
	if len(missing) == 0 {
		return Result{Check: CheckEndpointZones, Scope: scope, Status: OK,
			Message: fmt.Sprintf("%s offer %s and %s", strings.Join(f.AvailabilityZones, ", "), iotDataService, iotCredentialsService)}
	}
	field := fmt.Sprintf("fleets[%d].availabilityZones", f.index)
	fix := fmt.Sprintf("set %s to zones offering both services: %s.", field, strings.Join(offeredByAll, ", "))
	if len(offeredByAll) < 2 {
		fix = fmt.Sprintf("only %d zone(s) of %s offer both services (%s) and the design needs two; place fleet %s in another region.", len(offeredByAll), reg.name, strings.Join(offeredByAll, ", "), f.Name)
	}
	return Result{Check: CheckEndpointZones, Scope: scope, Status: Fail, Message: strings.Join(missing, "; "), Fix: fix}
}

// endpointServiceZones returns the zones that offer the named endpoint
// service; offered is false when the region does not offer it at all (EC2
// answers InvalidServiceName, or leaves it out of the answer).
func (r *runner) endpointServiceZones(ctx context.Context, region, name string) (zones []string, offered bool, err error) {
	client := r.clients.ec2(region)
	var token *string
	for page := 0; page < maxPages; page++ {
		c, cancel := r.call(ctx)
		out, err := client.DescribeVpcEndpointServices(c, &ec2.DescribeVpcEndpointServicesInput{
			ServiceNames: []string{name}, NextToken: token})
		cancel()
		if apiCode(err) == "InvalidServiceName" {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		for _, d := range out.ServiceDetails {
			if aws.ToString(d.ServiceName) == name {
				offered = true
				zones = append(zones, d.AvailabilityZones...)
			}
		}
		token = out.NextToken
		if aws.ToString(token) == "" {
			slices.Sort(zones)
			return slices.Compact(zones), offered, nil
		}
	}
	return nil, false, malformed("more than %d pages of endpoint services for one name", maxPages)
}
