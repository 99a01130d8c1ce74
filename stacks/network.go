package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/internal/deployconfig"
)

// NetworkStackProps configures a NetworkStack.
type NetworkStackProps struct {
	awscdk.StackProps
	// Fleet supplies zones and the VPC block.
	Fleet deployconfig.Fleet
}

// NetworkStack holds one fleet's VPC.
type NetworkStack struct {
	awscdk.Stack
	// Network is the VPC with its flow logs and endpoints.
	Network network.Network
}

// NewNetworkStack creates the network stack of one fleet.
func NewNetworkStack(scope constructs.Construct, id string, props *NetworkStackProps) *NetworkStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	net := network.New(stack, jsii.String("Network"), &network.Props{
		AvailabilityZones: jsii.Strings(props.Fleet.AvailabilityZones...),
		Cidr:              jsii.String(props.Fleet.VPCCIDR),
	})
	return &NetworkStack{Stack: stack, Network: net}
}
