package endpointdiscovery_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/endpointdiscovery"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func TestDiscoversDataAndCredentialsEndpoints(t *testing.T) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("DiscoveryTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	d := endpointdiscovery.New(stack, jsii.String("Iot"), nil)
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{AvailabilityZones: jsii.Strings(cdktest.TestZones[:2]...), NatGateways: jsii.Number(0)})
	ep := vpc.AddInterfaceEndpoint(jsii.String("Data"), &awsec2.InterfaceVpcEndpointOptions{
		Service: awsec2.NewInterfaceVpcEndpointAwsService(jsii.String("iot.data"), nil, nil, nil), PrivateDnsEnabled: jsii.Bool(false),
	})
	bucket := awss3.Bucket_FromBucketName(stack, jsii.String("Artifacts"), jsii.String("agentgate-artifacts"))
	awscdk.NewCfnOutput(stack, jsii.String("Data"), &awscdk.CfnOutputProps{Value: d.DataEndpoint()})
	awscdk.NewCfnOutput(stack, jsii.String("Creds"), &awscdk.CfnOutputProps{Value: d.CredentialsEndpoint()})
	awscdk.NewCfnOutput(stack, jsii.String("DataDns"), &awscdk.CfnOutputProps{Value: endpointdiscovery.EndpointDNSName(ep)})
	awscdk.NewCfnOutput(stack, jsii.String("Bucket"), &awscdk.CfnOutputProps{Value: endpointdiscovery.BucketHost(bucket)})

	tmpl := cdktest.TemplateJSON(t, stack)
	types := map[string]string{}
	for id, m := range cdktest.ResourcesOfType(t, tmpl, "Custom::AWS") {
		var call struct {
			Service, Action string
			Parameters      map[string]string
			OutputPaths     []string
		}
		if err := json.Unmarshal([]byte(cdktest.Get[string](t, m, "Properties", "Create")), &call); err != nil {
			t.Fatal(err)
		}
		if call.Service != "Iot" || call.Action != "describeEndpoint" || strings.Join(call.OutputPaths, ",") != "endpointAddress" {
			t.Errorf("%s: %+v", id, call)
		}
		types[call.Parameters["endpointType"]] = id
	}
	if len(types) != 2 || types[endpointdiscovery.DataATS] == "" || types[endpointdiscovery.CredentialProvider] == "" {
		t.Fatalf("lookups %v, want iot:Data-ATS and iot:CredentialProvider", types)
	}
	js := func(k string) string {
		b, _ := json.Marshal(cdktest.Object(t, tmpl, "Outputs", k)["Value"])
		return string(b)
	}
	if got := js("Data"); got != `{"Fn::GetAtt":["`+types[endpointdiscovery.DataATS]+`","endpointAddress"]}` {
		t.Errorf("data endpoint %s", got)
	}
	if got := js("DataDns"); !strings.HasPrefix(got, `{"Fn::Select":[1,{"Fn::Split":[":",{"Fn::Select":[0,{"Fn::GetAtt":["VpcData`) || !strings.Contains(got, `"DnsEntries"]}`) {
		t.Errorf("endpoint DNS name %s, want the second ':' field of the first DnsEntries item", got)
	}
	if got := js("Bucket"); !strings.Contains(got, "agentgate-artifacts.s3.eu-west-1.") {
		t.Errorf("bucket host %s", got)
	}
	// iot:DescribeEndpoint has no resource-level permissions: one action, resource *.
	for _, p := range cdktest.PropertiesOfType(tmpl, "AWS::IAM::Policy") {
		b, _ := json.Marshal(p["PolicyDocument"])
		if !strings.Contains(string(b), `"Action":"iot:DescribeEndpoint"`) || strings.Count(string(b), `"Action"`) != 1 {
			t.Errorf("lookup policy %s, want iot:DescribeEndpoint only", b)
		}
	}
}

// A standby fleet looks up another region's endpoints: the SDK call is made
// in that region; with a role, in another account (only sts:AssumeRole is
// granted then).
func TestLooksUpAnotherRegionAndAccount(t *testing.T) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("PeerDiscoveryTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	endpointdiscovery.New(stack, jsii.String("Peer"), &endpointdiscovery.Props{Region: jsii.String("us-east-1")})
	const role = "arn:aws:iam::222222222222:role/iot-endpoint-lookup"
	endpointdiscovery.New(stack, jsii.String("OtherAccount"), &endpointdiscovery.Props{Region: jsii.String("ap-south-1"), AssumedRoleArn: jsii.String(role)})
	tmpl := cdktest.TemplateJSON(t, stack)
	regions := map[string]int{}
	for id, m := range cdktest.ResourcesOfType(t, tmpl, "Custom::AWS") {
		var call struct {
			Action, Region, AssumedRoleArn string
		}
		if err := json.Unmarshal([]byte(cdktest.Get[string](t, m, "Properties", "Create")), &call); err != nil {
			t.Fatal(err)
		}
		if call.Action != "describeEndpoint" || (call.Region == "ap-south-1") != (call.AssumedRoleArn == role) {
			t.Errorf("%s: %+v", id, call)
		}
		regions[call.Region]++
	}
	if regions["us-east-1"] != 2 || regions["ap-south-1"] != 2 || len(regions) != 2 {
		t.Errorf("lookups per region %v, want both endpoint types in us-east-1 and ap-south-1", regions)
	}
	var actions []string
	for _, p := range cdktest.PropertiesOfType(tmpl, "AWS::IAM::Policy") {
		b, _ := json.Marshal(p["PolicyDocument"])
		actions = append(actions, string(b))
	}
	all := strings.Join(actions, "\n")
	if !strings.Contains(all, `"Action":"sts:AssumeRole","Effect":"Allow","Resource":"`+role+`"`) || strings.Count(all, "iot:DescribeEndpoint") != 2 {
		t.Errorf("lookup policies:\n%s\nwant iot:DescribeEndpoint for the own-account lookups and sts:AssumeRole on the role for the other", all)
	}
	for _, bad := range []*endpointdiscovery.Props{{Region: jsii.String("")}, {AssumedRoleArn: jsii.String("")}} {
		cdktest.MustPanic(t, "is empty", func() { endpointdiscovery.New(stack, jsii.String("Bad"), bad) })
	}
}
