package stacks_test

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/internal/cdktest"
)

func TestNetworkSpansTheConfiguredZones(t *testing.T) {
	b := load(t)
	for i, f := range b.sys.Fleets {
		tmpl := cdktest.Template(t, f.Network.Stack)
		zones := b.cfg.Fleets[i].AvailabilityZones
		for _, kind := range []string{"Public", "Private"} {
			got := map[string]int{}
			for _, r := range cdktest.Resources(t, tmpl, "AWS::EC2::Subnet") {
				props := r["Properties"].(map[string]any)
				for _, tag := range props["Tags"].([]any) {
					tg := tag.(map[string]any)
					if tg["Key"] == "aws-cdk:subnet-type" && tg["Value"] == kind {
						got[props["AvailabilityZone"].(string)]++
					}
				}
			}
			for _, z := range zones {
				if got[z] != 1 {
					t.Errorf("%s: %d %s subnets in %s, want 1", f.Config.Name, got[z], kind, z)
				}
			}
			if len(got) != len(zones) {
				t.Errorf("%s: %s subnets in zones %v, want exactly %v", f.Config.Name, kind, got, zones)
			}
		}
	}
}

func TestNetworkLogsEveryFlow(t *testing.T) {
	tmpl := cdktest.Template(t, load(t).sys.Fleets[0].Network.Stack)
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::EC2::FlowLog"), map[string]any{
			"ResourceType": "VPC",
			"TrafficType":  "ALL",
		})
		tmpl.HasResource(jsii.String("AWS::Logs::LogGroup"), map[string]any{
			"Properties":     map[string]any{"RetentionInDays": 365},
			"DeletionPolicy": "Retain",
		})
	})
}

// Agent traffic to IoT never leaves AWS's network: the data and credentials
// endpoints are interface endpoints in the fleet's private subnets, and S3
// (agent releases) has a gateway endpoint on their route tables.
func TestNetworkHasIoTAndS3Endpoints(t *testing.T) {
	b := load(t)
	for i, f := range b.sys.Fleets {
		region := b.cfg.Fleets[i].Region
		tmpl := cdktest.Template(t, f.Network.Stack)
		cdktest.Must(t, func() {
			for _, svc := range []string{"iot.data", "iot.credentials"} {
				tmpl.HasResourceProperties(jsii.String("AWS::EC2::VPCEndpoint"), map[string]any{
					"ServiceName":       "com.amazonaws." + region + "." + svc,
					"VpcEndpointType":   "Interface",
					"PrivateDnsEnabled": false,
					"SubnetIds":         assertions.Match_ArrayWith(&[]any{map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("NetworkFleetSubnet"))}}),
				})
			}
			tmpl.HasResourceProperties(jsii.String("AWS::EC2::VPCEndpoint"), map[string]any{
				"ServiceName":     map[string]any{"Fn::Join": []any{"", []any{"com.amazonaws.", map[string]any{"Ref": "AWS::Region"}, ".s3"}}},
				"VpcEndpointType": "Gateway",
			})
		})
	}
}

// Nothing may reach the IoT endpoints until the relay fleet is explicitly
// allowed: the endpoint security group starts with no ingress at all.
func TestEndpointSecurityGroupAdmitsNobodyByDefault(t *testing.T) {
	tmpl := cdktest.Template(t, load(t).sys.Fleets[0].Network.Stack)
	for id, r := range cdktest.Resources(t, tmpl, "AWS::EC2::SecurityGroup") {
		props := r["Properties"].(map[string]any)
		if props["GroupDescription"] != "IoT interface endpoints: 443 from the relay fleet only" {
			continue
		}
		if in, ok := props["SecurityGroupIngress"]; ok {
			t.Errorf("%s has ingress %v in the network stack; the fleet adds its own rule", id, in)
		}
		return
	}
	t.Fatal("endpoint security group not found")
}
