package stacks_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/relayfleet"
	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/internal/deploy/capacity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/stacks"
)

// templateOf returns the stack's synthesized template as plain JSON values.
func templateOf(t *testing.T, s awscdk.Stack) map[string]any {
	t.Helper()
	var out map[string]any
	cdktest.Must(t, func() {
		data, err := json.Marshal(cdktest.Template(t, s).ToJSON())
		if err != nil {
			panic(err)
		}
		if err := json.Unmarshal(data, &out); err != nil {
			panic(err)
		}
	})
	return out
}

// ofType returns the resources of one type, keyed by logical ID.
func ofType(t testing.TB, tmpl map[string]any, typ string) map[string]map[string]any {
	t.Helper()
	return cdktest.ResourcesOfType(t, tmpl, typ)
}

func props(r map[string]any) map[string]any { p, _ := r["Properties"].(map[string]any); return p }

func one(t *testing.T, tmpl map[string]any, typ string) map[string]any {
	t.Helper()
	rs := ofType(t, tmpl, typ)
	if len(rs) != 1 {
		t.Fatalf("%d %s resources, want 1", len(rs), typ)
	}
	for _, r := range rs {
		return r
	}
	return nil
}

// stackOutputRef decodes {"Fn::GetStackOutput": {...}} (a weak cross-stack
// reference) and returns the producing stack, its region and the output.
func stackOutputRef(v any) (stack, region, output string, ok bool) {
	m, _ := v.(map[string]any)
	ref, _ := m["Fn::GetStackOutput"].(map[string]any)
	if ref == nil {
		return "", "", "", false
	}
	stack, _ = ref["StackName"].(string)
	region, _ = ref["Region"].(string)
	output, _ = ref["OutputName"].(string)
	return stack, region, output, true
}

// resolveOutput follows a weak reference into the producing stack's
// template and returns the output's value.
func resolveOutput(t *testing.T, b *built, v any) (stackName string, value any) {
	t.Helper()
	name, region, output, ok := stackOutputRef(v)
	if !ok {
		t.Fatalf("%v is not a Fn::GetStackOutput reference", v)
	}
	for _, s := range allStacks(b) {
		if *s.StackName() == name {
			if *s.Region() != region {
				t.Fatalf("reference names %s in %s, but the stack is in %s", name, region, *s.Region())
			}
			outs, _ := templateOf(t, s)["Outputs"].(map[string]any)
			o, ok := outs[output].(map[string]any)
			if !ok {
				t.Fatalf("stack %s has no output %s", name, output)
			}
			return name, o["Value"]
		}
	}
	t.Fatalf("no stack named %s", name)
	return "", nil
}

func getAtt(v any) (id, attr string, ok bool) {
	m, _ := v.(map[string]any)
	a, _ := m["Fn::GetAtt"].([]any)
	if len(a) != 2 {
		return "", "", false
	}
	id, _ = a[0].(string)
	attr, _ = a[1].(string)
	return id, attr, true
}

func relayEnv(t *testing.T, tmpl map[string]any) map[string]any {
	t.Helper()
	td := one(t, tmpl, "AWS::ECS::TaskDefinition")
	cds := cdktest.List(t, td, "Properties", "ContainerDefinitions")
	if len(cds) != 1 {
		t.Fatalf("%d containers, want only the relay", len(cds))
	}
	return cdktest.Pairs(t, cds, "Name", "Value", 0, "Environment")
}

func envDuration(t *testing.T, env map[string]any, name string) time.Duration {
	t.Helper()
	s, ok := env[name].(string)
	if !ok {
		t.Fatalf("%s is %v, want a literal duration", name, env[name])
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

// The static IPs are the NLBs' subnet mappings, each exactly one of the
// fleet's pinned EIPs (by allocation ID, read from the addresses stack), in
// zone order; cross-zone is off so each IP's health is its own zone's.
func TestEdgeSubnetMappingsCarryExactlyTheAddressesStacksEIPs(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		lbs := ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")
		zones := len(f.Config.AvailabilityZones)
		if want := f.Config.StaticIPCount / zones; len(lbs) != want {
			t.Fatalf("%s: %d load balancers, want %d (static IPs / zones)", f.Config.Name, len(lbs), want)
		}
		var got []string
		for _, id := range sortedKeys(lbs) {
			p := props(lbs[id])
			if p["Scheme"] != "internet-facing" || p["Type"] != nil && p["Type"] != "network" {
				t.Errorf("%s/%s: scheme %v type %v", f.Config.Name, id, p["Scheme"], p["Type"])
			}
			attrs := cdktest.Pairs(t, p, "Key", "Value", "LoadBalancerAttributes")
			if attrs["load_balancing.cross_zone.enabled"] != "false" {
				t.Errorf("%s/%s: cross-zone %v, want false", f.Config.Name, id, attrs["load_balancing.cross_zone.enabled"])
			}
			mappings := cdktest.Objects(t, p, "SubnetMappings")
			if len(mappings) != zones {
				t.Errorf("%s/%s: %d subnet mappings, want one per zone (%d)", f.Config.Name, id, len(mappings), zones)
			}
			for _, m := range mappings {
				stack, value := resolveOutput(t, b, m["AllocationId"])
				eip, attr, ok := getAtt(value)
				if stack != *f.Addresses.Stack.StackName() || !ok || attr != "AllocationId" {
					t.Errorf("%s/%s: allocation %v resolves to %s %v, want an EIP allocation of %s", f.Config.Name, id, m, stack, value, *f.Addresses.Stack.StackName())
				}
				got = append(got, eip)
			}
		}
		if want := pinnedAddressIDs[f.Config.Name]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: subnet mappings carry EIPs %v, want exactly %v in order", f.Config.Name, got, want)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// The one timeout rule, read back from the synthesized template: the NLB
// listener's idle timeout and the relay's RELAY_IDLE_TIMEOUT.
func TestEdgeTimeoutsObeyTheRule(t *testing.T) {
	b := load(t)
	keep := time.Duration(b.cfg.Topics.MQTTKeepAliveSec) * time.Second
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		relayIdle := envDuration(t, relayEnv(t, tmpl), "RELAY_IDLE_TIMEOUT")
		listeners := ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::Listener")
		if len(listeners) == 0 {
			t.Fatalf("%s: no listener", f.Config.Name)
		}
		for id, l := range listeners {
			p := props(l)
			if p["Port"] != float64(443) || p["Protocol"] != "TCP" {
				t.Errorf("%s/%s: listener %v/%v, want TCP 443", f.Config.Name, id, p["Port"], p["Protocol"])
			}
			idle := cdktest.Pairs(t, p, "Key", "Value", "ListenerAttributes")
			nlbIdle, err := time.ParseDuration(fmt.Sprint(idle["tcp.idle_timeout.seconds"]) + "s")
			if err != nil {
				t.Fatalf("%s/%s: listener idle timeout %v: %v", f.Config.Name, id, idle["tcp.idle_timeout.seconds"], err)
			}
			if err := timing.CheckRule(keep, relayIdle, nlbIdle); err != nil {
				t.Errorf("%s/%s: %v", f.Config.Name, id, err)
			}
			if nlbIdle != time.Duration(f.Config.Relay.NLBIdleTimeoutSec)*time.Second || relayIdle != time.Duration(f.Config.Relay.IdleTimeoutSec)*time.Second {
				t.Errorf("%s: nlb %s relay %s, config says %d s / %d s", f.Config.Name, nlbIdle, relayIdle, f.Config.Relay.NLBIdleTimeoutSec, f.Config.Relay.IdleTimeoutSec)
			}
		}
	}
}

// PROXY v2 to the relay, readiness over HTTP on the admin port, and a drain
// chain that lets the relay close its own connections:
// unready delay < drain budget ≤ stop timeout ≤ 120 s ≤ deregistration delay.
func TestEdgeTargetGroupsAndDrainAlignment(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		env := relayEnv(t, tmpl)
		unready, drain := envDuration(t, env, "RELAY_UNREADY_DELAY"), envDuration(t, env, "RELAY_DRAIN_TIMEOUT")
		cd := cdktest.Object(t, one(t, tmpl, "AWS::ECS::TaskDefinition"), "Properties", "ContainerDefinitions", 0)
		stop := time.Duration(cdktest.Get[float64](t, cd, "StopTimeout")) * time.Second
		if !(unready < drain && drain <= stop && stop <= 120*time.Second) {
			t.Errorf("%s: unready %s, drain %s, stop %s: want unready < drain ≤ stop ≤ 120s", f.Config.Name, unready, drain, stop)
		}
		tgs := ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::TargetGroup")
		if len(tgs) != len(ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")) {
			t.Errorf("%s: %d target groups for %d load balancers", f.Config.Name, len(tgs), len(ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::LoadBalancer")))
		}
		for id, tg := range tgs {
			p := props(tg)
			attrs := map[string]string{}
			for k, v := range cdktest.Pairs(t, p, "Key", "Value", "TargetGroupAttributes") {
				attrs[k] = fmt.Sprint(v)
			}
			if attrs["proxy_protocol_v2.enabled"] != "true" {
				t.Errorf("%s/%s: PROXY v2 %q, want true", f.Config.Name, id, attrs["proxy_protocol_v2.enabled"])
			}
			dereg, _ := time.ParseDuration(attrs["deregistration_delay.timeout_seconds"] + "s")
			if dereg < stop || dereg < drain {
				t.Errorf("%s/%s: deregistration delay %s below stop timeout %s / drain %s", f.Config.Name, id, dereg, stop, drain)
			}
			// An unready relay that is still registered is drained, not reset.
			unhealthyDrain, err := time.ParseDuration(attrs["target_health_state.unhealthy.draining_interval_seconds"] + "s")
			if attrs["target_health_state.unhealthy.connection_termination.enabled"] != "false" || err != nil || unhealthyDrain < drain {
				t.Errorf("%s/%s: unhealthy targets: termination %q, draining interval %q; want false and at least the drain %s", f.Config.Name, id,
					attrs["target_health_state.unhealthy.connection_termination.enabled"], attrs["target_health_state.unhealthy.draining_interval_seconds"], drain)
			}
			if p["Port"] != float64(8443) || p["Protocol"] != "TCP" || p["TargetType"] != "ip" {
				t.Errorf("%s/%s: target %v/%v/%v, want TCP 8443 ip", f.Config.Name, id, p["Port"], p["Protocol"], p["TargetType"])
			}
			if p["HealthCheckProtocol"] != "HTTP" || p["HealthCheckPort"] != "9901" || p["HealthCheckPath"] != "/readyz" {
				t.Errorf("%s/%s: health check %v %v %v, want HTTP 9901 /readyz", f.Config.Name, id, p["HealthCheckProtocol"], p["HealthCheckPort"], p["HealthCheckPath"])
			}
		}
	}
}

// Fargate arm64, rolling with a rollback circuit breaker, and target
// tracking on both active flows per task and CPU.
func TestRelayServiceIsFargateArm64WithScalingAndCircuitBreaker(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		td := props(one(t, tmpl, "AWS::ECS::TaskDefinition"))
		rp := cdktest.Object(t, td, "RuntimePlatform")
		if rp["CpuArchitecture"] != "ARM64" || rp["OperatingSystemFamily"] != "LINUX" || !reflect.DeepEqual(td["RequiresCompatibilities"], []any{"FARGATE"}) {
			t.Errorf("%s: runtime %v compat %v, want Fargate ARM64/LINUX", f.Config.Name, rp, td["RequiresCompatibilities"])
		}
		svc := props(one(t, tmpl, "AWS::ECS::Service"))
		dc := cdktest.Object(t, svc, "DeploymentConfiguration")
		cb := cdktest.Object(t, dc, "DeploymentCircuitBreaker")
		if cb["Enable"] != true || cb["Rollback"] != true {
			t.Errorf("%s: deployment %v", f.Config.Name, dc)
		}
		if svc["LaunchType"] != "FARGATE" || cdktest.Get[float64](t, svc, "DesiredCount") < float64(len(f.Config.AvailabilityZones)) {
			t.Errorf("%s: launch %v desired %v, want Fargate and ≥ 1 per zone", f.Config.Name, svc["LaunchType"], svc["DesiredCount"])
		}
		if n := len(cdktest.List(t, svc, "LoadBalancers")); n != len(ofType(t, tmpl, "AWS::ElasticLoadBalancingV2::TargetGroup")) {
			t.Errorf("%s: service joins %d target groups", f.Config.Name, n)
		}
		st := props(one(t, tmpl, "AWS::ApplicationAutoScaling::ScalableTarget"))
		if st["MinCapacity"] != float64(f.Config.Relay.MinTasks) || st["MaxCapacity"] != float64(f.Config.Relay.MaxTasks) {
			t.Errorf("%s: scaling %v..%v, config %d..%d", f.Config.Name, st["MinCapacity"], st["MaxCapacity"], f.Config.Relay.MinTasks, f.Config.Relay.MaxTasks)
		}
		var cpu, flows bool
		for _, p := range ofType(t, tmpl, "AWS::ApplicationAutoScaling::ScalingPolicy") {
			cfg := cdktest.Object(t, p, "Properties", "TargetTrackingScalingPolicyConfiguration")
			if pm, ok := cfg["PredefinedMetricSpecification"].(map[string]any); ok && pm["PredefinedMetricType"] == "ECSServiceAverageCPUUtilization" {
				cpu = true
			}
			if cm, ok := cfg["CustomizedMetricSpecification"].(map[string]any); ok {
				js, _ := json.Marshal(cm)
				if strings.Contains(string(js), `"ActiveFlowCount"`) && strings.Contains(string(js), `"RunningTaskCount"`) && cfg["TargetValue"] == float64(f.Config.Relay.TargetConnsPerTask) {
					flows = true
				}
			}
		}
		if !cpu || !flows {
			t.Errorf("%s: CPU policy %v, flows-per-task policy %v; want both", f.Config.Name, cpu, flows)
		}
		cluster := props(one(t, tmpl, "AWS::ECS::Cluster"))
		js, _ := json.Marshal(cluster["ClusterSettings"])
		if !strings.Contains(string(js), `"containerInsights"`) || !strings.Contains(string(js), `"enabled"`) {
			t.Errorf("%s: Container Insights not on: %s", f.Config.Name, js)
		}
	}
}

// The relay runs hardened: read-only root, non-root, explicit nofile,
// awslogs, PROXY protocol required and trusted from the VPC only.
func TestRelayContainerIsHardened(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		cd := cdktest.Object(t, one(t, tmpl, "AWS::ECS::TaskDefinition"), "Properties", "ContainerDefinitions", 0)
		if cd["ReadonlyRootFilesystem"] != true {
			t.Errorf("%s: root file system writable", f.Config.Name)
		}
		if u, _ := cd["User"].(string); u == "" || strings.HasPrefix(u, "0") || u == "root" {
			t.Errorf("%s: user %q, want non-root", f.Config.Name, u)
		}
		want := []any{map[string]any{"Name": "nofile", "SoftLimit": float64(65535), "HardLimit": float64(65535)}}
		if !reflect.DeepEqual(cd["Ulimits"], want) {
			t.Errorf("%s: ulimits %v, want %v", f.Config.Name, cd["Ulimits"], want)
		}
		if lc := cdktest.Object(t, cd, "LogConfiguration"); lc["LogDriver"] != "awslogs" {
			t.Errorf("%s: log driver %v", f.Config.Name, lc["LogDriver"])
		}
		env := relayEnv(t, tmpl)
		if env["RELAY_PROXY_PROTOCOL"] != "required" || env["RELAY_TRUSTED_CIDR"] != f.Config.VPCCIDR {
			t.Errorf("%s: proxy %v trusted %v, want required from %s", f.Config.Name, env["RELAY_PROXY_PROTOCOL"], env["RELAY_TRUSTED_CIDR"], f.Config.VPCCIDR)
		}
		if env["RELAY_HEALTH_SNI"] != b.cfg.DNS.HealthSNI || env["RELAY_LISTEN"] != ":8443" || env["RELAY_ADMIN"] != ":9901" {
			t.Errorf("%s: health SNI %v listen %v admin %v", f.Config.Name, env["RELAY_HEALTH_SNI"], env["RELAY_LISTEN"], env["RELAY_ADMIN"])
		}
		r := f.Config.Relay
		if env["RELAY_MAX_CONNS"] != strconv.Itoa(r.MaxConnsPerTask) || env["RELAY_MAX_CONNS_PER_SOURCE"] != strconv.Itoa(r.MaxConnsPerSource) {
			t.Errorf("%s: max-conns %v per source %v, want relay.maxConnsPerTask %d and relay.maxConnsPerSource %d", f.Config.Name,
				env["RELAY_MAX_CONNS"], env["RELAY_MAX_CONNS_PER_SOURCE"], r.MaxConnsPerTask, r.MaxConnsPerSource)
		}
		for _, lg := range ofType(t, tmpl, "AWS::Logs::LogGroup") {
			if props(lg)["RetentionInDays"] == nil {
				t.Errorf("%s: a log group without retention", f.Config.Name)
			}
		}
	}
}

// routeEntries splits the RELAY_ROUTE Fn::Join into its comma-separated
// entries, each a list of parts (literal strings and intrinsics).
func routeEntries(t *testing.T, v any) [][]any {
	t.Helper()
	join, err := cdktest.Lookup(v, "Fn::Join")
	if err != nil || cdktest.Get[string](t, join, 0) != "" {
		t.Fatalf("RELAY_ROUTE is %v, want a Fn::Join with no separator (%v)", v, err)
	}
	var entries [][]any
	var cur []any
	for _, p := range cdktest.List(t, join, 1) {
		s, isStr := p.(string)
		if !isStr {
			cur = append(cur, p)
			continue
		}
		pieces := strings.Split(s, ",")
		for i, piece := range pieces {
			if i > 0 {
				entries = append(entries, cur)
				cur = nil
			}
			if piece != "" {
				cur = append(cur, piece)
			}
		}
	}
	return append(entries, cur)
}

// lookup is one iot:DescribeEndpoint custom resource of an edge template.
type lookup struct {
	endpointType string
	region       string // "" = the stack's own region
}

// lookups decodes the edge template's endpoint lookups by logical ID; any
// other AWS SDK call fails the test.
func lookups(t *testing.T, name string, tmpl map[string]any) map[string]lookup {
	t.Helper()
	out := map[string]lookup{}
	for id, cr := range ofType(t, tmpl, "Custom::AWS") {
		create, _ := props(cr)["Create"].(string)
		var call struct {
			Service, Action, Region string
			Parameters              map[string]string
		}
		if err := json.Unmarshal([]byte(create), &call); err != nil {
			t.Fatalf("%s: %s Create: %v", name, id, err)
		}
		if strings.ToLower(call.Service) != "iot" || strings.ToLower(call.Action) != "describeendpoint" {
			t.Errorf("%s/%s: calls %s.%s", name, id, call.Service, call.Action)
		}
		out[id] = lookup{endpointType: call.Parameters["endpointType"], region: call.Region}
	}
	return out
}

// The relay routes exactly: the account's IoT data (ATS) and credentials
// endpoints of its own region, discovered at deploy time, to the fleet's
// own interface VPC endpoints on 443; those of every other fleet's region
// to themselves on 443 (public names, through NAT); the artifacts bucket's
// regional host; and nothing else: no wildcard, no literal names, no name
// twice.
func TestRelayRoutesAreExactlyTheDiscoveredIoTEndpoints(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		env := relayEnv(t, tmpl)
		raw, _ := json.Marshal(env["RELAY_ROUTE"])
		if strings.Contains(string(raw), "*") {
			t.Errorf("%s: RELAY_ROUTE contains a wildcard: %s", f.Config.Name, raw)
		}
		calls := lookups(t, f.Config.Name, tmpl)
		otherRegions := map[string]bool{}
		for _, o := range b.cfg.Fleets {
			if o.Region != f.Config.Region {
				otherRegions[o.Region] = true
			}
		}
		entries := routeEntries(t, env["RELAY_ROUTE"])
		if want := 3 + 2*len(otherRegions); len(entries) != want {
			t.Fatalf("%s: %d routes %v, want %d: own data and credentials endpoints, the artifacts bucket, and both endpoints of %d other region(s)", f.Config.Name, len(entries), entries, want, len(otherRegions))
		}
		want := map[string]string{"iot:Data-ATS": "IotData", "iot:CredentialProvider": "IotCredentials"}
		seen := map[lookup]bool{}
		snis := map[string]bool{}
		bucketRoutes := 0
		for _, e := range entries {
			if len(e) != 4 || e[1] != "=" || e[3] != ":443" {
				t.Errorf("%s: route %v, want SNI \"=\" upstream \":443\"", f.Config.Name, e)
				continue
			}
			sni, _ := json.Marshal(e[0])
			if snis[string(sni)] {
				t.Errorf("%s: SNI %s routed twice", f.Config.Name, sni)
			}
			snis[string(sni)] = true
			// The artifacts bucket's regional S3 host routes to itself (through
			// the S3 gateway endpoint): SNI and upstream are the same name.
			if strings.Contains(string(sni), `"StackName":"`+*f.ControlPlane.Stack.StackName()+`"`) {
				up, _ := json.Marshal(e[2])
				if string(up) != string(sni) || !strings.Contains(string(sni), "ArtifactsBucket") || !strings.Contains(string(sni), "RegionalDomainName") {
					t.Errorf("%s: bucket route %s = %s, want the artifacts bucket's regional host on both sides", f.Config.Name, sni, up)
				}
				bucketRoutes++
				continue
			}
			id, attr, ok := getAtt(e[0])
			call, known := calls[id]
			if !ok || attr != "endpointAddress" || !known || call.endpointType == "" {
				t.Errorf("%s: route SNI %v is not a discovered endpoint address", f.Config.Name, e[0])
				continue
			}
			seen[call] = true
			upstream, _ := json.Marshal(e[2])
			if call.region == "" {
				if !strings.Contains(string(upstream), `"StackName":"`+*f.Network.Stack.StackName()+`"`) || !strings.Contains(string(upstream), "Network"+want[call.endpointType]) || !strings.Contains(string(upstream), "DnsEntries") {
					t.Errorf("%s: %s routes to %s, want the network stack's %s endpoint DNS name", f.Config.Name, call.endpointType, upstream, want[call.endpointType])
				}
				continue
			}
			if !otherRegions[call.region] || string(upstream) != string(sni) {
				t.Errorf("%s: %s of %s routes to %s, want another fleet's region's public name to itself", f.Config.Name, call.endpointType, call.region, upstream)
			}
		}
		if len(seen) != 2+2*len(otherRegions) || bucketRoutes != 1 {
			t.Errorf("%s: routes cover %v and %d bucket routes, want both endpoint types of every fleet's region and one bucket", f.Config.Name, seen, bucketRoutes)
		}
	}
}

// Finding: the standby fleet refused the agents it should carry. DNS sends
// every agent to the standby's static IPs when all active IPs fail, and an
// agent of fleet A presents fleet A's endpoint names; each fleet's relays
// must therefore route the data and credentials endpoints of every fleet
// (the example has a weight-0 fleet in another region).
func TestStandbyFleetCarriesEveryFleetsAgents(t *testing.T) {
	b := load(t)
	standby := 0
	for _, f := range b.cfg.Fleets {
		if f.Weight == 0 {
			standby++
		}
	}
	if standby == 0 || len(b.cfg.Fleets) < 2 {
		t.Fatal("the example configuration needs an active fleet and a standby in another region for this test")
	}
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		calls := lookups(t, f.Config.Name, tmpl)
		routed := map[lookup]bool{}
		for _, e := range routeEntries(t, relayEnv(t, tmpl)["RELAY_ROUTE"]) {
			if id, attr, ok := getAtt(e[0]); ok && attr == "endpointAddress" {
				routed[calls[id]] = true
			}
		}
		for _, g := range b.cfg.Fleets {
			region := g.Region
			if region == f.Config.Region {
				region = "" // the fleet's own lookup (and VPC endpoints)
			}
			for _, typ := range []string{"iot:Data-ATS", "iot:CredentialProvider"} {
				if !routed[lookup{endpointType: typ, region: region}] {
					t.Errorf("fleet %s (weight %d) does not route fleet %s's %s endpoint in %s: its agents would be refused there", f.Config.Name, f.Config.Weight, g.Name, typ, g.Region)
				}
			}
		}
	}
}

// The NLB admits 443 from anywhere and nothing else; the tasks admit the
// agent and admin ports from the NLB only.
func TestEdgeSecurityGroups(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		sgs := ofType(t, tmpl, "AWS::EC2::SecurityGroup")
		var nlbSG, relaySG string
		for id := range sgs {
			switch {
			case strings.HasPrefix(id, "EdgeSecurityGroup"):
				nlbSG = id
			case strings.HasPrefix(id, "RelaySecurityGroup"):
				relaySG = id
			}
		}
		ingress := cdktest.Objects(t, sgs[nlbSG], "Properties", "SecurityGroupIngress")
		if len(ingress) != 1 {
			t.Fatalf("%s: NLB ingress %v, want only 443 from anywhere", f.Config.Name, ingress)
		}
		if r := ingress[0]; r["CidrIp"] != "0.0.0.0/0" || r["FromPort"] != float64(443) || r["ToPort"] != float64(443) {
			t.Errorf("%s: NLB ingress %v", f.Config.Name, r)
		}
		if _, inline := props(sgs[relaySG])["SecurityGroupIngress"]; inline {
			t.Errorf("%s: relay SG has inline ingress %v", f.Config.Name, props(sgs[relaySG])["SecurityGroupIngress"])
		}
		ports := map[float64]bool{}
		for _, r := range ofType(t, tmpl, "AWS::EC2::SecurityGroupIngress") {
			p := props(r)
			gid, _, _ := getAtt(p["GroupId"])
			if gid != relaySG {
				continue
			}
			src, _, _ := getAtt(p["SourceSecurityGroupId"])
			if src != nlbSG || p["FromPort"] != p["ToPort"] {
				t.Errorf("%s: relay ingress %v, want from the NLB SG only", f.Config.Name, p)
			}
			ports[cdktest.Get[float64](t, p, "FromPort")] = true
		}
		if !reflect.DeepEqual(ports, map[float64]bool{8443: true, 9901: true}) {
			t.Errorf("%s: relay ingress ports %v, want 8443 and 9901", f.Config.Name, ports)
		}
		// The IoT endpoints admit the relay through exactly one rule, under
		// the logical ID this stack names: a renumbered rule would be created
		// before the old one is deleted, both describing one EC2 permission.
		var toEndpoints []string
		for id, r := range ofType(t, tmpl, "AWS::EC2::SecurityGroupIngress") {
			p := cdktest.Properties(t, r)
			if gid, _, _ := getAtt(p["GroupId"]); gid == relaySG {
				continue
			}
			toEndpoints = append(toEndpoints, id)
			src, _, _ := getAtt(p["SourceSecurityGroupId"])
			if src != relaySG || p["IpProtocol"] != "tcp" || p["FromPort"] != float64(443) || p["ToPort"] != float64(443) {
				t.Errorf("%s: %s = %v, want tcp 443 from the relay SG", f.Config.Name, id, p)
			}
			if out := cdktest.Get[string](t, p, "GroupId", "Fn::GetStackOutput", "OutputName"); !strings.Contains(out, "NetworkEndpointSecurityGroup") {
				t.Errorf("%s: %s's GroupId %v is not the network stack's endpoint SG", f.Config.Name, id, p["GroupId"])
			}
		}
		if !reflect.DeepEqual(toEndpoints, []string{"IotEndpointsFromRelay00"}) {
			t.Errorf("%s: rules admitting the relay to the IoT endpoints %v, want exactly [IotEndpointsFromRelay00]", f.Config.Name, toEndpoints)
		}
		for id, r := range ofType(t, tmpl, "AWS::EC2::SecurityGroupEgress") {
			if gid, _, _ := getAtt(cdktest.Properties(t, r)["GroupId"]); gid == relaySG {
				t.Errorf("%s: standalone relay egress rule %s; the relay SG's own egress already covers 443", f.Config.Name, id)
			}
		}
	}
}

// The relay image is built for linux/arm64 from the repository root with
// proxyimage/Dockerfile, and its build context (and asset hash) holds
// exactly the relay's sources without tests: a change to the CDK code, the
// agent or the benchmarks never rebuilds the relay. The staged context is
// enough to build the relay, as the Dockerfile does.
func TestRelayImageAssetHoldsOnlyRelaySources(t *testing.T) {
	b := load(t)
	f := b.sys.Fleets[0]
	data, err := os.ReadFile(filepath.Join(b.dir, *f.Edge.Stack.ArtifactId()+".assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var assets struct {
		DockerImages map[string]struct {
			Source struct {
				Directory, DockerFile string
				Platform              string
			}
		}
	}
	if err := json.Unmarshal(data, &assets); err != nil {
		t.Fatal(err)
	}
	if len(assets.DockerImages) != 1 {
		t.Fatalf("%d docker images, want the relay only", len(assets.DockerImages))
	}
	for _, img := range assets.DockerImages {
		if img.Source.DockerFile != "proxyimage/Dockerfile" || img.Source.Platform != "linux/arm64" {
			t.Errorf("image source %+v, want proxyimage/Dockerfile for linux/arm64", img.Source)
		}
		ctx := filepath.Join(b.dir, img.Source.Directory)
		seen := map[string]bool{}
		err := filepath.WalkDir(ctx, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(ctx, path)
			source := ""
			for _, s := range relayfleet.ImageSources {
				if rel == s || strings.HasPrefix(rel, s+"/") {
					source = s
				}
			}
			switch {
			case rel == ".dockerignore":
			case source == "":
				t.Errorf("image build context holds %s, which is not a relay source", rel)
			case strings.HasSuffix(rel, "_test.go") || strings.Contains(rel, "testdata/"):
				t.Errorf("image build context holds test file %s", rel)
			default:
				seen[source] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range relayfleet.ImageSources {
			if !seen[s] {
				t.Errorf("image build context lacks %s", s)
			}
		}
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(t.TempDir(), "relay"), "./proxyimage/cmd/relay")
		build.Dir = ctx
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOWORK=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Errorf("the relay does not build from its image context: %v\n%s", err, out)
		}
	}
}

// Alarms of a fleet: per static IP (zone) no-healthy-target and unhealthy
// targets, flows near capacity, relay rejects; all to an encrypted topic.
func TestEdgeAlarms(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Edge.Stack)
		var unhealthy, noHealthy, flows, rejects int
		for _, a := range ofType(t, tmpl, "AWS::CloudWatch::Alarm") {
			p := props(a)
			js, _ := json.Marshal(p)
			switch {
			case p["MetricName"] == "UnHealthyHostCount":
				unhealthy++
			case p["MetricName"] == "HealthyHostCount":
				noHealthy++
			case p["MetricName"] == "RejectedConnections" && p["Namespace"] == "agentgate/relay":
				rejects++
			case strings.Contains(string(js), "ActiveFlowCount"):
				flows++
			}
			if p["MetricName"] == "RejectedConnections" {
				dims := cdktest.Pairs(t, p, "Name", "Value", "Dimensions")
				if len(dims) != 1 || dims[relayfleet.RejectsFleetDimension] != f.Config.Name {
					t.Errorf("%s: rejects alarm dimensions %v; want only %s = %s, so another fleet's refusals do not count", f.Config.Name, dims, relayfleet.RejectsFleetDimension, f.Config.Name)
				}
			}
			if len(cdktest.List(t, p, "AlarmActions")) != 1 {
				t.Errorf("%s: alarm without the topic: %s", f.Config.Name, js)
			}
		}
		if unhealthy != f.Config.StaticIPCount || noHealthy != f.Config.StaticIPCount || flows != 1 || rejects != 1 {
			t.Errorf("%s: alarms unhealthy %d no-healthy %d flows %d rejects %d; want %d, %d, 1, 1", f.Config.Name, unhealthy, noHealthy, flows, rejects, f.Config.StaticIPCount, f.Config.StaticIPCount)
		}
		filter := props(one(t, tmpl, "AWS::Logs::MetricFilter"))
		if filter["FilterPattern"] != relayspec.RejectFilterPattern() {
			t.Errorf("%s: reject filter %v", f.Config.Name, filter["FilterPattern"])
		}
		stamp := cdktest.Object(t, one(t, tmpl, "AWS::Logs::Transformer"), "Properties", "TransformerConfig", 1, "AddKeys", "Entries", 0)
		if stamp["Key"] != relayfleet.FleetLogKey || stamp["Value"] != f.Config.Name {
			t.Errorf("%s: log transformer adds %v; want %s = %s for the filter's fleet dimension", f.Config.Name, stamp, relayfleet.FleetLogKey, f.Config.Name)
		}
		topic := props(one(t, tmpl, "AWS::SNS::Topic"))
		if topic["KmsMasterKeyId"] == nil {
			t.Errorf("%s: alarm topic not encrypted", f.Config.Name)
		}
		body, err := json.Marshal(props(one(t, tmpl, "AWS::CloudWatch::Dashboard"))["DashboardBody"])
		if err != nil {
			t.Fatal(err)
		}
		// The rejects metric has no data point in a quiet period (its filter
		// has a dimension, so no default value); the graph fills them.
		if !strings.Contains(string(body), `FILL(rejects, 0)`) {
			t.Errorf("%s: the dashboard does not graph the rejects with FILL(rejects, 0): %s", f.Config.Name, body)
		}
	}
}

// With the control plane's artifacts bucket wired in, the relay also routes
// the bucket's regional S3 host to itself on 443 (reached through the S3
// gateway endpoint), and extra routes are appended as given.
func TestRelayRoutesIncludeTheArtifactsBucketHost(t *testing.T) {
	b := load(t)
	f := b.cfg.Fleets[0]
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"aws:cdk:bundling-stacks":                  []string{},
		stacks.ZoneContextKey(f.Account, f.Region): f.AvailabilityZones,
	}})
	env := &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}
	net := stacks.NewNetworkStack(app, "net", &stacks.NetworkStackProps{StackProps: awscdk.StackProps{Env: env}, Fleet: f})
	addr := stacks.NewAddressesStack(app, "addr", &stacks.AddressesStackProps{StackProps: awscdk.StackProps{Env: env}, Fleet: f, Project: "t"})
	cp := awscdk.NewStack(app, jsii.String("cp"), &awscdk.StackProps{Env: env})
	bucket := awss3.NewBucket(cp, jsii.String("Artifacts"), nil)
	// Other fleets: one in this fleet's region (same endpoints: no second
	// route for one name) and two sharing another region (one lookup).
	peer := func(name, region string) deployconfig.Fleet {
		p := f
		p.Name, p.Region = name, region
		return p
	}
	edgeStack := stacks.NewEdgeStack(app, "edge", &stacks.EdgeStackProps{
		StackProps: awscdk.StackProps{Env: env}, Fleet: f, MQTTKeepAliveSec: b.cfg.Topics.MQTTKeepAliveSec, HealthSNI: b.cfg.DNS.HealthSNI,
		Network: net.Network, StaticIPs: addr.StaticIPs, ArtifactsBucket: bucket,
		OtherFleets: []deployconfig.Fleet{peer("same", f.Region), peer("apse1", "ap-southeast-1"), peer("apse1b", "ap-southeast-1")},
		ExtraRoutes: []*relayfleet.Route{{SNI: jsii.String("extra.example.com"), Upstream: jsii.String("extra.internal:8443")}},
	})
	tmpl := templateOf(t, edgeStack.Stack)
	regions := map[string]int{}
	for _, l := range lookups(t, "edge", tmpl) {
		regions[l.region]++
	}
	if !reflect.DeepEqual(regions, map[string]int{"": 2, "ap-southeast-1": 2}) {
		t.Errorf("endpoint lookups per region %v, want the own two and two for ap-southeast-1", regions)
	}
	entries := routeEntries(t, relayEnv(t, tmpl)["RELAY_ROUTE"])
	if len(entries) != 6 {
		t.Fatalf("%d routes %v, want data, credentials, ap-southeast-1 data and credentials, bucket, extra", len(entries), entries)
	}
	entries = append(entries[:2], entries[4:]...)
	bucketRoute, _ := json.Marshal(entries[2])
	if !strings.Contains(string(bucketRoute), `"StackName":"cp"`) || !strings.Contains(string(bucketRoute), "RegionalDomainName") || !strings.HasSuffix(string(bucketRoute), `":443"]`) {
		t.Errorf("bucket route %s, want <bucket regional domain name>=<same>:443", bucketRoute)
	}
	if sni, up := entries[2][0], entries[2][2]; !reflect.DeepEqual(sni, up) {
		t.Errorf("bucket route maps %v to %v; want the S3 host to itself", sni, up)
	}
	if extra := fmt.Sprint(entries[3]); extra != "[extra.example.com=extra.internal:8443]" {
		t.Errorf("extra route %s", extra)
	}
}

// A fleet's relays cannot route a fleet of another account (its endpoints
// are looked up in the deploying account): synth stops with the fix.
func TestOtherFleetInAnotherAccountIsRefused(t *testing.T) {
	b := load(t)
	f := b.cfg.Fleets[0]
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{
		"aws:cdk:bundling-stacks":                  []string{},
		stacks.ZoneContextKey(f.Account, f.Region): f.AvailabilityZones,
	}})
	env := &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}
	net := stacks.NewNetworkStack(app, "net", &stacks.NetworkStackProps{StackProps: awscdk.StackProps{Env: env}, Fleet: f})
	addr := stacks.NewAddressesStack(app, "addr", &stacks.AddressesStackProps{StackProps: awscdk.StackProps{Env: env}, Fleet: f, Project: "t"})
	other := b.cfg.Fleets[1]
	other.Account = "222222222222"
	cdktest.MustPanic(t, "put every fleet in one account (fleets[].account)", func() {
		stacks.NewEdgeStack(app, "edge", &stacks.EdgeStackProps{
			StackProps: awscdk.StackProps{Env: env}, Fleet: f, MQTTKeepAliveSec: b.cfg.Topics.MQTTKeepAliveSec, HealthSNI: b.cfg.DNS.HealthSNI,
			Network: net.Network, StaticIPs: addr.StaticIPs, OtherFleets: []deployconfig.Fleet{other},
		})
	})
}

// The load balancers' logical IDs are pinned. An NLB holds its EIPs; a
// change that replaces it makes CloudFormation create the new NLB first,
// which fails while the old one still holds the addresses (the update rolls
// back, the IPs stay). Renaming a construct ID must therefore be deliberate.
var pinnedLoadBalancerIDs = map[string][]string{
	"euw1": {"EdgeC8C536A1"},
	"use1": {"EdgeC8C536A1"},
}

func TestEdgeLoadBalancerLogicalIDsArePinned(t *testing.T) {
	for _, f := range load(t).sys.Fleets {
		want, ok := pinnedLoadBalancerIDs[f.Config.Name]
		if !ok {
			t.Fatalf("fleet %s has no pinned load balancer IDs in this test", f.Config.Name)
		}
		cdktest.PinnedLogicalIDs(t, cdktest.Template(t, f.Edge.Stack), "AWS::ElasticLoadBalancingV2::LoadBalancer", want...)
	}
}

// The relay service deploys in the waves deployconfig derives from the
// fleet's size and the reconnect budget, and the relay spreads its closes
// over the derived drain. euw1 (11,000 agents on 2..8 tasks) fits all at
// once with the longest drain; the standby, pinned at 8 tasks with 20,000
// agents, goes one task at a time (maximumPercent 124: floor(8 × 1.24) −
// 8 = 1) with a 101 s drain (capacity.TestDeriveFixedEightTasks works it
// out for 24,000; 20,000 spread thinner pick the same).
func TestRelayDeploysInTheDerivedWaves(t *testing.T) {
	b := load(t)
	want := map[string][3]float64{"euw1": {100, 200, 110}, "use1": {100, 124, 101}}
	for _, f := range b.sys.Fleets {
		w, ok := want[f.Config.Name]
		if !ok {
			t.Fatalf("no expectation for fleet %s", f.Config.Name)
		}
		tmpl := templateOf(t, f.Edge.Stack)
		dc := cdktest.Object(t, props(one(t, tmpl, "AWS::ECS::Service")), "DeploymentConfiguration")
		if dc["MinimumHealthyPercent"] != w[0] || dc["MaximumPercent"] != w[1] {
			t.Errorf("%s: deployment %v%%..%v%%, want %v..%v", f.Config.Name, dc["MinimumHealthyPercent"], dc["MaximumPercent"], w[0], w[1])
		}
		if drain := envDuration(t, relayEnv(t, tmpl), "RELAY_DRAIN_TIMEOUT"); drain != time.Duration(w[2])*time.Second {
			t.Errorf("%s: RELAY_DRAIN_TIMEOUT %s, want %vs", f.Config.Name, drain, w[2])
		}
	}
}

// The cost report prices the alarms and dashboards the stacks create
// (capacity.AlarmsPerFleet, DashboardsPerFleet, DNSDashboards): counted
// here in every synthesized stack, so a new alarm shows up in its price.
func TestCostReportCountsEveryAlarmAndDashboard(t *testing.T) {
	b := load(t)
	alarms, dashboards := 0, 0
	for _, s := range allStacks(b) {
		tmpl := templateOf(t, s)
		alarms += len(cdktest.PropertiesOfType(tmpl, "AWS::CloudWatch::Alarm"))
		dashboards += len(cdktest.PropertiesOfType(tmpl, "AWS::CloudWatch::Dashboard"))
	}
	wantAlarms, wantDashboards := 0, capacity.DNSDashboards
	for _, f := range b.cfg.Fleets {
		wantAlarms += capacity.AlarmsPerFleet(f.StaticIPCount)
		wantDashboards += capacity.DashboardsPerFleet
	}
	if alarms != wantAlarms || dashboards != wantDashboards {
		t.Errorf("synthesized %d alarms and %d dashboards; capacity prices %d and %d", alarms, dashboards, wantAlarms, wantDashboards)
	}
	// The priced network: interface endpoints, NAT gateways, load
	// balancers, health checks.
	count := func(typ string, keep func(map[string]any) bool) int {
		n := 0
		for _, s := range allStacks(b) {
			for _, p := range cdktest.PropertiesOfType(templateOf(t, s), typ) {
				if keep == nil || keep(p) {
					n++
				}
			}
		}
		return n
	}
	var endpoints, nats, nlbs, checks int
	for _, f := range b.cfg.Fleets {
		zones := len(f.AvailabilityZones)
		endpoints += capacity.InterfaceEndpointsPerFleet
		nats += zones
		nlbs += f.StaticIPCount / zones
		checks += f.StaticIPCount
	}
	got := [4]int{
		count("AWS::EC2::VPCEndpoint", func(p map[string]any) bool { return p["VpcEndpointType"] == "Interface" }),
		count("AWS::EC2::NatGateway", nil),
		count("AWS::ElasticLoadBalancingV2::LoadBalancer", nil),
		count("AWS::Route53::HealthCheck", nil),
	}
	if want := [4]int{endpoints, nats, nlbs, checks}; got != want {
		t.Errorf("interface endpoints, NAT gateways, NLBs, health checks: synthesized %v, priced %v", got, want)
	}
}
