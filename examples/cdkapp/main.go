// Command cdkapp is another team's CDK app that reuses agentgate's
// constructs from its own Go module: one stack with the network, the static
// IPs, the load balancers, the relay fleet, the control plane, the IoT
// identity and the weighted DNS records. agentgate's Lambdas and relay image
// are built from agentgate's module wherever the Go module system has it
// (here a replace directive; for a real dependency the module cache).
//
//	go run .            # synthesizes into ./cdk.out (or $CDK_OUTDIR)
//	npx cdk synth       # the same through the CDK CLI (cdk.json)
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/agentdns"
	"github.com/agentgate/agentgate/constructs/controlplane"
	"github.com/agentgate/agentgate/constructs/edge"
	"github.com/agentgate/agentgate/constructs/identity"
	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/constructs/relayfleet"
	"github.com/agentgate/agentgate/constructs/staticips"
)

// Where the example deploys; the zones are pinned in the app context so
// synth performs no AWS lookup.
var (
	account = "111111111111"
	region  = "eu-west-1"
	zones   = []string{"eu-west-1a", "eu-west-1b"}
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"availability-zones:account=" + account + ":region=" + region: zones,
	}})
	stack := awscdk.NewStack(app, jsii.String("PartnerGateway"), &awscdk.StackProps{
		Env: &awscdk.Environment{Account: jsii.String(account), Region: jsii.String(region)},
	})

	cp := controlplane.New(stack, jsii.String("ControlPlane"), nil)
	net := network.New(stack, jsii.String("Network"), &network.Props{
		AvailabilityZones: jsii.Strings(zones...),
	})
	ips := staticips.New(stack, jsii.String("Addresses"), &staticips.Props{Count: jsii.Number(float64(len(zones)))})
	allocs := ips.AllocationIDs()
	lb := edge.New(stack, jsii.String("Edge"), &edge.Props{Vpc: net.Vpc(), AllocationIDs: &allocs})

	iotData := "a1b2c3d4e5f6g7-ats.iot." + region + ".amazonaws.com"
	relay := relayfleet.New(stack, jsii.String("Relay"), &relayfleet.Props{
		Vpc:       net.Vpc(),
		Edge:      lb,
		Routes:    &[]*relayfleet.Route{{SNI: jsii.String(iotData), Upstream: jsii.String(iotData + ":443")}},
		HealthSNI: jsii.String("health.agents.example.com"),
	})
	net.AllowEndpointsFrom(stack, jsii.String("IotEndpointsFromRelay"), relay, jsii.String("relay to the IoT endpoints"))

	identity.New(stack, jsii.String("Identity"), &identity.Props{
		ReleaseChannels: jsii.Strings("stable"),
		ArtifactsBucket: cp.ArtifactsBucket(),
	})
	addrs := ips.Addresses()
	agentdns.New(stack, jsii.String("AgentRecords"), &agentdns.Props{
		Zone: awsroute53.HostedZone_FromHostedZoneAttributes(stack, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
			HostedZoneId: jsii.String("Z0123456789ABCDEFGHIJ"),
			ZoneName:     jsii.String("agents.example.com"),
		}),
		RecordName: jsii.String("gw.agents.example.com"),
		HealthSNI:  jsii.String("health.agents.example.com"),
		Fleets:     &[]*agentdns.Fleet{{Name: jsii.String("main"), Weight: jsii.Number(1), Addresses: &addrs}},
	})

	app.Synth(nil)
}
