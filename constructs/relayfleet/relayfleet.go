// Package relayfleet runs the agentgate relay (proxyimage/) as an ECS
// Fargate service on arm64 in private subnets, behind the Network Load
// Balancers of an Edge (package edge provides one; another team can pass
// its own).
//
// What the construct guarantees:
//
//   - The relay is configured entirely through RELAY_* environment
//     variables: its routes (exact SNI → upstream), the health SNI, PROXY
//     protocol v2 required and trusted only from the VPC, idle timeout,
//     drain budget, unready delay, connection cap and per-source cap.
//   - Graceful replacement: rolling deploys (100 %/200 % unless
//     MinHealthyPercent/MaxHealthyPercent say otherwise), a deployment
//     circuit breaker with rollback, and a stop timeout that covers the
//     relay's whole drain budget (the relay's --drain-timeout includes its
//     --unready-delay): unready delay < drain ≤ stop timeout ≤ 120 s
//     (the Fargate maximum) ≤ the target groups' deregistration delay.
//   - Auto scaling on load: target tracking on active NLB flows per running
//     task (metric math) and on CPU.
//   - A rejects metric per fleet: a log metric filter counts the relay's
//     refusal lines with a Fleet dimension, so fleets sharing an account
//     and region keep separate counts.
//   - Hardening: read-only root file system, non-root user, explicit nofile
//     ulimit, awslogs with retention, Container Insights on the cluster, a
//     security group admitting the agent and admin ports only from the load
//     balancers.
package relayfleet

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/internal/deploy/modulesource"
)

// Defaults used when the matching Props field is unset.
const (
	// DefaultStopTimeoutSec is the Fargate maximum: the relay gets every
	// second it can to spread its connection closes.
	DefaultStopTimeoutSec = 120
	// MaxStopTimeoutSec is Fargate's upper bound for the stop timeout.
	MaxStopTimeoutSec = 120
	// DefaultNofile is the soft and hard open-files limit of the relay.
	DefaultNofile = 65535
	// FDsPerConnection is the worst-case descriptors one relayed connection
	// holds: two sockets plus, while splice(2) is in use, a pipe pair per
	// direction (docs/decisions.md, "Relay"). The relay avoids idle pipes,
	// so this is a bound.
	FDsPerConnection = 6
	// DefaultTargetCPUPercent is the CPU target of the scaling policy.
	DefaultTargetCPUPercent = 60
	// ContainerName is the relay container's name in the task definition.
	ContainerName = "relay"
	// RejectsMetricNamespace and RejectsMetricName name the metric the log
	// metric filter derives from the relay's refusal lines
	// (relayspec.RejectLogMessage).
	RejectsMetricNamespace = "agentgate/relay"
	// RejectsMetricName counts refused connections logged by the relay.
	RejectsMetricName = "RejectedConnections"
	// RejectsFleetDimension is the dimension of the rejects metric that
	// names the fleet (Props.FleetName), so two fleets in one account and
	// region do not merge their counts.
	RejectsFleetDimension = "Fleet"
	// FleetLogKey is the key the log group's transformer adds to every
	// relay line, holding the fleet name; the metric filter reads the
	// dimension's value from it.
	FleetLogKey = "fleet"
)

// Route sends TLS connections for one exact server name to one upstream.
type Route struct {
	// SNI is the exact TLS server name (no wildcard). Required.
	SNI *string
	// Upstream is HOST:PORT. Required.
	Upstream *string
}

// Edge is the load-balancing side a fleet sits behind: what the fleet needs
// from it, and nothing else. edge.Edge satisfies it; another team passes its
// own Network Load Balancers by implementing these methods.
type Edge interface {
	// Connections is the load balancers' security group; the tasks admit
	// the agent and admin ports from it only.
	awsec2.IConnectable
	// TargetGroups are the target groups the service joins, 1..5 (an ECS
	// service joins at most five). They forward to relayspec.ListenPort
	// with PROXY protocol v2 and health-check relayspec.ReadyPath on
	// relayspec.AdminPort.
	TargetGroups() []elbv2.INetworkTargetGroup
	// LoadBalancerFullNames are the load balancers' full names (the
	// "LoadBalancer" dimension of AWS/NetworkELB metrics), one per target
	// group, in the same order; their ActiveFlowCount drives scaling.
	LoadBalancerFullNames() []*string
	// IdleTimeoutSec is the listeners' TCP idle timeout, checked against
	// the relay's idle timeout with the timing rule.
	IdleTimeoutSec() float64
	// DeregistrationDelaySec is the target groups' deregistration delay,
	// checked to be at least the stop timeout, so the load balancer keeps a
	// draining task's connections until the relay closes them.
	DeregistrationDelaySec() float64
	// UnhealthyDrainingIntervalSec is how long the target groups keep the
	// connections of a target that fails its health checks while registered
	// (connection termination for unhealthy targets off), checked to be at
	// least DrainTimeoutSec: a relay that turns unready on a SIGTERM that
	// did not come through a deployment (which deregisters it first) must
	// have closed its connections itself, paced, before the load balancer
	// resets what is left. An edge that resets them at once returns 0 and
	// is refused.
	UnhealthyDrainingIntervalSec() float64
}

// Props configures a RelayFleet.
type Props struct {
	// Vpc holds the tasks. Required.
	Vpc awsec2.IVpc
	// Subnets for the tasks. Default: the VPC's private subnets with egress.
	Subnets *awsec2.SubnetSelection
	// Edge is the load balancers the service joins. Required.
	Edge Edge
	// FleetName is the value of the "Fleet" dimension of the rejects metric
	// (RejectsFleetDimension), so fleets that share an account and region
	// keep separate counts. 1..64 of A-Z a-z 0-9 . _ -, starting with a
	// letter or digit. Default: the construct's unique ID in the app
	// (Names.uniqueId), which differs between any two fleets of one app.
	FleetName *string
	// Routes are the relay's exact SNI routes. Required, at least one.
	Routes *[]*Route
	// HealthSNI is the server name the relay answers health checks for.
	// Default: relayspec.DefaultHealthSNI.
	HealthSNI *string
	// TrustedCidrs may send PROXY protocol headers. Default: the VPC CIDR
	// (the NLB's private addresses).
	TrustedCidrs *[]*string
	// MQTTKeepAliveSec is checked against IdleTimeoutSec with the timing
	// rule. Default: timing.DefaultMQTTKeepAlive.
	MQTTKeepAliveSec *float64
	// IdleTimeoutSec is the relay's idle timeout. Default: timing.DefaultRelayIdleTimeout.
	IdleTimeoutSec *float64
	// UnreadyDelaySec is how long the relay reports unready after SIGTERM
	// while still accepting. Default: relayspec.DefaultUnreadyDelaySeconds.
	UnreadyDelaySec *float64
	// DrainTimeoutSec is the relay's whole budget from SIGTERM to exit,
	// unready delay included. Default: relayspec.DefaultDrainTimeoutSeconds.
	DrainTimeoutSec *float64
	// StopTimeoutSec is the ECS stop timeout. Default: DefaultStopTimeoutSec.
	StopTimeoutSec *float64
	// MinHealthyPercent is the service's deployment minimumHealthyPercent:
	// during a rolling deploy ECS keeps at least ceil(desired × it / 100)
	// tasks running. 0..100. Default: 100 (never below the capacity the
	// agents need).
	MinHealthyPercent *float64
	// MaxHealthyPercent is its maximumPercent: at most floor(desired × it /
	// 100) tasks running or pending, so floor(desired × (it − 100) / 100)
	// old tasks, and their agents, go per wave. MinHealthyPercent..400, and
	// above 100 unless MinHealthyPercent is below 100 (else the deploy
	// cannot start a task). Default: 200 (every task in one wave). A fleet
	// with many agents per task sets fewer, so each wave's reconnects fit
	// the account's IoT connect quota (see the deployment config's budget).
	MaxHealthyPercent *float64
	// MinTasks is the scaling floor, at least one per zone. Default: one per zone.
	MinTasks *float64
	// MaxTasks is the scaling ceiling. Default: 4 × MinTasks.
	MaxTasks *float64
	// MaxConnsPerTask is the relay's --max-conns. Default: relayspec.DefaultMaxConnsPerTask (3000).
	MaxConnsPerTask *float64
	// MaxConnsPerSource is the relay's --max-conns-per-source: the
	// connections one source (IPv4 address or IPv6 /64) may hold on one
	// task, 1..MaxConnsPerTask. A customer site behind one NAT address fits
	// if its agents ≤ MaxConnsPerSource × the tasks of one zone.
	// Default: relayspec.DefaultMaxConnsPerSource(MaxConnsPerTask), a third.
	MaxConnsPerSource *float64
	// TargetConnsPerTask is the flows-per-task scaling target, below
	// MaxConnsPerTask. Default: two thirds of MaxConnsPerTask.
	TargetConnsPerTask *float64
	// TargetCPUPercent is the CPU scaling target. Default: DefaultTargetCPUPercent.
	TargetCPUPercent *float64
	// Cpu is Fargate CPU units. Default: 512.
	Cpu *float64
	// MemoryMiB is the task memory. Default: 1024.
	MemoryMiB *float64
	// Nofile is the open-files ulimit (soft = hard). Default: DefaultNofile.
	Nofile *float64
	// Image is the relay image. Default: built from agentgate's module with
	// ImageFromSource(SourceRoot()), from whichever app synthesizes it.
	Image awsecs.ContainerImage
	// LogRetention of the relay's logs. Default: THREE_MONTHS.
	LogRetention awslogs.RetentionDays
}

// RelayFleet is the relay service.
type RelayFleet interface {
	constructs.Construct
	// Cluster is the ECS cluster (Container Insights on).
	Cluster() awsecs.Cluster
	// Service is the Fargate service.
	Service() awsecs.FargateService
	// TaskDefinition is the relay's task definition.
	TaskDefinition() awsecs.FargateTaskDefinition
	// LogGroup receives the relay's JSON logs.
	LogGroup() awslogs.ILogGroup
	// Connections is the tasks' security group.
	Connections() awsec2.Connections
	// Environment is the relay's RELAY_* environment as configured.
	Environment() map[string]*string
	// FleetName is the value of the rejects metric's fleet dimension.
	FleetName() *string
	// MetricRejects counts connections this fleet's relays refused and
	// logged (from their JSON log lines, dimension RejectsFleetDimension =
	// FleetName; floods logged at debug level are not counted). Periods
	// without a refusal have no data point.
	MetricRejects(opts *awscloudwatch.MetricOptions) awscloudwatch.Metric
	// MetricCPUUtilization is the service's average CPU.
	MetricCPUUtilization(opts *awscloudwatch.MetricOptions) awscloudwatch.Metric
	// MetricFlowsPerTask is the scaling metric: active flows per running task.
	MetricFlowsPerTask() awscloudwatch.IMetric
}

type fleet struct {
	constructs.Construct
	cluster awsecs.Cluster
	service awsecs.FargateService
	task    awsecs.FargateTaskDefinition
	logs    awslogs.LogGroup
	env     map[string]*string
	flows   awscloudwatch.IMetric
	// fleetName is the value of the rejects metric's fleet dimension.
	fleetName string
}

var fleetNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func num(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

func whole(v float64) bool { return v == math.Trunc(v) }

// CheckRoute returns an error for a route the relay would refuse or that
// could widen the allowlist: a wildcard, a separator the RELAY_ROUTE list
// uses, an upstream without a port. Deploy-time tokens (values CloudFormation
// resolves) are checked for what is known at synth only.
func CheckRoute(r *Route) error {
	if r == nil || r.SNI == nil || r.Upstream == nil {
		return fmt.Errorf("route needs SNI and Upstream")
	}
	sni, up := *r.SNI, *r.Upstream
	for _, s := range []string{sni, up} {
		if strings.ContainsAny(s, "*,=") || strings.ContainsAny(s, " \t") {
			return fmt.Errorf("route %q=%q: no wildcard, ',', '=' or blanks allowed (the relay routes exact names only)", sni, up)
		}
	}
	if !*awscdk.Token_IsUnresolved(jsii.String(sni)) {
		if err := relayspec.CheckDomainName(sni); err != nil {
			return fmt.Errorf("route SNI %q is not a lower-case DNS name: %w", sni, err)
		}
	}
	if !*awscdk.Token_IsUnresolved(jsii.String(up)) {
		i := strings.LastIndex(up, ":")
		if i <= 0 || i == len(up)-1 {
			return fmt.Errorf("route upstream %q: want HOST:PORT", up)
		}
	}
	return nil
}

// SourceRoot is agentgate's module directory, located through the Go
// module system of the app being synthesized (agentgate's own module, a
// replace target or the read-only module cache), never from the working
// directory or source paths, so it works from any app and under -trimpath.
// It panics, naming the fix, when the module cannot be located.
func SourceRoot() string {
	dir, err := modulesource.Dir()
	if err != nil {
		panic(fmt.Sprintf("relayfleet: %v; or pass Props.Image", err))
	}
	if _, err := os.Stat(filepath.Join(dir, "proxyimage", "Dockerfile")); err != nil {
		panic(fmt.Sprintf("relayfleet: %s holds no proxyimage/Dockerfile; pass Props.Image", dir))
	}
	return dir
}

// ImageSources are the repository paths the relay image is built from: the
// module files, the Dockerfile and exactly the packages the relay binary
// imports (a test keeps this list equal to `go list -deps`). Nothing else
// is hashed or sent as build context, so a change anywhere else (the CDK
// code, the agent, the benchmarks, tests, node_modules, .git) neither
// rebuilds nor redeploys the relay, and pull-request diffs stay quiet.
var ImageSources = []string{
	"go.mod", "go.sum", "proxyimage/Dockerfile",
	"contract/relayspec", "contract/timing",
	"proxyimage/admin", "proxyimage/clienthello", "proxyimage/cmd/relay",
	"proxyimage/config", "proxyimage/proxyproto", "proxyimage/relay",
}

// ImageExcludes is ImageSources as Docker ignore patterns: everything is
// excluded, the sources re-included, then their tests and test data
// excluded again. The repository's .dockerignore holds the same lines.
var ImageExcludes = imageExcludes()

func imageExcludes() []string {
	out := []string{"*"}
	for _, s := range ImageSources {
		out = append(out, "!"+s)
	}
	return append(out, "**/*_test.go", "**/testdata")
}

// ImageFromSource builds the relay image from agentgate's module at root
// for linux/arm64 (Dockerfile proxyimage/Dockerfile). The CDK stages the
// build context into the cloud assembly (cdk.out/asset.<hash>): only the
// ImageSources files, copied, so root may be read-only (the module cache)
// and the asset hash depends on those files' paths and contents alone.
func ImageFromSource(root string) awsecs.ContainerImage {
	return awsecs.ContainerImage_FromAsset(jsii.String(root), &awsecs.AssetImageProps{
		File:       jsii.String("proxyimage/Dockerfile"),
		Platform:   awsecrassets.Platform_LINUX_ARM64(),
		Exclude:    jsii.Strings(ImageExcludes...),
		IgnoreMode: awscdk.IgnoreMode_DOCKER,
	})
}

// New creates the service. It panics on misuse, naming the value and the fix.
func New(scope constructs.Construct, id *string, props *Props) RelayFleet {
	if props == nil || props.Vpc == nil {
		panic("relayfleet: Vpc is required")
	}
	if props.Edge == nil {
		panic("relayfleet: Edge is required: the load balancers the service joins (edge.New returns one)")
	}
	targetGroups, lbNames := props.Edge.TargetGroups(), props.Edge.LoadBalancerFullNames()
	if n := len(targetGroups); n < 1 || n > 5 {
		panic(fmt.Sprintf("relayfleet: Edge has %d target groups; give 1..5 (an ECS service joins at most 5)", n))
	}
	if len(lbNames) != len(targetGroups) {
		panic(fmt.Sprintf("relayfleet: Edge has %d load balancer full names for %d target groups; give one per target group, same order", len(lbNames), len(targetGroups)))
	}
	if props.Edge.Connections() == nil {
		panic("relayfleet: Edge.Connections() is nil; return the load balancers' security group: the tasks admit traffic from it only")
	}
	fleetName := ""
	if props.FleetName != nil {
		fleetName = *props.FleetName
		if !fleetNameRe.MatchString(fleetName) {
			panic(fmt.Sprintf("relayfleet: FleetName %q must be 1..64 of A-Z a-z 0-9 . _ -, starting with a letter or digit; use the fleet's name", fleetName))
		}
	}
	if props.Routes == nil || len(*props.Routes) == 0 {
		panic("relayfleet: Routes needs at least one exact SNI route")
	}
	for _, r := range *props.Routes {
		if err := CheckRoute(r); err != nil {
			panic("relayfleet: " + err.Error())
		}
	}
	zones := len(*props.Vpc.AvailabilityZones())
	minTasks := num(props.MinTasks, float64(zones))
	maxTasks := num(props.MaxTasks, 4*minTasks)
	if !whole(minTasks) || minTasks < float64(zones) {
		panic(fmt.Sprintf("relayfleet: MinTasks %v must be a whole number of at least one task per zone (%d)", minTasks, zones))
	}
	if !whole(maxTasks) || maxTasks < minTasks || maxTasks > 1000 {
		panic(fmt.Sprintf("relayfleet: MaxTasks %v must be a whole number from MinTasks (%v) to 1000", maxTasks, minTasks))
	}
	maxConns := num(props.MaxConnsPerTask, relayspec.DefaultMaxConnsPerTask)
	targetConns := num(props.TargetConnsPerTask, math.Floor(maxConns*2/3))
	if !whole(maxConns) || maxConns < 1 {
		panic(fmt.Sprintf("relayfleet: MaxConnsPerTask %v must be a positive whole number", maxConns))
	}
	perSource := num(props.MaxConnsPerSource, float64(relayspec.DefaultMaxConnsPerSource(int(maxConns))))
	if !whole(perSource) || !relayspec.ValidMaxConnsPerSource(int(perSource), int(maxConns)) {
		panic(fmt.Sprintf("relayfleet: MaxConnsPerSource %v must be a whole number from 1 to MaxConnsPerTask %v", perSource, maxConns))
	}
	if targetConns < 1 || targetConns >= maxConns {
		panic(fmt.Sprintf("relayfleet: TargetConnsPerTask %v must be from 1 to below MaxConnsPerTask %v, so scaling starts before the cap refuses agents", targetConns, maxConns))
	}
	nofile := num(props.Nofile, DefaultNofile)
	if need := maxConns*FDsPerConnection + 64; nofile < need || !whole(nofile) {
		panic(fmt.Sprintf("relayfleet: Nofile %v is below %v (%d descriptors per connection × MaxConnsPerTask %v + 64); raise Nofile or lower MaxConnsPerTask", nofile, need, FDsPerConnection, maxConns))
	}
	keep := num(props.MQTTKeepAliveSec, timing.DefaultMQTTKeepAlive.Seconds())
	idle := num(props.IdleTimeoutSec, timing.DefaultRelayIdleTimeout.Seconds())
	nlbIdle := props.Edge.IdleTimeoutSec()
	if !whole(keep) || !whole(idle) || !whole(nlbIdle) {
		panic(fmt.Sprintf("relayfleet: MQTTKeepAliveSec %v, IdleTimeoutSec %v and the edge's IdleTimeoutSec %v must be whole seconds", keep, idle, nlbIdle))
	}
	sec := func(v float64) time.Duration { return time.Duration(v) * time.Second }
	if err := timing.CheckRule(sec(keep), sec(idle), sec(nlbIdle)); err != nil {
		panic(fmt.Sprintf("relayfleet: IdleTimeoutSec %v breaks the timeout rule: %v", idle, err))
	}
	unready := num(props.UnreadyDelaySec, relayspec.DefaultUnreadyDelaySeconds)
	drain := num(props.DrainTimeoutSec, relayspec.DefaultDrainTimeoutSeconds)
	stop := num(props.StopTimeoutSec, DefaultStopTimeoutSec)
	switch {
	case !whole(unready) || !whole(drain) || !whole(stop):
		panic("relayfleet: UnreadyDelaySec, DrainTimeoutSec and StopTimeoutSec must be whole seconds")
	case unready < 0 || unready >= drain:
		panic(fmt.Sprintf("relayfleet: UnreadyDelaySec %v must be from 0 to below DrainTimeoutSec %v (the drain budget includes it)", unready, drain))
	case drain > stop:
		panic(fmt.Sprintf("relayfleet: DrainTimeoutSec %v exceeds StopTimeoutSec %v: ECS would SIGKILL the relay mid-drain", drain, stop))
	case stop > MaxStopTimeoutSec:
		panic(fmt.Sprintf("relayfleet: StopTimeoutSec %v exceeds the Fargate maximum of %d s", stop, MaxStopTimeoutSec))
	}
	if d := props.Edge.DeregistrationDelaySec(); d < stop {
		panic(fmt.Sprintf("relayfleet: the edge's DeregistrationDelaySec %v must be at least StopTimeoutSec %v, so the load balancer keeps a draining task's connections until the relay closes them; raise the delay or lower StopTimeoutSec", d, stop))
	}
	if d := props.Edge.UnhealthyDrainingIntervalSec(); d < drain {
		panic(fmt.Sprintf("relayfleet: the edge's UnhealthyDrainingIntervalSec %v must be at least DrainTimeoutSec %v, so the load balancer keeps an unready relay's connections until the relay has closed them itself; raise the interval or lower DrainTimeoutSec", d, drain))
	}
	minHealthy := num(props.MinHealthyPercent, 100)
	maxHealthy := num(props.MaxHealthyPercent, 200)
	switch {
	case !whole(minHealthy) || !whole(maxHealthy):
		panic(fmt.Sprintf("relayfleet: MinHealthyPercent %v and MaxHealthyPercent %v must be whole percentages", minHealthy, maxHealthy))
	case minHealthy < 0 || minHealthy > 100:
		panic(fmt.Sprintf("relayfleet: MinHealthyPercent %v must be 0..100", minHealthy))
	case maxHealthy < minHealthy || maxHealthy > 400:
		panic(fmt.Sprintf("relayfleet: MaxHealthyPercent %v must be from MinHealthyPercent (%v) to 400", maxHealthy, minHealthy))
	case minHealthy == 100 && maxHealthy <= 100:
		panic(fmt.Sprintf("relayfleet: MaxHealthyPercent %v with MinHealthyPercent 100 leaves a rolling deploy no room to start a task; give MaxHealthyPercent above 100", maxHealthy))
	}
	cpu := num(props.Cpu, 512)
	mem := num(props.MemoryMiB, 1024)
	targetCPU := num(props.TargetCPUPercent, DefaultTargetCPUPercent)
	if targetCPU < 10 || targetCPU > 90 {
		panic(fmt.Sprintf("relayfleet: TargetCPUPercent %v must be 10..90", targetCPU))
	}
	healthSNI := relayspec.DefaultHealthSNI
	if props.HealthSNI != nil {
		healthSNI = *props.HealthSNI
	}
	if err := relayspec.CheckDomainName(healthSNI); err != nil {
		panic(fmt.Sprintf("relayfleet: HealthSNI %q must be a lower-case DNS name: %v", healthSNI, err))
	}
	for _, r := range *props.Routes {
		if !*awscdk.Token_IsUnresolved(r.SNI) && *r.SNI == healthSNI {
			panic(fmt.Sprintf("relayfleet: route SNI %q is the health SNI; pick another health name", healthSNI))
		}
	}
	trusted := []*string{props.Vpc.VpcCidrBlock()}
	if props.TrustedCidrs != nil {
		if len(*props.TrustedCidrs) == 0 {
			panic("relayfleet: TrustedCidrs is empty; PROXY protocol is required, so at least the load balancers' CIDR must be trusted")
		}
		trusted = *props.TrustedCidrs
	}
	retention := props.LogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_THREE_MONTHS
	}
	subnets := props.Subnets
	if subnets == nil {
		subnets = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
	}

	this := constructs.NewConstruct(scope, id)
	if fleetName == "" {
		fleetName = *awscdk.Names_UniqueId(this)
	}
	f := &fleet{Construct: this, fleetName: fleetName}
	f.cluster = awsecs.NewCluster(this, jsii.String("Cluster"), &awsecs.ClusterProps{
		Vpc:                 props.Vpc,
		ContainerInsightsV2: awsecs.ContainerInsights_ENABLED,
	})
	f.logs = awslogs.NewLogGroup(this, jsii.String("Logs"), &awslogs.LogGroupProps{
		Retention:     retention,
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	f.addRejectsMetric()

	settings := relayspec.DefaultSettings()
	for _, r := range *props.Routes {
		settings.Routes = append(settings.Routes, relayspec.Route{SNI: *r.SNI, Upstream: *r.Upstream})
	}
	for _, c := range trusted {
		settings.TrustedCIDRs = append(settings.TrustedCIDRs, *c)
	}
	settings.HealthSNI = healthSNI
	settings.IdleTimeout, settings.DrainTimeout, settings.UnreadyDelay = sec(idle), sec(drain), sec(unready)
	settings.MaxConns, settings.MaxConnsPerSource = int(maxConns), int(perSource)
	f.env = make(map[string]*string)
	for k, v := range relayspec.Env(settings) {
		f.env[k] = jsii.String(v)
	}

	f.task = awsecs.NewFargateTaskDefinition(this, jsii.String("Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(cpu),
		MemoryLimitMiB: jsii.Number(mem),
		RuntimePlatform: &awsecs.RuntimePlatform{
			CpuArchitecture:       awsecs.CpuArchitecture_ARM64(),
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
		},
	})
	image := props.Image
	if image == nil {
		image = ImageFromSource(SourceRoot())
	}
	container := f.task.AddContainer(jsii.String(ContainerName), &awsecs.ContainerDefinitionOptions{
		ContainerName:          jsii.String(ContainerName),
		Image:                  image,
		Essential:              jsii.Bool(true),
		Environment:            &f.env,
		ReadonlyRootFilesystem: jsii.Bool(true),
		User:                   jsii.String("65532:65532"), // distroless "nonroot"
		StopTimeout:            awscdk.Duration_Seconds(jsii.Number(stop)),
		Logging: awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{
			LogGroup:     f.logs,
			StreamPrefix: jsii.String("relay"),
			Mode:         awsecs.AwsLogDriverMode_NON_BLOCKING,
		}),
		PortMappings: &[]*awsecs.PortMapping{
			{ContainerPort: jsii.Number(relayspec.ListenPort), Protocol: awsecs.Protocol_TCP, Name: jsii.String("agents")},
			{ContainerPort: jsii.Number(relayspec.AdminPort), Protocol: awsecs.Protocol_TCP, Name: jsii.String("admin")},
		},
	})
	container.AddUlimits(&awsecs.Ulimit{Name: awsecs.UlimitName_NOFILE, SoftLimit: jsii.Number(nofile), HardLimit: jsii.Number(nofile)})

	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("agentgate relay tasks: agent and admin ports from the load balancers only; 443 out"),
		AllowAllOutbound: jsii.Bool(false),
	})
	// Upstreams (IoT interface endpoints, S3 through its gateway endpoint)
	// and the Fargate agent's image pulls and log delivery (through NAT)
	// are all HTTPS; the relay itself dials only its configured routes.
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)), jsii.String("upstreams, ECR and CloudWatch Logs over HTTPS"), nil)
	conns := awsec2.NewConnections(&awsec2.ConnectionsProps{SecurityGroups: &[]awsec2.ISecurityGroup{sg}})
	conns.AllowFrom(props.Edge.Connections(), awsec2.Port_Tcp(jsii.Number(relayspec.ListenPort)), jsii.String("agents through the load balancers"))
	conns.AllowFrom(props.Edge.Connections(), awsec2.Port_Tcp(jsii.Number(relayspec.AdminPort)), jsii.String("load balancer health checks"))

	f.service = awsecs.NewFargateService(this, jsii.String("Service"), &awsecs.FargateServiceProps{
		Cluster:           f.cluster,
		TaskDefinition:    f.task,
		DesiredCount:      jsii.Number(minTasks),
		MinHealthyPercent: jsii.Number(minHealthy),
		MaxHealthyPercent: jsii.Number(maxHealthy),
		CircuitBreaker:    &awsecs.DeploymentCircuitBreaker{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		VpcSubnets:        subnets,
		SecurityGroups:    &[]awsec2.ISecurityGroup{sg},
		AssignPublicIp:    jsii.Bool(false),
		// The load balancers take 2 × 10 s to see a new task healthy.
		HealthCheckGracePeriod: awscdk.Duration_Seconds(jsii.Number(60)),
		EnableECSManagedTags:   jsii.Bool(true),
		PropagateTags:          awsecs.PropagatedTagSource_SERVICE,
	})
	for _, tg := range targetGroups {
		tg.AddTarget(f.service.LoadBalancerTarget(&awsecs.LoadBalancerTargetOptions{
			ContainerName: jsii.String(ContainerName),
			ContainerPort: jsii.Number(relayspec.ListenPort),
		}))
	}

	// Scaling: a scalable target of our own so one target-tracking policy
	// can use metric math (the L2 helper takes plain metrics only).
	target := awsapplicationautoscaling.NewScalableTarget(this, jsii.String("Scaling"), &awsapplicationautoscaling.ScalableTargetProps{
		ServiceNamespace:  awsapplicationautoscaling.ServiceNamespace_ECS,
		ScalableDimension: jsii.String("ecs:service:DesiredCount"),
		ResourceId:        awscdk.Fn_Join(jsii.String("/"), jsii.Strings("service", *f.cluster.ClusterName(), *f.service.ServiceName())),
		MinCapacity:       jsii.Number(minTasks),
		MaxCapacity:       jsii.Number(maxTasks),
		Role: awsiam.Role_FromRoleArn(this, jsii.String("ScalingRole"), awscdk.Stack_Of(this).FormatArn(&awscdk.ArnComponents{
			Service: jsii.String("iam"), Region: jsii.String(""), Resource: jsii.String("role"),
			ResourceName: jsii.String("aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService"),
		}), nil),
	})
	target.ScaleToTrackMetric(jsii.String("Cpu"), &awsapplicationautoscaling.BasicTargetTrackingScalingPolicyProps{
		PredefinedMetric: awsapplicationautoscaling.PredefinedMetric_ECS_SERVICE_AVERAGE_CPU_UTILIZATION,
		TargetValue:      jsii.Number(targetCPU),
		ScaleInCooldown:  awscdk.Duration_Seconds(jsii.Number(300)),
		ScaleOutCooldown: awscdk.Duration_Seconds(jsii.Number(60)),
	})
	f.addFlowScaling(target, lbNames, targetConns)
	return f
}

// addFlowScaling adds target tracking on Σ ActiveFlowCount / RunningTaskCount.
// Cross-zone is off, so flows per task in each zone are what the NLB nodes
// send; scaling on the fleet-wide average keeps every zone's tasks near the
// target because Fargate spreads tasks evenly over the zones.
func (f *fleet) addFlowScaling(target awsapplicationautoscaling.ScalableTarget, lbNames []*string, targetConns float64) {
	var queries []*awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty
	using := map[string]awscloudwatch.IMetric{}
	var sum []string
	for i, lb := range lbNames {
		id := fmt.Sprintf("flows%d", i+1)
		sum = append(sum, id)
		queries = append(queries, &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
			Id: jsii.String(id),
			MetricStat: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty{
				Metric: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricProperty{
					Namespace:  jsii.String("AWS/NetworkELB"),
					MetricName: jsii.String("ActiveFlowCount"),
					Dimensions: &[]*awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{{Name: jsii.String("LoadBalancer"), Value: lb}},
				},
				Stat: jsii.String("Average"),
			},
			ReturnData: jsii.Bool(false),
		})
		using[id] = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("AWS/NetworkELB"), MetricName: jsii.String("ActiveFlowCount"),
			DimensionsMap: &map[string]*string{"LoadBalancer": lb}, Statistic: jsii.String("Average"),
		})
	}
	dims := map[string]*string{"ClusterName": f.cluster.ClusterName(), "ServiceName": f.service.ServiceName()}
	queries = append(queries, &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
		Id: jsii.String("tasks"),
		MetricStat: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricStatProperty{
			Metric: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricProperty{
				Namespace:  jsii.String("ECS/ContainerInsights"),
				MetricName: jsii.String("RunningTaskCount"),
				Dimensions: &[]*awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDimensionProperty{
					{Name: jsii.String("ClusterName"), Value: dims["ClusterName"]},
					{Name: jsii.String("ServiceName"), Value: dims["ServiceName"]},
				},
			},
			Stat: jsii.String("Average"),
		},
		ReturnData: jsii.Bool(false),
	})
	using["tasks"] = awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("ECS/ContainerInsights"), MetricName: jsii.String("RunningTaskCount"),
		DimensionsMap: &dims, Statistic: jsii.String("Average"),
	})
	expr := fmt.Sprintf("(%s) / IF(tasks > 0, tasks, 1)", strings.Join(sum, " + "))
	queries = append(queries, &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingMetricDataQueryProperty{
		Id: jsii.String("flowsPerTask"), Expression: jsii.String(expr), Label: jsii.String("active flows per relay task"), ReturnData: jsii.Bool(true),
	})
	awsapplicationautoscaling.NewCfnScalingPolicy(f.Construct, jsii.String("ScaleOnFlowsPerTask"), &awsapplicationautoscaling.CfnScalingPolicyProps{
		PolicyName:      jsii.String(*awscdk.Names_UniqueId(f.Construct) + "FlowsPerTask"),
		PolicyType:      jsii.String("TargetTrackingScaling"),
		ScalingTargetId: target.ScalableTargetId(),
		TargetTrackingScalingPolicyConfiguration: &awsapplicationautoscaling.CfnScalingPolicy_TargetTrackingScalingPolicyConfigurationProperty{
			TargetValue:      jsii.Number(targetConns),
			ScaleInCooldown:  jsii.Number(300),
			ScaleOutCooldown: jsii.Number(60),
			CustomizedMetricSpecification: &awsapplicationautoscaling.CfnScalingPolicy_CustomizedMetricSpecificationProperty{
				Metrics: &queries,
			},
		},
	})
	f.flows = awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(expr), UsingMetrics: &using, Label: jsii.String("active flows per relay task"),
	})
}

func (f *fleet) Cluster() awsecs.Cluster                      { return f.cluster }
func (f *fleet) Service() awsecs.FargateService               { return f.service }
func (f *fleet) TaskDefinition() awsecs.FargateTaskDefinition { return f.task }
func (f *fleet) LogGroup() awslogs.ILogGroup                  { return f.logs }
func (f *fleet) Connections() awsec2.Connections              { return f.service.Connections() }
func (f *fleet) MetricFlowsPerTask() awscloudwatch.IMetric    { return f.flows }
func (f *fleet) Environment() map[string]*string {
	out := make(map[string]*string, len(f.env))
	for k, v := range f.env {
		out[k] = v
	}
	return out
}

func (f *fleet) FleetName() *string { return jsii.String(f.fleetName) }

func (f *fleet) MetricRejects(opts *awscloudwatch.MetricOptions) awscloudwatch.Metric {
	p := awscloudwatch.MetricProps{
		Namespace: jsii.String(RejectsMetricNamespace), MetricName: jsii.String(RejectsMetricName), Statistic: jsii.String("Sum"),
		DimensionsMap: &map[string]*string{RejectsFleetDimension: jsii.String(f.fleetName)},
	}
	if opts != nil {
		if opts.Statistic != nil {
			p.Statistic = opts.Statistic
		}
		p.Period, p.Label = opts.Period, opts.Label
	}
	return awscloudwatch.NewMetric(&p)
}

func (f *fleet) MetricCPUUtilization(opts *awscloudwatch.MetricOptions) awscloudwatch.Metric {
	return f.service.MetricCpuUtilization(opts)
}
