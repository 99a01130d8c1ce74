// Package network provides the VPC an agentgate fleet runs in: public
// subnets for the internet-facing NLB, private subnets for the relay tasks,
// VPC flow logs, and the endpoints that keep agent traffic off the public
// internet inside AWS (IoT data, IoT credentials provider, S3 gateway).
//
// The S3 gateway endpoint carries a policy. The relay forwards agents' TLS
// to the artifacts bucket's S3 host without seeing inside it, and S3 picks
// the bucket from the Host header or path inside TLS (S3 user guide,
// "Virtual hosting of buckets"), so an endpoint that admits every bucket
// (the default policy) would make the static IPs a tunnel to every bucket
// of the region from inside this VPC. The policy admits only the objects
// listed in Props.S3ReadableObjects and ECR's image layers.
package network

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/artifacts"
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
	// S3ReadableObjects are the S3 objects anything in the private subnets
	// may read (s3:GetObject, s3:GetObjectVersion) through the S3 gateway
	// endpoint. The endpoint refuses every other S3 request of the region,
	// whatever the caller's own permissions; add more with
	// S3Endpoint().AddToPolicy. ECR's image-layer bucket of the region is
	// always readable, so tasks in the private subnets can pull images.
	// Default: none — the endpoint admits image-layer downloads only.
	S3ReadableObjects *[]*S3Objects
}

// S3Objects are the objects below one key prefix of one bucket.
type S3Objects struct {
	// Bucket holds the objects. Required.
	Bucket awss3.IBucket
	// KeyPrefix is the key prefix, ending in "/" without a leading "/" or
	// any of * ? $, such as "releases/". Required: a whole bucket is never
	// opened by default.
	KeyPrefix *string
}

// EcrLayerBucketName is the S3 bucket ECR serves image layers from in
// region: ECR user guide, "Amazon ECR interface VPC endpoints (AWS
// PrivateLink)" → "Create the Amazon S3 gateway endpoint" / "Minimum Amazon
// S3 bucket permissions for Amazon ECR" (arn:aws:s3:::prod-region-starport-layer-bucket/*).
// The name is documented for the aws partition; other partitions are
// unverified.
func EcrLayerBucketName(region string) string {
	return "prod-" + region + "-starport-layer-bucket"
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
	// endpoints on 443 (its default port). Nobody may by default; open it
	// with AllowEndpointsFrom, or from the peer's side,
	// peer.Connections().AllowToDefaultPort(EndpointConnections()), so a
	// peer in another stack gets the ingress rule in its own stack and this
	// one never depends on it.
	EndpointConnections() awsec2.Connections
	// AllowEndpointsFrom admits peer to the interface endpoints on 443 with
	// one ingress rule per pair of endpoint and peer security groups,
	// created in scope (the peer's stack, so this one never depends on it)
	// as id<i><j>. Unlike peer.Connections().AllowToDefaultPort, the rules'
	// logical IDs are the caller's, so a CDK upgrade or a move of the peer
	// cannot renumber them: a renumbered rule is a new resource, created
	// before the old one is deleted in the update's cleanup phase, and both
	// describe the same EC2 permission (what EC2 then does with the create
	// and the revoke is not documented: unverified). It adds no egress rule
	// to the peer.
	AllowEndpointsFrom(scope constructs.Construct, id *string, peer awsec2.IConnectable, description *string)
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

// New creates the network. It panics on misuse: fewer than two zones, a
// NAT gateway count outside 0..zones, or an S3ReadableObjects entry
// without a bucket or with a key prefix that is not a plain "…/" prefix.
func New(scope constructs.Construct, id *string, props *Props) Network {
	if props == nil || props.AvailabilityZones == nil || len(*props.AvailabilityZones) < 2 {
		panic("network: AvailabilityZones needs at least two zone names; the design survives the loss of one zone")
	}
	readable := checkReadable(props.S3ReadableObjects)
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
	n.policeS3Endpoint(readable)
	return n
}

// policeS3Endpoint replaces the endpoint's default full-access policy.
//
// Fargate tasks (platform 1.4.0+) pull images over their task ENI in these
// subnets (ECS developer guide, "Amazon ECS task networking options for
// Fargate"; "Migrating to Linux platform version 1.4.0"), and the S3
// prefix-list route of the gateway endpoint is more specific than the NAT
// default route, so layer downloads take the endpoint even with NAT (VPC
// user guide, "Gateway endpoints" → routing). Their requests are presigned
// by ECR, hence the principal "*" on the layer bucket only.
func (n *network) policeS3Endpoint(readable []*S3Objects) {
	stack := awscdk.Stack_Of(n.vpc)
	anyone := &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()}
	n.s3.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("EcrImageLayers"),
		Principals: anyone,
		Actions:    jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings("arn:" + *stack.Partition() + ":s3:::" +
			EcrLayerBucketName(*stack.Region()) + "/*"),
	}))
	if len(readable) == 0 {
		return
	}
	var objects []*string
	for _, r := range readable {
		objects = append(objects, r.Bucket.ArnForObjects(jsii.String(*r.KeyPrefix+"*")))
	}
	n.s3.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("ReadListedObjects"),
		Principals: anyone,
		Actions:    jsii.Strings("s3:GetObject", "s3:GetObjectVersion"),
		Resources:  &objects,
	}))
}

func checkReadable(list *[]*S3Objects) []*S3Objects {
	if list == nil {
		return nil
	}
	for i, r := range *list {
		if r == nil || r.Bucket == nil {
			panic(fmt.Sprintf("network: S3ReadableObjects[%d] has no Bucket; name the bucket whose objects the private subnets may read", i))
		}
		p := ""
		if r.KeyPrefix != nil {
			p = *r.KeyPrefix
		}
		if err := artifacts.CheckKeyPrefix(p); err != nil {
			panic(fmt.Sprintf("network: S3ReadableObjects[%d].KeyPrefix %v", i, err))
		}
	}
	return *list
}

func (n *network) Vpc() awsec2.IVpc                                    { return n.vpc }
func (n *network) IotDataEndpoint() awsec2.InterfaceVpcEndpoint        { return n.data }
func (n *network) IotCredentialsEndpoint() awsec2.InterfaceVpcEndpoint { return n.creds }
func (n *network) S3Endpoint() awsec2.GatewayVpcEndpoint               { return n.s3 }
func (n *network) FlowLogGroup() awslogs.ILogGroup                     { return n.logs }
func (n *network) EndpointConnections() awsec2.Connections             { return n.endpoint }

func (n *network) AllowEndpointsFrom(scope constructs.Construct, id *string, peer awsec2.IConnectable, description *string) {
	if id == nil || *id == "" {
		panic("network: AllowEndpointsFrom needs an id (the rules' logical ID prefix), e.g. \"IotEndpointsFromRelay\"")
	}
	peers := *peer.Connections().SecurityGroups()
	if len(peers) == 0 {
		panic("network: AllowEndpointsFrom's peer has no security group; admit a CIDR with EndpointConnections().AllowDefaultPortFrom instead")
	}
	for i, sg := range *n.endpoint.SecurityGroups() {
		for j, psg := range peers {
			awsec2.NewCfnSecurityGroupIngress(scope, jsii.String(fmt.Sprintf("%s%d%d", *id, i, j)), &awsec2.CfnSecurityGroupIngressProps{
				GroupId:               sg.SecurityGroupId(),
				SourceSecurityGroupId: psg.SecurityGroupId(),
				IpProtocol:            jsii.String("tcp"),
				FromPort:              jsii.Number(443),
				ToPort:                jsii.Number(443),
				Description:           description,
			})
		}
	}
}
