// Package network provides the VPC an agentgate fleet runs in: public
// subnets for the internet-facing NLB, private subnets for the relay tasks,
// VPC flow logs, and the endpoints that keep agent traffic off the public
// internet inside AWS (IoT data, IoT credentials provider, S3 gateway).
package network

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Props configures a Network.
type Props struct {
	// AvailabilityZones are the zone names to span, in order; at least two.
	// Required: the addresses and the NLB are laid out per zone, so zones are
	// never left to a lookup.
	AvailabilityZones *[]*string
	// Cidr is the VPC's IPv4 block. Default: "10.40.0.0/16".
	Cidr *string
	// NatGateways is how many NAT gateways serve the private subnets (image
	// pulls, logs, cross-region routes). Default: one per zone, so losing a
	// zone never cuts another zone's egress. 0 makes the private subnets
	// isolated: then the fleet needs interface endpoints for ECR and logs.
	NatGateways *float64
	// FlowLogRetention is how long VPC flow logs are kept.
	// Default: awslogs.RetentionDays_ONE_YEAR.
	FlowLogRetention awslogs.RetentionDays
	// FlowLogTrafficType selects which flows are logged. Default: ALL.
	FlowLogTrafficType awsec2.FlowLogTrafficType
}

// Network is the fleet's VPC and its endpoints.
type Network interface {
	constructs.Construct
	// Vpc is the VPC.
	Vpc() awsec2.IVpc
	// IotDataEndpoint is the interface endpoint of com.amazonaws.<region>.iot.data.
	// It has no private DNS: the relay addresses it by its own DNS name.
	IotDataEndpoint() awsec2.InterfaceVpcEndpoint
	// IotCredentialsEndpoint is the interface endpoint of the IoT credentials provider.
	IotCredentialsEndpoint() awsec2.InterfaceVpcEndpoint
	// S3Endpoint is the S3 gateway endpoint serving the private subnets.
	S3Endpoint() awsec2.GatewayVpcEndpoint
	// FlowLogGroup receives the VPC flow logs.
	FlowLogGroup() awslogs.ILogGroup
	// EndpointConnections controls which peers may reach the interface
	// endpoints on 443. Nobody may by default; call
	// EndpointConnections().AllowDefaultPortFrom(peer) for the relay fleet.
	EndpointConnections() awsec2.Connections
}

type network struct {
	constructs.Construct
	vpc      awsec2.Vpc
	data     awsec2.InterfaceVpcEndpoint
	creds    awsec2.InterfaceVpcEndpoint
	s3       awsec2.GatewayVpcEndpoint
	logs     awslogs.LogGroup
	endpoint awsec2.Connections
}

// DefaultCidr is the VPC block used when Props.Cidr is unset.
const DefaultCidr = "10.40.0.0/16"

// New creates the network. It panics on misuse: fewer than two zones, or a
// NAT gateway count outside 0..zones.
func New(scope constructs.Construct, id *string, props *Props) Network {
	if props == nil || props.AvailabilityZones == nil || len(*props.AvailabilityZones) < 2 {
		panic("network: AvailabilityZones needs at least two zone names; the design survives the loss of one zone")
	}
	zones := len(*props.AvailabilityZones)
	nat := float64(zones)
	if props.NatGateways != nil {
		nat = *props.NatGateways
	}
	if nat < 0 || nat > float64(zones) || nat != float64(int(nat)) {
		panic(fmt.Sprintf("network: NatGateways %v must be a whole number from 0 to the zone count %d", nat, zones))
	}
	cidr := DefaultCidr
	if props.Cidr != nil {
		cidr = *props.Cidr
	}
	retention := props.FlowLogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_ONE_YEAR
	}
	traffic := props.FlowLogTrafficType
	if traffic == "" {
		traffic = awsec2.FlowLogTrafficType_ALL
	}
	privateType := awsec2.SubnetType_PRIVATE_WITH_EGRESS
	if nat == 0 {
		privateType = awsec2.SubnetType_PRIVATE_ISOLATED
	}

	this := constructs.NewConstruct(scope, id)
	n := &network{Construct: this}

	n.vpc = awsec2.NewVpc(this, jsii.String("Resource"), &awsec2.VpcProps{
		IpAddresses:       awsec2.IpAddresses_Cidr(jsii.String(cidr)),
		AvailabilityZones: props.AvailabilityZones,
		NatGateways:       jsii.Number(nat),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Edge"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("Fleet"), SubnetType: privateType, CidrMask: jsii.Number(20)},
		},
		RestrictDefaultSecurityGroup: jsii.Bool(true),
	})

	n.logs = awslogs.NewLogGroup(this, jsii.String("FlowLogs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	n.vpc.AddFlowLog(jsii.String("FlowLog"), &awsec2.FlowLogOptions{
		Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(n.logs, nil),
		TrafficType: traffic,
	})

	endpointSG := awsec2.NewSecurityGroup(this, jsii.String("EndpointSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              n.vpc,
		Description:      jsii.String("IoT interface endpoints: 443 from the relay fleet only"),
		AllowAllOutbound: jsii.Bool(false),
	})
	n.endpoint = awsec2.NewConnections(&awsec2.ConnectionsProps{
		SecurityGroups: &[]awsec2.ISecurityGroup{endpointSG},
		DefaultPort:    awsec2.Port_Tcp(jsii.Number(443)),
	})
	fleetSubnets := &awsec2.SubnetSelection{SubnetType: privateType}
	iface := func(id, service string) awsec2.InterfaceVpcEndpoint {
		return n.vpc.AddInterfaceEndpoint(jsii.String(id), &awsec2.InterfaceVpcEndpointOptions{
			Service:        awsec2.NewInterfaceVpcEndpointAwsService(jsii.String(service), nil, nil, nil),
			Subnets:        fleetSubnets,
			SecurityGroups: &[]awsec2.ISecurityGroup{endpointSG},
			// IoT data has no private DNS, and the relay maps each allowed SNI
			// to an endpoint's own DNS name, so neither endpoint takes over
			// public names inside the VPC.
			PrivateDnsEnabled: jsii.Bool(false),
			Open:              jsii.Bool(false),
		})
	}
	n.data = iface("IotData", "iot.data")
	n.creds = iface("IotCredentials", "iot.credentials")
	n.s3 = n.vpc.AddGatewayEndpoint(jsii.String("S3"), &awsec2.GatewayVpcEndpointOptions{
		Service: awsec2.GatewayVpcEndpointAwsService_S3(),
		Subnets: &[]*awsec2.SubnetSelection{fleetSubnets},
	})
	return n
}

func (n *network) Vpc() awsec2.IVpc                                    { return n.vpc }
func (n *network) IotDataEndpoint() awsec2.InterfaceVpcEndpoint        { return n.data }
func (n *network) IotCredentialsEndpoint() awsec2.InterfaceVpcEndpoint { return n.creds }
func (n *network) S3Endpoint() awsec2.GatewayVpcEndpoint               { return n.s3 }
func (n *network) FlowLogGroup() awslogs.ILogGroup                     { return n.logs }
func (n *network) EndpointConnections() awsec2.Connections             { return n.endpoint }
