package network_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/internal/cdktest"
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
