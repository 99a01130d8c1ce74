package edge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/edge"
	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

// newStack returns a fresh stack with a three-zone VPC (public + isolated subnets).
func newStack() (awscdk.Stack, awsec2.Vpc) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("EdgeTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings(cdktest.TestZones...),
		NatGateways:       jsii.Number(0),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Edge"), SubnetType: awsec2.SubnetType_PUBLIC},
			{Name: jsii.String("Fleet"), SubnetType: awsec2.SubnetType_PRIVATE_ISOLATED},
		},
	})
	return stack, vpc
}

func allocs(n int) *[]*string {
	var out []*string
	for i := 1; i <= n; i++ {
		out = append(out, jsii.String(fmt.Sprintf("eipalloc-%d", i)))
	}
	return &out
}

// shared: six addresses over three zones → two load balancers.
var shared = sync.OnceValue(func() awscdk.Stack {
	stack, vpc := newStack()
	edge.New(stack, jsii.String("Edge"), &edge.Props{Vpc: vpc, AllocationIDs: allocs(6), IdleTimeoutSec: jsii.Number(500)})
	return stack
})

func resources(t *testing.T, typ string) []map[string]any {
	t.Helper()
	return cdktest.PropertiesOfType(cdktest.TemplateJSON(t, shared()), typ)
}

func TestOneLoadBalancerPerZoneSetOfAddresses(t *testing.T) {
	lbs := resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer")
	if len(lbs) != 2 {
		t.Fatalf("%d load balancers for 6 addresses in 3 zones, want 2", len(lbs))
	}
	seen := map[string]bool{}
	for _, lb := range lbs {
		js, _ := json.Marshal(lb["LoadBalancerAttributes"])
		if !strings.Contains(string(js), `{"Key":"load_balancing.cross_zone.enabled","Value":"false"}`) {
			t.Errorf("cross-zone not off: %s", js)
		}
		if lb["Scheme"] != "internet-facing" {
			t.Errorf("scheme %v", lb["Scheme"])
		}
		m := cdktest.Objects(t, lb, "SubnetMappings")
		if len(m) != 3 {
			t.Fatalf("%d mappings, want 3", len(m))
		}
		for _, x := range m {
			seen[cdktest.Get[string](t, x, "AllocationId")] = true
		}
	}
	if len(seen) != 6 {
		t.Errorf("allocations used %v, want each of the 6 once", seen)
	}
}

func TestListenerIdleTimeoutAndTargetGroups(t *testing.T) {
	for _, l := range resources(t, "AWS::ElasticLoadBalancingV2::Listener") {
		js, _ := json.Marshal(l["ListenerAttributes"])
		if l["Port"] != float64(443) || l["Protocol"] != "TCP" || string(js) != `[{"Key":"tcp.idle_timeout.seconds","Value":"500"}]` {
			t.Errorf("listener %v %v %s", l["Port"], l["Protocol"], js)
		}
	}
	for _, tg := range resources(t, "AWS::ElasticLoadBalancingV2::TargetGroup") {
		js, _ := json.Marshal(tg["TargetGroupAttributes"])
		for _, want := range []string{
			`{"Key":"proxy_protocol_v2.enabled","Value":"true"}`,
			fmt.Sprintf(`{"Key":"deregistration_delay.timeout_seconds","Value":"%d"}`, edge.DefaultDeregistrationDelaySec),
		} {
			if !strings.Contains(string(js), want) {
				t.Errorf("target group attributes %s lack %s", js, want)
			}
		}
		if tg["HealthCheckProtocol"] != "HTTP" || tg["HealthCheckPort"] != "9901" || tg["HealthCheckPath"] != "/readyz" {
			t.Errorf("health check %v %v %v", tg["HealthCheckProtocol"], tg["HealthCheckPort"], tg["HealthCheckPath"])
		}
	}
}

// TestUnhealthyTargetsDrainInsteadOfReset: with the load balancer's
// default a target that fails its checks has every client connection
// reset at once; the target groups turn that off and keep an unhealthy
// target's connections for the relay's drain budget (the value the lab's
// load balancer stand-in runs with), so a relay that turns unready while
// registered closes them itself, paced.
func TestUnhealthyTargetsDrainInsteadOfReset(t *testing.T) {
	if relayspec.TargetUnhealthyDrainingIntervalSeconds < relayspec.DefaultDrainTimeoutSeconds {
		t.Errorf("unhealthy draining interval %d s is shorter than the relay's drain budget %d s", relayspec.TargetUnhealthyDrainingIntervalSeconds, relayspec.DefaultDrainTimeoutSeconds)
	}
	tgs := resources(t, "AWS::ElasticLoadBalancingV2::TargetGroup")
	if len(tgs) != 2 {
		t.Fatalf("%d target groups, want 2", len(tgs))
	}
	for _, tg := range tgs {
		attrs := cdktest.Pairs(t, tg, "Key", "Value", "TargetGroupAttributes")
		if got := attrs["target_health_state.unhealthy.connection_termination.enabled"]; got != "false" {
			t.Errorf("connection termination for unhealthy targets %q, want \"false\"", got)
		}
		if got, want := attrs["target_health_state.unhealthy.draining_interval_seconds"], fmt.Sprint(relayspec.TargetUnhealthyDrainingIntervalSeconds); got != want {
			t.Errorf("unhealthy draining interval %q, want %q", got, want)
		}
	}

	stack, vpc := newStack()
	e := edge.New(stack, jsii.String("Edge"), &edge.Props{Vpc: vpc, AllocationIDs: allocs(3), UnhealthyDrainingIntervalSec: jsii.Number(edge.MaxUnhealthyDrainingIntervalSec)})
	if e.UnhealthyDrainingIntervalSec() != edge.MaxUnhealthyDrainingIntervalSec {
		t.Errorf("UnhealthyDrainingIntervalSec() = %v", e.UnhealthyDrainingIntervalSec())
	}
	for _, tg := range cdktest.PropertiesOfType(cdktest.TemplateJSON(t, stack), "AWS::ElasticLoadBalancingV2::TargetGroup") {
		js, _ := json.Marshal(tg["TargetGroupAttributes"])
		if !strings.Contains(string(js), `{"Key":"target_health_state.unhealthy.draining_interval_seconds","Value":"360000"}`) {
			t.Errorf("attributes %s lack the configured interval 360000", js)
		}
	}
}

func TestSecurityGroupAdmits443Only(t *testing.T) {
	sgs := resources(t, "AWS::EC2::SecurityGroup")
	for _, sg := range sgs {
		if !strings.Contains(cdktest.Get[string](t, sg, "GroupDescription"), "edge NLB") {
			continue
		}
		js, _ := json.Marshal(sg["SecurityGroupIngress"])
		if strings.Count(string(js), "CidrIp") != 1 || !strings.Contains(string(js), `"CidrIp":"0.0.0.0/0"`) || !strings.Contains(string(js), `"FromPort":443`) || !strings.Contains(string(js), `"ToPort":443`) {
			t.Errorf("NLB ingress %s, want only 443 from 0.0.0.0/0", js)
		}
		return
	}
	t.Error("no NLB security group")
}

func TestPropsValidation(t *testing.T) {
	cases := []struct {
		name, want string
		props      func(vpc awsec2.IVpc) *edge.Props
	}{
		{"no props", "Vpc is required", func(awsec2.IVpc) *edge.Props { return nil }},
		{"no allocations", "AllocationIDs is required", func(v awsec2.IVpc) *edge.Props { return &edge.Props{Vpc: v} }},
		{"not a multiple of zones", "multiple of the zone count", func(v awsec2.IVpc) *edge.Props { return &edge.Props{Vpc: v, AllocationIDs: allocs(4)} }},
		{"too many load balancers", "at most 5", func(v awsec2.IVpc) *edge.Props { return &edge.Props{Vpc: v, AllocationIDs: allocs(18)} }},
		{"nlb idle not above relay idle", "must exceed the relay idle timeout", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), IdleTimeoutSec: jsii.Number(360)}
		}},
		{"keep-alive above the endpoint cap", "cap", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), MQTTKeepAliveSec: jsii.Number(240)}
		}},
		{"nlb idle above 6000", "outside", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), IdleTimeoutSec: jsii.Number(6001)}
		}},
		{"relay idle below 1.5 keep-alive", "1.5", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), MQTTKeepAliveSec: jsii.Number(230), RelayIdleTimeoutSec: jsii.Number(300)}
		}},
		{"fractional idle", "whole seconds", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), IdleTimeoutSec: jsii.Number(400.5)}
		}},
		{"deregistration delay", "DeregistrationDelaySec", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), DeregistrationDelaySec: jsii.Number(4000)}
		}},
		{"unhealthy draining interval above the maximum", "UnhealthyDrainingIntervalSec 360001 must be whole seconds from 0 to 360000", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), UnhealthyDrainingIntervalSec: jsii.Number(360001)}
		}},
		{"negative unhealthy draining interval", "UnhealthyDrainingIntervalSec -1", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), UnhealthyDrainingIntervalSec: jsii.Number(-1)}
		}},
		{"fractional unhealthy draining interval", "UnhealthyDrainingIntervalSec 1.5", func(v awsec2.IVpc) *edge.Props {
			return &edge.Props{Vpc: v, AllocationIDs: allocs(3), UnhealthyDrainingIntervalSec: jsii.Number(1.5)}
		}},
	}
	// Validation runs before any construct is created, so one stack serves
	// every case (each under its own ID in case one slips through).
	stack, vpc := newStack()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cdktest.MustPanic(t, c.want, func() { edge.New(stack, jsii.String(fmt.Sprintf("Edge%d", i)), c.props(vpc)) })
		})
	}
}
