package preflight_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

// fuzzOps are the operations whose 200 answer the fuzzer replaces.
var fuzzOps = []string{
	"sts:GetCallerIdentity", "ec2:DescribeAddresses", "servicequotas:GetServiceQuota",
	"ec2:DescribeVpcEndpointServices", "ssm:GetParameter", "iot:GetV2LoggingOptions",
	"iot:DescribeAccountAuditConfiguration", "cloudformation:ListStackResources",
	"iot:DescribeEndpoint", "route53:GetHostedZone",
}

// Whatever bytes AWS (or something in between) answers with, preflight
// reports one line per check and never panics.
func FuzzAnswers(f *testing.F) {
	f.Add(uint8(1), []byte(`<DescribeAddressesResponse><addressesSet><item><domain>vpc</domain></item></addressesSet></DescribeAddressesResponse>`))
	f.Add(uint8(2), []byte(`{"Quota":{"Value":1e308}}`))
	f.Add(uint8(4), []byte(`{"Parameter":{"Value":"99999999999999999999"}}`))
	f.Add(uint8(5), []byte(`{"roleArn":"x","disableAllLogs":"yes"}`))
	f.Add(uint8(7), []byte(`<ListStackResourcesResponse><ListStackResourcesResult><NextToken>x</NextToken></ListStackResourcesResult></ListStackResourcesResponse>`))
	f.Add(uint8(8), []byte(`{"endpointAddress":"a\nb"}`))
	f.Add(uint8(9), []byte(`<GetHostedZoneResponse><HostedZone><Name>`+strings.Repeat("x", 300)+`</Name></HostedZone></GetHostedZoneResponse>`))
	f.Add(uint8(0), []byte(`<GetCallerIdentityResponse><GetCallerIdentityResult><Account>12</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`))
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		s := preflightstandin.Start(account)
		defer s.Close()
		healthy(s)
		s.Region("eu-west-1").Logging = &preflightstandin.Logging{RoleArn: theirRole, DefaultLogLevel: "WARN"}
		s.Region("eu-west-1").Stacks["agentgate-euw1-identity"] = nil
		s.SetAnswer(fuzzOps[int(which)%len(fuzzOps)], body)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		rep := preflight.Run(ctx, preflight.Options{Config: example(t), AWS: s.AWSConfig(1)})
		if len(rep) == 0 {
			t.Fatal("empty report")
		}
		for _, r := range rep {
			if line := r.Line(); strings.ContainsAny(line, "\n\r") || r.Status.String() == "" {
				t.Fatalf("bad line %q", line)
			}
		}
	})
}
