package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// NetworkStackProps configures a NetworkStack.
type NetworkStackProps struct {
	awscdk.StackProps
	// Fleet supplies zones and the VPC block.
	Fleet deployconfig.Fleet
	// ArtifactsBucket and ReleasePrefix name the only objects the S3
	// gateway endpoint admits besides ECR's image layers: agents download
	// releases through the relay and this endpoint. Without a bucket the
	// endpoint admits image layers only.
	ArtifactsBucket awss3.IBucket
	// ReleasePrefix is the release key prefix of ArtifactsBucket
	// (controlplane.ControlPlane.ReleasePrefix()).
	ReleasePrefix *string
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
	// The artifacts bucket is read from the control-plane stack with a weak
	// reference (Fn::GetStackOutput), as cdk.json sets app-wide; pinned here
	// so unit tests synthesize the same template.
	awscdk.CrossStackReferences_Of(stack).Consume(awscdk.ReferenceStrength_WEAK)
	var readable *[]*network.S3Objects
	if props.ArtifactsBucket != nil {
		readable = &[]*network.S3Objects{{Bucket: props.ArtifactsBucket, KeyPrefix: props.ReleasePrefix}}
	}
	net := network.New(stack, jsii.String("Network"), &network.Props{
		AvailabilityZones: jsii.Strings(props.Fleet.AvailabilityZones...),
		Cidr:              jsii.String(props.Fleet.VPCCIDR),
		S3ReadableObjects: readable,
	})
	return &NetworkStack{Stack: stack, Network: net}
}
