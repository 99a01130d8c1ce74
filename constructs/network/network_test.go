package network_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func newStack() awscdk.Stack {
	return awscdk.NewStack(cdktest.NewApp(), jsii.String("Test"), &awscdk.StackProps{Env: cdktest.TestEnv})
}

func TestDefaultsGiveOneNatPerZoneAndNoNagFindings(t *testing.T) {
	stack := newStack()
	n := network.New(stack, jsii.String("Net"), &network.Props{AvailabilityZones: jsii.Strings(cdktest.TestZones...)})
	tmpl := cdktest.Template(t, stack)
	if got := len(cdktest.LogicalIDs(t, tmpl, "AWS::EC2::NatGateway")); got != len(cdktest.TestZones) {
		t.Errorf("%d NAT gateways, want one per zone (%d)", got, len(cdktest.TestZones))
	}
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::EC2::VPC"), map[string]any{"CidrBlock": network.DefaultCidr})
	})
	if n.Vpc() == nil || n.IotDataEndpoint() == nil || n.IotCredentialsEndpoint() == nil || n.S3Endpoint() == nil || n.FlowLogGroup() == nil {
		t.Error("an accessor returned nil")
	}
	cdktest.NoNagFindings(t, stack)
}

// With no NAT the fleet subnets are isolated, and the endpoints follow them.
func TestNoNatMakesIsolatedSubnets(t *testing.T) {
	stack := newStack()
	network.New(stack, jsii.String("Net"), &network.Props{
		AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b"),
		NatGateways:       jsii.Number(0),
	})
	tmpl := cdktest.Template(t, stack)
	if got := len(cdktest.LogicalIDs(t, tmpl, "AWS::EC2::NatGateway")); got != 0 {
		t.Errorf("%d NAT gateways, want 0", got)
	}
	isolated := 0
	for _, r := range cdktest.Resources(t, tmpl, "AWS::EC2::Subnet") {
		if strings.Contains(fmt.Sprint(r["Properties"]), "Isolated") {
			isolated++
		}
	}
	if isolated != 2 {
		t.Errorf("%d isolated subnets, want 2", isolated)
	}
}

func TestEndpointConnectionsOpenOnlyWhatIsAllowed(t *testing.T) {
	stack := newStack()
	n := network.New(stack, jsii.String("Net"), &network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b")})
	n.EndpointConnections().AllowDefaultPortFrom(awsec2.Peer_Ipv4(jsii.String("10.40.16.0/20")), jsii.String("relay fleet"))
	tmpl := cdktest.Template(t, stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::EC2::SecurityGroup"), map[string]any{
			"SecurityGroupIngress": []any{map[string]any{
				"CidrIp": "10.40.16.0/20", "FromPort": 443, "ToPort": 443, "IpProtocol": "tcp", "Description": "relay fleet",
			}},
		})
	})
}

func TestMisusePanicsWithTheFix(t *testing.T) {
	cases := map[string]struct {
		props *network.Props
		want  string
	}{
		"nil":      {nil, "needs at least two zone names"},
		"one zone": {&network.Props{AvailabilityZones: jsii.Strings("eu-west-1a")}, "needs at least two zone names"},
		"nat > az": {&network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b"), NatGateways: jsii.Number(3)}, "NatGateways 3 must be a whole number from 0 to the zone count 2"},
		"nat frac": {&network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b"), NatGateways: jsii.Number(0.5)}, "NatGateways 0.5"},
		"nat neg":  {&network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b"), NatGateways: jsii.Number(-1)}, "NatGateways -1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			network.New(newStack(), jsii.String("Net"), tc.props)
		})
	}
}

// endpointPolicy resolves and parses the S3 gateway endpoint's policy.
func endpointPolicy(t *testing.T, stack awscdk.Stack, values map[string]string) *policyeval.Policy {
	t.Helper()
	var found []any
	for _, p := range cdktest.PropertiesOfType(cdktest.TemplateJSON(t, stack), "AWS::EC2::VPCEndpoint") {
		if p["VpcEndpointType"] == "Gateway" {
			found = append(found, p["PolicyDocument"])
		}
	}
	if len(found) != 1 || found[0] == nil {
		t.Fatalf("gateway endpoint policies %v, want exactly one policy", found)
	}
	resolved, err := policymatrix.Resolve(found[0], values)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(resolved)
	p, err := policyeval.ParseEndpointPolicy(doc)
	if err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	return p
}

type s3Case struct {
	action, resource string
	allow            bool
}

func checkS3(t *testing.T, p *policyeval.Policy, cases []s3Case) {
	t.Helper()
	for _, c := range cases {
		if got := policyeval.Evaluate(policyeval.Request{Action: c.action, Resource: c.resource}, p).Allowed(); got != c.allow {
			t.Errorf("%s on %s through the S3 endpoint: allowed=%v, want %v", c.action, c.resource, got, c.allow)
		}
	}
}

// Attack: the relay forwards the artifacts bucket's S3 host name, but S3
// picks the bucket inside TLS, so an S3 gateway endpoint without a policy
// lets anyone who reaches the static IPs read and write every bucket of the
// region through the vendor's VPC. By default the endpoint admits ECR's
// image layers only; listed prefixes are readable, nothing is writable.
func TestS3EndpointIsNotAnOpenTunnelToEveryBucket(t *testing.T) {
	values := map[string]string{"AWS::Partition": "aws"}
	layers := "arn:aws:s3:::" + network.EcrLayerBucketName("eu-west-1") + "/sha256:0123"
	t.Run("default", func(t *testing.T) {
		stack := newStack()
		network.New(stack, jsii.String("Net"), &network.Props{AvailabilityZones: jsii.Strings(cdktest.TestZones...)})
		checkS3(t, endpointPolicy(t, stack, values), []s3Case{
			{"s3:GetObject", layers, true},
			{"s3:PutObject", layers, false},
			{"s3:GetObject", "arn:aws:s3:::" + network.EcrLayerBucketName("us-east-1") + "/sha256:0123", false},
			{"s3:GetObject", "arn:aws:s3:::any-bucket/releases/x", false},
			{"s3:PutObject", "arn:aws:s3:::any-bucket/x", false},
			{"s3:ListBucket", "arn:aws:s3:::any-bucket", false},
		})
		cdktest.NoNagFindings(t, stack)
	})
	t.Run("with release objects", func(t *testing.T) {
		stack := newStack()
		bucket := awss3.NewBucket(stack, jsii.String("Artifacts"), nil)
		network.New(stack, jsii.String("Net"), &network.Props{
			AvailabilityZones: jsii.Strings(cdktest.TestZones...),
			S3ReadableObjects: &[]*network.S3Objects{{Bucket: bucket, KeyPrefix: jsii.String("releases/")}},
		})
		values := map[string]string{"AWS::Partition": "aws", *stack.GetLogicalId(bucket.Node().DefaultChild().(awscdk.CfnElement)) + ".Arn": "arn:aws:s3:::artifacts"}
		checkS3(t, endpointPolicy(t, stack, values), []s3Case{
			{"s3:GetObject", layers, true},
			{"s3:GetObject", "arn:aws:s3:::artifacts/releases/stable/1.2.3/linux-arm64/agent", true},
			{"s3:GetObjectVersion", "arn:aws:s3:::artifacts/releases/stable/1.2.3/linux-arm64/agent", true},
			{"s3:PutObject", "arn:aws:s3:::artifacts/releases/x", false},
			{"s3:DeleteObject", "arn:aws:s3:::artifacts/releases/x", false},
			{"s3:GetObject", "arn:aws:s3:::artifacts/configs/acme/a.json", false},
			{"s3:GetObject", "arn:aws:s3:::artifacts/releases-private/x", false},
			{"s3:ListBucket", "arn:aws:s3:::artifacts", false},
			{"s3:GetObject", "arn:aws:s3:::artifacts-other/releases/x", false},
			{"s3:GetObject", "arn:aws:s3:::any-bucket/releases/x", false},
		})
	})
}

func TestS3ReadableObjectsMisusePanics(t *testing.T) {
	for name, c := range map[string]struct {
		objects func(awscdk.Stack) []*network.S3Objects
		want    string
	}{
		"nil entry": {func(awscdk.Stack) []*network.S3Objects { return []*network.S3Objects{nil} }, "S3ReadableObjects[0] has no Bucket"},
		"no bucket": {func(awscdk.Stack) []*network.S3Objects { return []*network.S3Objects{{KeyPrefix: jsii.String("r/")}} }, "has no Bucket"},
		"no prefix": {func(s awscdk.Stack) []*network.S3Objects {
			return []*network.S3Objects{{Bucket: awss3.NewBucket(s, jsii.String("B"), nil)}}
		}, `KeyPrefix ""`},
		"no slash": {func(s awscdk.Stack) []*network.S3Objects {
			return []*network.S3Objects{{Bucket: awss3.NewBucket(s, jsii.String("B"), nil), KeyPrefix: jsii.String("releases")}}
		}, `KeyPrefix "releases"`},
		"wildcard": {func(s awscdk.Stack) []*network.S3Objects {
			return []*network.S3Objects{{Bucket: awss3.NewBucket(s, jsii.String("B"), nil), KeyPrefix: jsii.String("*/")}}
		}, `KeyPrefix "*/"`},
		"leading slash": {func(s awscdk.Stack) []*network.S3Objects {
			return []*network.S3Objects{{Bucket: awss3.NewBucket(s, jsii.String("B"), nil), KeyPrefix: jsii.String("/r/")}}
		}, `KeyPrefix "/r/"`},
	} {
		t.Run(name, func(t *testing.T) {
			stack := newStack()
			objects := c.objects(stack)
			cdktest.MustPanic(t, c.want, func() {
				network.New(stack, jsii.String("Net"), &network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b"), S3ReadableObjects: &objects})
			})
		})
	}
}

func TestAllowEndpointsFromNamesItsRules(t *testing.T) {
	stack := newStack()
	n := network.New(stack, jsii.String("Net"), &network.Props{AvailabilityZones: jsii.Strings("eu-west-1a", "eu-west-1b")})
	peer := awsec2.NewSecurityGroup(stack, jsii.String("Peer"), &awsec2.SecurityGroupProps{Vpc: n.Vpc(), AllowAllOutbound: jsii.Bool(false)})
	n.AllowEndpointsFrom(stack, jsii.String("FromPeer"), peer, jsii.String("peer to the endpoints"))
	tmpl := cdktest.Template(t, stack)
	cdktest.PinnedLogicalIDs(t, tmpl, "AWS::EC2::SecurityGroupIngress", "FromPeer00")
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::EC2::SecurityGroupIngress"), map[string]any{
			"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "Description": "peer to the endpoints",
		})
		tmpl.ResourceCountIs(jsii.String("AWS::EC2::SecurityGroupEgress"), jsii.Number(0))
	})
	rule := cdktest.Properties(t, cdktest.ResourcesOfType(t, cdktest.TemplateJSON(t, stack), "AWS::EC2::SecurityGroupIngress")["FromPeer00"])
	src := cdktest.List(t, rule, "SourceSecurityGroupId", "Fn::GetAtt")
	if len(src) != 2 || !strings.HasPrefix(fmt.Sprint(src[0]), "Peer") || src[1] != "GroupId" {
		t.Errorf("FromPeer00's source %v, want the peer's security group", src)
	}
	dst := cdktest.List(t, rule, "GroupId", "Fn::GetAtt")
	if len(dst) != 2 || !strings.HasPrefix(fmt.Sprint(dst[0]), "NetEndpointSecurityGroup") {
		t.Errorf("FromPeer00's group %v, want the endpoints' security group", dst)
	}
}
