package relayfleet_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/edge"
	"github.com/agentgate/agentgate/constructs/relayfleet"
	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
	"github.com/agentgate/agentgate/proxyimage/config"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

// The edge construct is the fleet's edge as it is: no adapter in between.
var _ relayfleet.Edge = edge.Edge(nil)

// otherEdge is another team's edge: edge's resources with some answers
// replaced, for the checks the fleet makes on any edge.
type otherEdge struct {
	relayfleet.Edge
	targetGroups             []elbv2.INetworkTargetGroup
	names                    []*string
	conns                    awsec2.Connections
	idle, dereg, draining    *float64
	replaceTGs, replaceNames bool
	replaceConns             bool
}

func (o otherEdge) TargetGroups() []elbv2.INetworkTargetGroup {
	if o.replaceTGs {
		return o.targetGroups
	}
	return o.Edge.TargetGroups()
}
func (o otherEdge) LoadBalancerFullNames() []*string {
	if o.replaceNames {
		return o.names
	}
	return o.Edge.LoadBalancerFullNames()
}
func (o otherEdge) Connections() awsec2.Connections {
	if o.replaceConns {
		return o.conns
	}
	return o.Edge.Connections()
}
func (o otherEdge) IdleTimeoutSec() float64 { return pick(o.idle, o.Edge.IdleTimeoutSec()) }
func (o otherEdge) DeregistrationDelaySec() float64 {
	return pick(o.dereg, o.Edge.DeregistrationDelaySec())
}
func (o otherEdge) UnhealthyDrainingIntervalSec() float64 {
	return pick(o.draining, o.Edge.UnhealthyDrainingIntervalSec())
}

func pick(p *float64, def float64) float64 {
	if p != nil {
		return *p
	}
	return def
}

// fixture builds a stack with a VPC and an edge, and returns props for the
// fleet that pass validation; cases modify them.
func fixture() (awscdk.Stack, *relayfleet.Props) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("FleetTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{
		AvailabilityZones: jsii.Strings(cdktest.TestZones...),
		NatGateways:       jsii.Number(1),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("Edge"), SubnetType: awsec2.SubnetType_PUBLIC},
			{Name: jsii.String("Fleet"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		},
	})
	e := edge.New(stack, jsii.String("Edge"), &edge.Props{Vpc: vpc, AllocationIDs: jsii.Strings("eipalloc-1", "eipalloc-2", "eipalloc-3")})
	return stack, &relayfleet.Props{
		Vpc:  vpc,
		Edge: e,
		Routes: &[]*relayfleet.Route{
			{SNI: jsii.String("abc123-ats.iot.eu-west-1.amazonaws.com"), Upstream: jsii.String("vpce-1.iot.data.eu-west-1.vpce.amazonaws.com:443")},
			{SNI: jsii.String("abc123.credentials.iot.eu-west-1.amazonaws.com"), Upstream: jsii.String("vpce-2.iot.credentials.eu-west-1.vpce.amazonaws.com:443")},
		},
		HealthSNI: jsii.String("health.agents.example.com"),
		Image:     awsecs.ContainerImage_FromRegistry(jsii.String("public.ecr.aws/example/relay:test"), nil),
	}
}

// sharedMaxHealthy is the shared fleet's MaxHealthyPercent, so the
// template shows a set value arrive: at the 3-task floor, floor(3 × 1.34)
// − 3 = 1 task per wave (133 % would stall: floor(3.99) − 3 = 0).
const sharedMaxHealthy = 134

var shared = sync.OnceValue(func() awscdk.Stack {
	stack, p := fixture()
	p.MaxHealthyPercent = jsii.Number(sharedMaxHealthy)
	relayfleet.New(stack, jsii.String("Relay"), p)
	return stack
})

func resources(t *testing.T, typ string) []map[string]any {
	t.Helper()
	out := cdktest.PropertiesOfType(cdktest.TemplateJSON(t, shared()), typ)
	if len(out) == 0 {
		t.Fatalf("no %s", typ)
	}
	return out
}

func TestRelayEnvironment(t *testing.T) {
	cd := cdktest.Object(t, resources(t, "AWS::ECS::TaskDefinition")[0], "ContainerDefinitions", 0)
	env := map[string]any{}
	for _, e := range cdktest.Objects(t, cd, "Environment") {
		env[cdktest.Get[string](t, e, "Name")] = e["Value"]
	}
	want := map[string]string{
		"RELAY_LISTEN":               ":8443",
		"RELAY_ADMIN":                ":9901",
		"RELAY_HEALTH_SNI":           "health.agents.example.com",
		"RELAY_PROXY_PROTOCOL":       "required",
		"RELAY_IDLE_TIMEOUT":         "360s",
		"RELAY_DRAIN_TIMEOUT":        "110s",
		"RELAY_UNREADY_DELAY":        "35s",
		"RELAY_MAX_CONNS":            "3000",
		"RELAY_MAX_CONNS_PER_SOURCE": "1000",
		"RELAY_ROUTE":                "abc123-ats.iot.eu-west-1.amazonaws.com=vpce-1.iot.data.eu-west-1.vpce.amazonaws.com:443,abc123.credentials.iot.eu-west-1.amazonaws.com=vpce-2.iot.credentials.eu-west-1.vpce.amazonaws.com:443",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %v, want %q", k, env[k], v)
		}
	}
	// Trusted CIDR defaults to the VPC's block (a token here).
	if js, _ := json.Marshal(env["RELAY_TRUSTED_CIDR"]); !strings.Contains(string(js), "CidrBlock") {
		t.Errorf("RELAY_TRUSTED_CIDR %s, want the VPC CIDR", js)
	}
	if cd["StopTimeout"] != float64(120) || cd["ReadonlyRootFilesystem"] != true || cd["User"] != "65532:65532" {
		t.Errorf("stop %v readonly %v user %v", cd["StopTimeout"], cd["ReadonlyRootFilesystem"], cd["User"])
	}
	if js, _ := json.Marshal(cd["Ulimits"]); string(js) != `[{"HardLimit":65535,"Name":"nofile","SoftLimit":65535}]` {
		t.Errorf("ulimits %s", js)
	}
}

func TestScalingOnFlowsPerTaskAndCPU(t *testing.T) {
	st := resources(t, "AWS::ApplicationAutoScaling::ScalableTarget")[0]
	if st["MinCapacity"] != float64(3) || st["MaxCapacity"] != float64(12) {
		t.Errorf("capacity %v..%v, want 3..12 (one per zone, ×4)", st["MinCapacity"], st["MaxCapacity"])
	}
	var cpu, flows bool
	for _, p := range resources(t, "AWS::ApplicationAutoScaling::ScalingPolicy") {
		js, _ := json.Marshal(p)
		cpu = cpu || strings.Contains(string(js), "ECSServiceAverageCPUUtilization")
		flows = flows || strings.Contains(string(js), `"ActiveFlowCount"`) && strings.Contains(string(js), `"TargetValue":2000`)
	}
	if !cpu || !flows {
		t.Errorf("cpu policy %v, flows policy %v", cpu, flows)
	}
	svc := resources(t, "AWS::ECS::Service")[0]
	dc := cdktest.Object(t, svc, "DeploymentConfiguration")
	if cb, _ := json.Marshal(dc["DeploymentCircuitBreaker"]); string(cb) != `{"Enable":true,"Rollback":true}` || dc["MaximumPercent"] != float64(sharedMaxHealthy) || dc["MinimumHealthyPercent"] != float64(100) {
		t.Errorf("deployment %v", dc)
	}
}

// The filter is built from the relay's log contract (relayspec), so it
// matches the lines the relay writes, and runs on the transformed lines,
// which carry the fleet: its dimension's value.
func TestRejectsMetricFilter(t *testing.T) {
	f := resources(t, "AWS::Logs::MetricFilter")[0]
	if f["FilterPattern"] != relayspec.RejectFilterPattern() {
		t.Errorf("filter %v", f["FilterPattern"])
	}
	if f["ApplyOnTransformedLogs"] != true {
		t.Errorf("ApplyOnTransformedLogs %v; the fleet field exists only in the transformed lines", f["ApplyOnTransformedLogs"])
	}
	mt := cdktest.Object(t, f, "MetricTransformations", 0)
	if _, ok := mt["DefaultValue"]; ok {
		t.Errorf("DefaultValue %v: CloudWatch Logs refuses it together with dimensions", mt["DefaultValue"])
	}
	dims := cdktest.Objects(t, mt, "Dimensions")
	if len(dims) != 1 || dims[0]["Key"] != relayfleet.RejectsFleetDimension || dims[0]["Value"] != "$."+relayfleet.FleetLogKey {
		t.Errorf("dimensions %v; want %s = $.%s", dims, relayfleet.RejectsFleetDimension, relayfleet.FleetLogKey)
	}
}

// Two fleets in one account and region: each log group's transformer
// stamps its own fleet's name, each filter reads it into the Fleet
// dimension, and each fleet's MetricRejects asks for its own value, so
// neither counts the other's refusals.
func TestTwoFleetsKeepSeparateRejectCounts(t *testing.T) {
	stack, p := fixture()
	a := *p
	a.FleetName = jsii.String("euw1")
	fa := relayfleet.New(stack, jsii.String("RelayA"), &a)
	// The second fleet keeps the default name, its construct's unique ID.
	fb := relayfleet.New(stack, jsii.String("RelayB"), p)
	if *fa.FleetName() != "euw1" || *fb.FleetName() == *fa.FleetName() || *fb.FleetName() == "" {
		t.Fatalf("fleet names %q and %q; want euw1 and a distinct default", *fa.FleetName(), *fb.FleetName())
	}
	tmpl := cdktest.TemplateJSON(t, stack)
	stamped := map[string]bool{}
	for _, tr := range cdktest.PropertiesOfType(tmpl, "AWS::Logs::Transformer") {
		procs := cdktest.Objects(t, tr, "TransformerConfig")
		if len(procs) != 2 {
			t.Fatalf("transformer %v; want parseJSON then addKeys", procs)
		}
		if _, ok := procs[0]["ParseJSON"]; !ok {
			t.Errorf("first processor %v; want ParseJSON (the relay's lines are JSON)", procs[0])
		}
		entry := cdktest.Object(t, procs[1], "AddKeys", "Entries", 0)
		if entry["Key"] != relayfleet.FleetLogKey {
			t.Errorf("addKeys entry %v; want key %q", entry, relayfleet.FleetLogKey)
		}
		stamped[cdktest.Get[string](t, entry, "Value")] = true
	}
	if len(stamped) != 2 || !stamped[*fa.FleetName()] || !stamped[*fb.FleetName()] {
		t.Errorf("transformers stamp %v; want one per fleet: %q and %q", stamped, *fa.FleetName(), *fb.FleetName())
	}
	for _, f := range []relayfleet.RelayFleet{fa, fb} {
		dims := f.MetricRejects(nil).Dimensions()
		if got := fmt.Sprint((*dims)[relayfleet.RejectsFleetDimension]); got != *f.FleetName() {
			t.Errorf("MetricRejects of %s has dimensions %v; want %s = %s", *f.FleetName(), *dims, relayfleet.RejectsFleetDimension, *f.FleetName())
		}
	}
}

func TestPropsValidation(t *testing.T) {
	route := func(sni, up string) *[]*relayfleet.Route {
		return &[]*relayfleet.Route{{SNI: jsii.String(sni), Upstream: jsii.String(up)}}
	}
	cases := []struct {
		name, want string
		edit       func(p *relayfleet.Props)
	}{
		{"zero tasks", "at least one task per zone", func(p *relayfleet.Props) { p.MinTasks = jsii.Number(0) }},
		{"fewer tasks than zones", "at least one task per zone", func(p *relayfleet.Props) { p.MinTasks = jsii.Number(2) }},
		{"max below min", "MaxTasks", func(p *relayfleet.Props) { p.MaxTasks = jsii.Number(2) }},
		{"no routes", "at least one exact SNI route", func(p *relayfleet.Props) { p.Routes = &[]*relayfleet.Route{} }},
		{"wildcard route", "no wildcard", func(p *relayfleet.Props) { p.Routes = route("*.iot.eu-west-1.amazonaws.com", "x:443") }},
		{"separator in route", "no wildcard", func(p *relayfleet.Props) { p.Routes = route("a.example.com,b.example.com", "x:443") }},
		{"upstream without port", "HOST:PORT", func(p *relayfleet.Props) { p.Routes = route("a.example.com", "x.example.com") }},
		{"route is the health sni", "health SNI", func(p *relayfleet.Props) { p.Routes = route("health.agents.example.com", "x:443") }},
		{"route sni an IP literal", "an IP literal", func(p *relayfleet.Props) { p.Routes = route("10.0.0.1", "x:443") }},
		{"health sni an IP literal", "an IP literal", func(p *relayfleet.Props) { p.HealthSNI = jsii.String("10.0.0.1") }},
		{"health sni one label", "at least two labels", func(p *relayfleet.Props) { p.HealthSNI = jsii.String("health") }},
		{"relay idle breaks the rule", "timeout rule", func(p *relayfleet.Props) { p.IdleTimeoutSec = jsii.Number(60) }},
		{"nlb idle not above relay idle", "timeout rule", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, idle: jsii.Number(360)} }},
		{"drain above stop timeout", "SIGKILL", func(p *relayfleet.Props) { p.DrainTimeoutSec = jsii.Number(115); p.StopTimeoutSec = jsii.Number(110) }},
		{"stop timeout above fargate max", "Fargate maximum", func(p *relayfleet.Props) { p.StopTimeoutSec = jsii.Number(130) }},
		{"unready not below drain", "UnreadyDelaySec", func(p *relayfleet.Props) { p.UnreadyDelaySec = jsii.Number(110) }},
		{"deregistration below stop", "DeregistrationDelaySec 60 must be at least StopTimeoutSec 120", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, dereg: jsii.Number(60)} }},
		{"unhealthy draining below drain", "UnhealthyDrainingIntervalSec 60 must be at least DrainTimeoutSec 110", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, draining: jsii.Number(60)} }},
		{"edge resets unhealthy targets at once", "UnhealthyDrainingIntervalSec 0 must be at least DrainTimeoutSec 110", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, draining: jsii.Number(0)} }},
		{"nofile too low", "Nofile", func(p *relayfleet.Props) { p.Nofile = jsii.Number(4096) }},
		{"target at max conns", "TargetConnsPerTask", func(p *relayfleet.Props) { p.TargetConnsPerTask = jsii.Number(3000) }},
		{"per-source cap above the task cap", "MaxConnsPerSource 3001 must be a whole number from 1 to MaxConnsPerTask 3000", func(p *relayfleet.Props) { p.MaxConnsPerSource = jsii.Number(3001) }},
		{"per-source cap zero", "MaxConnsPerSource 0", func(p *relayfleet.Props) { p.MaxConnsPerSource = jsii.Number(0) }},
		{"fractional per-source cap", "MaxConnsPerSource 10.5", func(p *relayfleet.Props) { p.MaxConnsPerSource = jsii.Number(10.5) }},
		{"no edge", "Edge is required", func(p *relayfleet.Props) { p.Edge = nil }},
		{"no target groups", "Edge has 0 target groups; give 1..5", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, replaceTGs: true} }},
		{"no load balancer names", "Edge has 0 load balancer full names for 1 target groups", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, replaceNames: true} }},
		{"no load balancer sg", "Edge.Connections() is nil", func(p *relayfleet.Props) { p.Edge = otherEdge{Edge: p.Edge, replaceConns: true} }},
		{"fleet name with a blank", `FleetName "eu west" must be 1..64`, func(p *relayfleet.Props) { p.FleetName = jsii.String("eu west") }},
		{"empty fleet name", `FleetName "" must be 1..64`, func(p *relayfleet.Props) { p.FleetName = jsii.String("") }},
		{"empty trusted cidrs", "TrustedCidrs", func(p *relayfleet.Props) { p.TrustedCidrs = &[]*string{} }},
		{"min healthy above 100", "MinHealthyPercent 101 must be 0..100", func(p *relayfleet.Props) { p.MinHealthyPercent = jsii.Number(101) }},
		{"negative min healthy", "MinHealthyPercent -1 must be 0..100", func(p *relayfleet.Props) { p.MinHealthyPercent = jsii.Number(-1) }},
		{"fractional max healthy", "must be whole percentages", func(p *relayfleet.Props) { p.MaxHealthyPercent = jsii.Number(150.5) }},
		{"max healthy below min", "MaxHealthyPercent 40 must be from MinHealthyPercent (50) to 400", func(p *relayfleet.Props) {
			p.MinHealthyPercent, p.MaxHealthyPercent = jsii.Number(50), jsii.Number(40)
		}},
		{"max healthy above 400", "MaxHealthyPercent 401", func(p *relayfleet.Props) { p.MaxHealthyPercent = jsii.Number(401) }},
		{"no room to deploy", "no room to start a task", func(p *relayfleet.Props) { p.MaxHealthyPercent = jsii.Number(100) }},
	}
	// Validation runs before any construct is created, so one fixture
	// serves every case (each under its own ID in case one slips through).
	stack, base := fixture()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := *base
			c.edit(&p)
			cdktest.MustPanic(t, c.want, func() { relayfleet.New(stack, jsii.String(fmt.Sprintf("Relay%d", i)), &p) })
		})
	}
}

// ImageSources is exactly what the relay binary is built from: every
// package of this module it imports (so the image builds) and nothing else
// (so unrelated changes do not redeploy it).
func TestImageSourcesAreExactlyTheRelaysPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.ImportPath}}{{end}}{{end}}", "../../proxyimage/cmd/relay").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var want []string
	for _, pkg := range strings.Fields(string(out)) {
		want = append(want, strings.TrimPrefix(pkg, "github.com/agentgate/agentgate/"))
	}
	want = append(want, "go.mod", "go.sum", "proxyimage/Dockerfile")
	sort.Strings(want)
	got := slices.Sorted(slices.Values(relayfleet.ImageSources))
	if !slices.Equal(got, want) {
		t.Errorf("ImageSources %v\nwant %v (the relay's packages per go list -deps, plus the module files and Dockerfile)", got, want)
	}
	ex := relayfleet.ImageExcludes
	if ex[0] != "*" || !slices.Contains(ex, "**/*_test.go") || !slices.Contains(ex, "**/testdata") {
		t.Errorf("excludes %v must start by excluding everything and leave tests out", ex)
	}
}

// The Dockerfile copies every source the context admits: a package moved to
// a folder the Dockerfile does not COPY would pass go list and fail only in
// docker build, which no test here runs.
func TestDockerfileCopiesEveryImageSource(t *testing.T) {
	data, err := os.ReadFile("../../proxyimage/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var copied []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--") {
			continue
		}
		copied = append(copied, f[1:len(f)-1]...)
	}
	for _, src := range relayfleet.ImageSources {
		if src == "proxyimage/Dockerfile" {
			continue
		}
		if !slices.ContainsFunc(copied, func(c string) bool {
			return c == src || strings.HasSuffix(c, "/") && strings.HasPrefix(src, c)
		}) {
			t.Errorf("proxyimage/Dockerfile copies %q, not %s", copied, src)
		}
	}
}

// docker build by hand reads the repository's .dockerignore: it must say
// what the CDK asset says.
func TestDockerignoreMatchesImageExcludes(t *testing.T) {
	data, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if !slices.Equal(lines, relayfleet.ImageExcludes) {
		t.Errorf(".dockerignore patterns %q\nwant relayfleet.ImageExcludes %q", lines, relayfleet.ImageExcludes)
	}
}

// The environment the construct sets is accepted by the relay's own
// configuration parser (proxyimage/config) and means what the construct
// intends: names, formats and values stay aligned with the relay.
func TestRelayAcceptsTheEnvironment(t *testing.T) {
	stack, p := fixture()
	p.TrustedCidrs = jsii.Strings("10.40.0.0/16")
	f := relayfleet.New(stack, jsii.String("Relay"), p)
	env := f.Environment()
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		if !ok {
			return "", false
		}
		return *v, true
	}
	cfg, err := config.Parse(nil, lookup)
	if err != nil {
		t.Fatalf("the relay refuses the construct's environment: %v", err)
	}
	for name := range env {
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "RELAY_"), "_", "-"))
		if config.EnvName(flag) != name {
			t.Errorf("%s does not map back to a flag", name)
		}
	}
	if cfg.ProxyProtocol != config.ProxyRequired || len(cfg.TrustedCIDRs) != 1 || cfg.TrustedCIDRs[0].String() != "10.40.0.0/16" {
		t.Errorf("proxy %v trusted %v", cfg.ProxyProtocol, cfg.TrustedCIDRs)
	}
	if cfg.IdleTimeout != 360*time.Second || cfg.DrainTimeout != 110*time.Second || cfg.UnreadyDelay != 35*time.Second || cfg.MaxConns != 3000 || cfg.MaxConnsPerSource != 1000 {
		t.Errorf("idle %s drain %s unready %s max-conns %d per source %d", cfg.IdleTimeout, cfg.DrainTimeout, cfg.UnreadyDelay, cfg.MaxConns, cfg.MaxConnsPerSource)
	}
	if cfg.HealthSNI != "health.agents.example.com" || cfg.Listen != ":8443" || cfg.Admin != ":9901" || len(cfg.Routes) != 2 {
		t.Errorf("health %q listen %q admin %q routes %v", cfg.HealthSNI, cfg.Listen, cfg.Admin, cfg.Routes)
	}
	for _, r := range cfg.Routes {
		if strings.Contains(r.SNI, "*") || !strings.HasSuffix(r.Upstream, ":443") {
			t.Errorf("route %+v", r)
		}
	}
}

// TestLabRelaysRunTheDeployedEnvironment: the local lab (internal/testkit/agentlab)
// starts its relays from the same rendering (relayspec.Env) as this
// construct, and the two environments differ only in the keys listed in
// agentlab.RelayOverrides. A variable the construct sets and the lab does
// not, or the other way round, or a value that differs without a listed
// reason, fails here: the lab's relays run what a deployment runs.
func TestLabRelaysRunTheDeployedEnvironment(t *testing.T) {
	stack, p := fixture()
	p.HealthSNI = nil // the lab, like a fleet without one, uses the default
	deployed := relayfleet.New(stack, jsii.String("Relay"), p).Environment()
	lab := agentlab.RelayEnv([]relayspec.Route{{SNI: "abc123-ats.iot.eu-west-1.amazonaws.com", Upstream: "127.0.0.1:8443"}})
	for _, k := range slices.Sorted(maps.Keys(deployed)) {
		v, ok := lab[k]
		_, overridden := agentlab.RelayOverrides[k]
		switch {
		case !ok:
			t.Errorf("the construct sets %s=%s; the lab's relays do not", k, *deployed[k])
		case !overridden && v != *deployed[k]:
			t.Errorf("%s: construct %q, lab %q, and it is not one of agentlab.RelayOverrides", k, *deployed[k], v)
		}
	}
	for k, v := range lab {
		if _, ok := deployed[k]; !ok {
			t.Errorf("the lab's relays set %s=%s; the construct does not", k, v)
		}
	}
	for k := range agentlab.RelayOverrides {
		if _, ok := deployed[k]; !ok {
			t.Errorf("agentlab.RelayOverrides names %s, which the construct does not set", k)
		} else if lab[k] == *deployed[k] {
			t.Errorf("agentlab.RelayOverrides names %s, but the lab uses the deployed value %q", k, lab[k])
		}
	}
}
