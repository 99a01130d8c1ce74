package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/staticips"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// AddressesStackProps configures an AddressesStack.
type AddressesStackProps struct {
	awscdk.StackProps
	// Fleet supplies the address count.
	Fleet deployconfig.Fleet
	// Project names the addresses' Name tags.
	Project string
}

// AddressesStack holds one fleet's static Elastic IPs and nothing else, so
// no change to the network, the fleet or DNS can ever replace them. It is
// termination-protected and every address is retained.
type AddressesStack struct {
	awscdk.Stack
	// StaticIPs are the fleet's addresses.
	StaticIPs staticips.StaticIPs
}

// StaticIPsOutput is the output that lists the addresses as a JSON array.
const StaticIPsOutput = "StaticIps"

// NewAddressesStack creates the static-addresses stack of one fleet.
func NewAddressesStack(scope constructs.Construct, id string, props *AddressesStackProps) *AddressesStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	sp.TerminationProtection = jsii.Bool(true)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	ips := staticips.New(stack, jsii.String("Addresses"), &staticips.Props{
		Count:      jsii.Number(float64(props.Fleet.StaticIPCount)),
		NamePrefix: jsii.String(props.Project + "-" + props.Fleet.Name),
	})
	addrs := ips.Addresses()
	for i, a := range addrs {
		awscdk.NewCfnOutput(stack, jsii.String(fmt.Sprintf("Address%d", i+1)), &awscdk.CfnOutputProps{
			Value:       a,
			Description: jsii.String(fmt.Sprintf("static IP %d of fleet %s", i+1, props.Fleet.Name)),
		})
	}
	list := make([]any, len(addrs))
	for i, a := range addrs {
		list[i] = a
	}
	awscdk.NewCfnOutput(stack, jsii.String(StaticIPsOutput), &awscdk.CfnOutputProps{
		Value:       stack.ToJsonString(list, nil),
		Description: jsii.String("JSON list of the static IPs agents' firewalls must allow (TCP 443 outbound)"),
	})
	return &AddressesStack{Stack: stack, StaticIPs: ips}
}
