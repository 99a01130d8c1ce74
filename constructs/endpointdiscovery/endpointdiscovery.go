// Package endpointdiscovery finds, at deploy time, the account's AWS IoT
// Core endpoints the relay must route to: the ATS data endpoint
// (iot:Data-ATS) and the credentials provider (iot:CredentialProvider). It
// calls iot:DescribeEndpoint through a custom resource, so synth needs no
// AWS credentials and the names follow the account the stack deploys to.
// With Props.Region it looks up another region's endpoints (the SDK call is
// made in that region: AwsSdkCall.Region), e.g. for a standby fleet whose
// relays carry the agents of a fleet elsewhere; with Props.AssumedRoleArn,
// another account's.
//
// It also turns an interface VPC endpoint's DnsEntries into the endpoint's
// own regional DNS name (what the relay dials), and names an S3 bucket's
// regional virtual-hosted host.
package endpointdiscovery

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/customresources"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Endpoint types of iot:DescribeEndpoint.
const (
	// DataATS is the ATS-signed data endpoint agents use for MQTT/WSS.
	DataATS = "iot:Data-ATS"
	// CredentialProvider is the endpoint that exchanges certificates for credentials.
	CredentialProvider = "iot:CredentialProvider"
)

// Props configures a Discovery.
type Props struct {
	// Timeout of each lookup. Default: 2 minutes (the AwsCustomResource default).
	Timeout awscdk.Duration
	// Region whose endpoints are looked up, e.g. "eu-west-1". Another
	// region's endpoints are its public names, which no VPC endpoint of
	// this stack's region serves. Default: the stack's region.
	Region *string
	// AssumedRoleArn is assumed for the lookups, to read another account's
	// endpoints; the role must allow iot:DescribeEndpoint and trust this
	// stack's account. The lookup function is then granted sts:AssumeRole
	// on it and nothing else. Default: none (the stack's own account).
	AssumedRoleArn *string
}

// Discovery is the account's IoT endpoints, resolved at deploy time.
type Discovery interface {
	constructs.Construct
	// DataEndpoint is e.g. "a1b2c3-ats.iot.eu-west-1.amazonaws.com" (a token).
	DataEndpoint() *string
	// CredentialsEndpoint is e.g. "c1d2e3.credentials.iot.eu-west-1.amazonaws.com" (a token).
	CredentialsEndpoint() *string
	// Calls are the custom resources, data endpoint first.
	Calls() []customresources.AwsCustomResource
}

type discovery struct {
	constructs.Construct
	data, creds customresources.AwsCustomResource
}

// New creates the two lookups (they share one provider function with every
// other AwsCustomResource of the stack). It panics on an empty Region or
// AssumedRoleArn.
func New(scope constructs.Construct, id *string, props *Props) Discovery {
	if props == nil {
		props = &Props{}
	}
	if props.Region != nil && *props.Region == "" {
		panic("endpointdiscovery: Region is empty; omit it for the stack's region or name one such as \"eu-west-1\"")
	}
	if props.AssumedRoleArn != nil && *props.AssumedRoleArn == "" {
		panic("endpointdiscovery: AssumedRoleArn is empty; omit it to look up the stack's own account")
	}
	this := constructs.NewConstruct(scope, id)
	d := &discovery{Construct: this}
	call := func(cid, endpointType string) customresources.AwsCustomResource {
		sdk := &customresources.AwsSdkCall{
			Service:            jsii.String("Iot"),
			Action:             jsii.String("describeEndpoint"),
			Parameters:         map[string]any{"endpointType": endpointType},
			PhysicalResourceId: customresources.PhysicalResourceId_FromResponse(jsii.String("endpointAddress")),
			OutputPaths:        jsii.Strings("endpointAddress"),
			Region:             props.Region,
			AssumedRoleArn:     props.AssumedRoleArn,
		}
		return customresources.NewAwsCustomResource(this, jsii.String(cid), &customresources.AwsCustomResourceProps{
			OnCreate:            sdk,
			OnUpdate:            sdk,
			InstallLatestAwsSdk: jsii.Bool(false),
			Timeout:             props.Timeout,
			// iot:DescribeEndpoint has no resource-level permissions.
			Policy: customresources.AwsCustomResourcePolicy_FromSdkCalls(&customresources.SdkCallsPolicyOptions{
				Resources: customresources.AwsCustomResourcePolicy_ANY_RESOURCE(),
			}),
		})
	}
	d.data = call("DataEndpoint", DataATS)
	d.creds = call("CredentialsEndpoint", CredentialProvider)
	return d
}

func (d *discovery) DataEndpoint() *string {
	return d.data.GetResponseField(jsii.String("endpointAddress"))
}
func (d *discovery) CredentialsEndpoint() *string {
	return d.creds.GetResponseField(jsii.String("endpointAddress"))
}
func (d *discovery) Calls() []customresources.AwsCustomResource {
	return []customresources.AwsCustomResource{d.data, d.creds}
}

// EndpointDNSName returns an interface endpoint's regional DNS name: the
// first of its DnsEntries ("Z7HUB22UULQXV:vpce-0a1b-xyz.iot.data.eu-west-1.vpce.amazonaws.com")
// without the hosted-zone prefix. With private DNS off (the IoT endpoints
// here) the first entry is the regional, zone-independent name.
func EndpointDNSName(ep awsec2.InterfaceVpcEndpoint) *string {
	first := awscdk.Fn_Select(jsii.Number(0), ep.VpcEndpointDnsEntries())
	return awscdk.Fn_Select(jsii.Number(1), awscdk.Fn_Split(jsii.String(":"), first, nil))
}

// BucketHost returns the bucket's regional virtual-hosted S3 name,
// "<bucket>.s3.<region>.amazonaws.com", the TLS server name an agent uses.
func BucketHost(b awss3.IBucket) *string { return b.BucketRegionalDomainName() }
