package stacks_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
	"github.com/agentgate/agentgate/stacks"
)

func TestNetworkSpansTheConfiguredZones(t *testing.T) {
	b := load(t)
	for i, f := range b.sys.Fleets {
		tmpl := cdktest.Template(t, f.Network.Stack)
		zones := b.cfg.Fleets[i].AvailabilityZones
		for _, kind := range []string{"Public", "Private"} {
			got := map[string]int{}
			for _, r := range cdktest.Resources(t, tmpl, "AWS::EC2::Subnet") {
				if cdktest.Pairs(t, r, "Key", "Value", "Properties", "Tags")["aws-cdk:subnet-type"] == kind {
					got[cdktest.Get[string](t, r, "Properties", "AvailabilityZone")]++
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
		props := cdktest.Properties(t, r)
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

// Attack: the relay routes the artifacts bucket's S3 host name to itself,
// but S3 picks the bucket inside TLS, so an S3 gateway endpoint without a
// policy (or with Resource "*") is a tunnel from the static IPs to every
// bucket of the region through the vendor's VPC. Every gateway endpoint in
// every template must carry a policy without wildcard buckets or actions,
// and each fleet's admits exactly its own release objects and ECR's image
// layers of its region.
func TestS3GatewayEndpointsAreNotOpenTunnels(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	gateways := 0
	for _, s := range allStacks(b) {
		name := *s.StackName()
		for id, r := range ofType(t, tmpls[name], "AWS::EC2::VPCEndpoint") {
			p := props(r)
			if p["VpcEndpointType"] != "Gateway" {
				continue
			}
			gateways++
			doc, ok := p["PolicyDocument"].(map[string]any)
			if !ok {
				t.Errorf("%s/%s: a gateway endpoint without a policy admits every bucket of the region", name, id)
				continue
			}
			statements(doc, func(path string, st map[string]any) {
				raw, _ := json.Marshal(st["Resource"])
				if st["Resource"] == nil || st["NotResource"] != nil || st["NotAction"] != nil ||
					strings.Contains(string(raw), `"*"`) || strings.Contains(string(raw), `s3:::*`) {
					t.Errorf("%s/%s: statement %s opens more than named objects: %v", name, id, path, st)
				}
				actions, _ := json.Marshal(st["Action"])
				if st["Effect"] != "Allow" || strings.Contains(string(actions), "*") || strings.Contains(string(actions), "Put") || strings.Contains(string(actions), "Delete") {
					t.Errorf("%s/%s: statement %s: %v, want read-only Allow statements", name, id, path, st)
				}
			})
		}
	}
	if gateways != len(b.sys.Fleets) {
		t.Errorf("%d S3 gateway endpoints in the app, want one per fleet (%d)", gateways, len(b.sys.Fleets))
	}

	artifacts := func(f *stacks.Fleet) string { return "arn:aws:s3:::artifacts-" + f.Config.Name }
	for _, f := range b.sys.Fleets {
		t.Run(f.Config.Name, func(t *testing.T) {
			tmpl := tmpls[*f.Network.Stack.StackName()]
			var doc any
			for _, r := range ofType(t, tmpl, "AWS::EC2::VPCEndpoint") {
				if props(r)["VpcEndpointType"] == "Gateway" {
					doc = props(r)["PolicyDocument"]
				}
			}
			if doc == nil {
				t.Fatal("no gateway endpoint policy")
			}
			// The only reference is the fleet's own artifacts bucket.
			values := map[string]string{"AWS::Partition": "aws"}
			raw, _ := json.Marshal(doc)
			if want := `"StackName":"` + *f.ControlPlane.Stack.StackName() + `"`; strings.Count(string(raw), `"StackName":`) != strings.Count(string(raw), want) {
				t.Errorf("the endpoint policy references a stack other than %s: %s", *f.ControlPlane.Stack.StackName(), raw)
			}
			for _, ref := range crossStackRefs(doc) {
				values[ref] = artifacts(f)
			}
			resolved, err := policymatrix.Resolve(doc, values)
			if err != nil {
				t.Fatal(err)
			}
			rendered, _ := json.Marshal(resolved)
			t.Logf("endpoint policy: %s", rendered)
			p, err := policyeval.ParseEndpointPolicy(rendered)
			if err != nil {
				t.Fatal(err)
			}
			release := artifacts(f) + "/" + *f.ControlPlane.ControlPlane.ReleasePrefix() + "stable/1.2.3/linux-arm64/agent"
			layers := "arn:aws:s3:::" + network.EcrLayerBucketName(f.Config.Region) + "/sha256:0123"
			cases := []struct {
				action, resource string
				allow            bool
			}{
				{"s3:GetObject", release, true},
				{"s3:GetObjectVersion", release, true},
				{"s3:GetObject", layers, true},
				{"s3:PutObject", release, false},
				{"s3:DeleteObject", release, false},
				{"s3:ListBucket", artifacts(f), false},
				{"s3:GetObject", artifacts(f) + "/configs/acme/_default.json", false},
				{"s3:PutObject", layers, false},
				{"s3:GetObject", "arn:aws:s3:::some-other-bucket/" + *f.ControlPlane.ControlPlane.ReleasePrefix() + "x", false},
				{"s3:PutObject", "arn:aws:s3:::some-other-bucket/x", false},
			}
			for _, other := range b.sys.Fleets {
				if other != f {
					cases = append(cases, struct {
						action, resource string
						allow            bool
					}{"s3:GetObject", artifacts(other) + "/" + *other.ControlPlane.ControlPlane.ReleasePrefix() + "x", false})
				}
			}
			for _, c := range cases {
				if got := policyeval.Evaluate(policyeval.Request{Action: c.action, Resource: c.resource}, p).Allowed(); got != c.allow {
					t.Errorf("%s on %s through the S3 endpoint: allowed=%v, want %v", c.action, c.resource, got, c.allow)
				}
			}
		})
	}
}

// The S3 endpoint policy admits only what the relay (release downloads)
// and the relay tasks' image pulls need. Anything else placed in the VPC
// that reads S3 would be refused there: today nothing is, and a new
// resource in the VPC must extend the policy (network.Props.S3ReadableObjects).
func TestOnlyTheRelayRunsInTheVPC(t *testing.T) {
	b := load(t)
	tmpls := templates(t, b)
	edges := map[string]bool{}
	for _, f := range b.sys.Fleets {
		edges[*f.Edge.Stack.StackName()] = true
	}
	for _, s := range allStacks(b) {
		name := *s.StackName()
		for id, r := range ofType(t, tmpls[name], "AWS::Lambda::Function") {
			if _, inVPC := props(r)["VpcConfig"]; inVPC {
				t.Errorf("%s/%s: a Lambda function in the VPC reaches S3 through the policed gateway endpoint; add what it reads to network.Props.S3ReadableObjects and to this test", name, id)
			}
		}
		want := 0
		if edges[name] {
			want = 1
		}
		if got := len(ofType(t, tmpls[name], "AWS::ECS::Service")); got != want {
			t.Errorf("%s: %d ECS services, want %d (the relay in each edge stack only)", name, got, want)
		}
	}
}
