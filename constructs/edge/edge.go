// Package edge provides the internet-facing side of a relay fleet: Network
// Load Balancers whose subnet mappings carry the fleet's static Elastic IPs,
// one TCP 443 listener each, and the target groups the relay tasks join.
//
// Design rules the construct enforces:
//
//   - One allocation per zone per load balancer. With k × zones allocation
//     IDs it creates k load balancers (an NLB takes at most one EIP per
//     subnet), so every static IP is a real NLB node.
//   - Cross-zone load balancing is off, so the health of each static IP (an
//     NLB node in one zone) reflects the targets of that zone only and a
//     per-IP Route 53 health check can take exactly that IP out of DNS.
//   - The TCP idle timeout is set deliberately and checked against the one
//     timeout rule of package timing (keep-alive < relay idle < NLB idle).
//   - The security group admits TCP 443 from anywhere (agents are
//     anywhere) and nothing else.
//   - Targets receive a PROXY protocol v2 header (the relay needs the agent's
//     address for per-source limits and logs) and are health-checked over
//     HTTP on the relay's admin port; with proxy protocol on, those checks
//     carry a PROXY v2 LOCAL header too.
//   - A target that fails its health checks is not reset at once: connection
//     termination for unhealthy targets is off and the target stays
//     "unhealthy.draining" (no new connections, open ones kept) for
//     UnhealthyDrainingIntervalSec, so a relay that turns unready while
//     registered closes its thousands of agent connections itself, paced,
//     instead of the load balancer resetting them all at once (NLB user
//     guide, "Edit target group attributes for your Network Load Balancer"
//     → "Connection termination for unhealthy targets" and "Unhealthy
//     draining interval"; the default, termination on, "sends a TCP RST for
//     packets received on the client connections associated with the
//     target": "Health checks for Network Load Balancer target groups").
package edge

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/timing"
)

// ListenerPort is the port agents connect to.
const ListenerPort = 443

// DefaultDeregistrationDelaySec is the target group's deregistration delay
// when Props.DeregistrationDelaySec is unset: the Fargate maximum stop
// timeout, so a draining relay is never cut off by the load balancer first.
const DefaultDeregistrationDelaySec = 120

// MaxUnhealthyDrainingIntervalSec is the largest
// target_health_state.unhealthy.draining_interval_seconds the load balancer
// takes (Elastic Load Balancing API reference, TargetGroupAttribute: "The
// range is 0-360000 seconds").
const MaxUnhealthyDrainingIntervalSec = 360000

// Props configures an Edge.
type Props struct {
	// Vpc holds the load balancers (public subnets) and the targets. Required.
	Vpc awsec2.IVpc
	// AllocationIDs are the Elastic IP allocation IDs, in order. Required.
	// Their count must be a multiple of the zone count of Subnets: address i
	// goes to load balancer i / zones, zone i mod zones.
	AllocationIDs *[]*string
	// Subnets are the public subnets, one per zone, in zone order.
	// Default: the VPC's public subnets.
	Subnets *awsec2.SubnetSelection
	// IdleTimeoutSec is the TCP listeners' idle timeout.
	// Default: timing.DefaultNLBIdleTimeout (400 s).
	IdleTimeoutSec *float64
	// RelayIdleTimeoutSec is the relay's idle timeout, checked against
	// IdleTimeoutSec. Default: timing.DefaultRelayIdleTimeout (360 s).
	RelayIdleTimeoutSec *float64
	// MQTTKeepAliveSec is the agents' keep-alive, checked against the relay's
	// idle timeout. Default: timing.DefaultMQTTKeepAlive (60 s).
	MQTTKeepAliveSec *float64
	// DeregistrationDelaySec is how long a deregistered target keeps its
	// connections before the load balancer forgets it; at least the relay's
	// drain budget. Default: DefaultDeregistrationDelaySec (120 s).
	DeregistrationDelaySec *float64
	// UnhealthyDrainingIntervalSec is how long a target that fails its
	// health checks while registered keeps its open connections (state
	// "unhealthy.draining", no new ones) before the load balancer resets
	// them; connection termination for unhealthy targets is off, which the
	// load balancer requires for this interval. At least the relay's drain
	// budget, so a relay that turned unready on SIGTERM has closed its
	// connections itself by then. 0..MaxUnhealthyDrainingIntervalSec.
	// Default: relayspec.TargetUnhealthyDrainingIntervalSeconds (110 s, the
	// relay's default drain budget).
	UnhealthyDrainingIntervalSec *float64
	// TargetPort is the relay's agent port. Default: relayspec.ListenPort.
	TargetPort *float64
	// HealthCheckPort is the relay's admin port. Default: relayspec.AdminPort.
	HealthCheckPort *float64
	// HealthCheckPath is the readiness path on HealthCheckPort.
	// Default: relayspec.ReadyPath ("/readyz").
	HealthCheckPath *string
}

// Edge is a set of internet-facing Network Load Balancers carrying static
// IPs. It satisfies relayfleet.Edge: pass it as relayfleet.Props.Edge.
type Edge interface {
	constructs.Construct
	// LoadBalancers are the NLBs, in allocation order.
	LoadBalancers() []elbv2.NetworkLoadBalancer
	// TargetGroups are the relay target groups, one per load balancer.
	TargetGroups() []elbv2.INetworkTargetGroup
	// LoadBalancerFullNames are the load balancers' full names (the
	// "LoadBalancer" dimension of their metrics), in allocation order.
	LoadBalancerFullNames() []*string
	// Listeners are the TCP 443 listeners, one per load balancer.
	Listeners() []elbv2.NetworkListener
	// Zones are the availability zones of the subnet mappings, in order.
	Zones() []*string
	// IdleTimeoutSec is the listeners' TCP idle timeout.
	IdleTimeoutSec() float64
	// DeregistrationDelaySec is the target groups' deregistration delay.
	DeregistrationDelaySec() float64
	// UnhealthyDrainingIntervalSec is how long the target groups keep an
	// unhealthy target's connections before resetting them.
	UnhealthyDrainingIntervalSec() float64
	// Connections is the load balancers' shared security group.
	Connections() awsec2.Connections
	// MetricActiveFlows is the sum of active flows over every load balancer.
	MetricActiveFlows(opts *awscloudwatch.MetricOptions) awscloudwatch.IMetric
	// MetricZone returns a target-group metric (e.g. "UnHealthyHostCount",
	// "HealthyHostCount") of load balancer lb in one zone.
	MetricZone(lb int, zone *string, metricName string, opts *awscloudwatch.MetricOptions) awscloudwatch.Metric
	// MetricLoadBalancer returns a load-balancer metric (e.g.
	// "TCP_Target_Reset_Count") of load balancer lb.
	MetricLoadBalancer(lb int, metricName string, opts *awscloudwatch.MetricOptions) awscloudwatch.Metric
}

type edge struct {
	constructs.Construct
	lbs       []elbv2.NetworkLoadBalancer
	tgs       []elbv2.NetworkTargetGroup
	listeners []elbv2.NetworkListener
	zones     []*string
	idle      float64
	dereg     float64
	draining  float64
	conns     awsec2.Connections
}

func num(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

func whole(v float64) bool { return v == float64(int64(v)) }

// New creates the load balancers. It panics on misuse: no VPC, an
// allocation count that is not a multiple of the zones, a timeout breaking
// the timing rule, a deregistration delay outside 0..3600 s or an unhealthy
// draining interval outside 0..360000 s.
func New(scope constructs.Construct, id *string, props *Props) Edge {
	if props == nil || props.Vpc == nil {
		panic("edge: Vpc is required")
	}
	if props.AllocationIDs == nil || len(*props.AllocationIDs) == 0 {
		panic("edge: AllocationIDs is required: the static IPs' EIP allocation IDs, one per zone per load balancer")
	}
	idle := num(props.IdleTimeoutSec, timing.DefaultNLBIdleTimeout.Seconds())
	relayIdle := num(props.RelayIdleTimeoutSec, timing.DefaultRelayIdleTimeout.Seconds())
	keep := num(props.MQTTKeepAliveSec, timing.DefaultMQTTKeepAlive.Seconds())
	if !whole(idle) || !whole(relayIdle) || !whole(keep) {
		panic(fmt.Sprintf("edge: timeouts must be whole seconds (IdleTimeoutSec %v, RelayIdleTimeoutSec %v, MQTTKeepAliveSec %v)", idle, relayIdle, keep))
	}
	sec := func(v float64) time.Duration { return time.Duration(v) * time.Second }
	if err := timing.CheckRule(sec(keep), sec(relayIdle), sec(idle)); err != nil {
		panic(fmt.Sprintf("edge: timeouts break the rule 1.5 × keep-alive < relay idle < NLB idle ≤ 6000 s (MQTTKeepAliveSec %v, RelayIdleTimeoutSec %v, IdleTimeoutSec %v): %v", keep, relayIdle, idle, err))
	}
	dereg := num(props.DeregistrationDelaySec, DefaultDeregistrationDelaySec)
	if dereg < 0 || dereg > 3600 || !whole(dereg) {
		panic(fmt.Sprintf("edge: DeregistrationDelaySec %v must be whole seconds from 0 to 3600", dereg))
	}
	draining := num(props.UnhealthyDrainingIntervalSec, relayspec.TargetUnhealthyDrainingIntervalSeconds)
	if draining < 0 || draining > MaxUnhealthyDrainingIntervalSec || !whole(draining) {
		panic(fmt.Sprintf("edge: UnhealthyDrainingIntervalSec %v must be whole seconds from 0 to %d", draining, MaxUnhealthyDrainingIntervalSec))
	}
	sel := props.Subnets
	if sel == nil {
		sel = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PUBLIC}
	}
	subnets := *props.Vpc.SelectSubnets(sel).Subnets
	zones := len(subnets)
	allocs := *props.AllocationIDs
	if zones == 0 || len(allocs)%zones != 0 {
		panic(fmt.Sprintf("edge: %d allocation IDs for %d zones; give a multiple of the zone count (one per zone per load balancer)", len(allocs), zones))
	}
	if n := len(allocs) / zones; n > 5 {
		panic(fmt.Sprintf("edge: %d load balancers requested; an ECS service can join at most 5 target groups", n))
	}
	targetPort := num(props.TargetPort, relayspec.ListenPort)
	healthPort := num(props.HealthCheckPort, relayspec.AdminPort)
	healthPath := relayspec.ReadyPath
	if props.HealthCheckPath != nil {
		healthPath = *props.HealthCheckPath
	}

	this := constructs.NewConstruct(scope, id)
	e := &edge{Construct: this, idle: idle, dereg: dereg, draining: draining}
	for _, s := range subnets {
		e.zones = append(e.zones, s.AvailabilityZone())
	}
	sg := awsec2.NewSecurityGroup(this, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              props.Vpc,
		Description:      jsii.String("agentgate edge NLB: TCP 443 from anywhere (agents), to the relay tasks only"),
		AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddIngressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(ListenerPort)), jsii.String("agents anywhere on the internet"), nil)
	e.conns = awsec2.NewConnections(&awsec2.ConnectionsProps{SecurityGroups: &[]awsec2.ISecurityGroup{sg}})

	for i := 0; i < len(allocs)/zones; i++ {
		// The first load balancer's ID is "Resource" (the construct's main
		// child); the others are numbered. Renaming them replaces the NLB.
		lbID, n := "Resource", ""
		if i > 0 {
			n = fmt.Sprint(i + 1)
			lbID = "LoadBalancer" + n
		}
		var mappings []*elbv2.SubnetMapping
		for z, s := range subnets {
			mappings = append(mappings, &elbv2.SubnetMapping{Subnet: s, AllocationId: allocs[i*zones+z]})
		}
		lb := elbv2.NewNetworkLoadBalancer(this, jsii.String(lbID), &elbv2.NetworkLoadBalancerProps{
			Vpc:              props.Vpc,
			InternetFacing:   jsii.Bool(true),
			SubnetMappings:   &mappings,
			CrossZoneEnabled: jsii.Bool(false),
			SecurityGroups:   &[]awsec2.ISecurityGroup{sg},
		})
		tg := elbv2.NewNetworkTargetGroup(this, jsii.String("Targets"+n), &elbv2.NetworkTargetGroupProps{
			Vpc:                   props.Vpc,
			Port:                  jsii.Number(targetPort),
			Protocol:              elbv2.Protocol_TCP,
			TargetType:            elbv2.TargetType_IP,
			ProxyProtocolV2:       jsii.Bool(true),
			DeregistrationDelay:   awscdk.Duration_Seconds(jsii.Number(dereg)),
			ConnectionTermination: jsii.Bool(false),
			PreserveClientIp:      jsii.Bool(false),
			HealthCheck: &elbv2.HealthCheck{
				Protocol:                elbv2.Protocol_HTTP,
				Port:                    jsii.String(fmt.Sprint(healthPort)),
				Path:                    jsii.String(healthPath),
				Interval:                awscdk.Duration_Seconds(jsii.Number(relayspec.TargetHealthCheckIntervalSeconds)),
				Timeout:                 awscdk.Duration_Seconds(jsii.Number(relayspec.TargetHealthCheckTimeoutSeconds)),
				HealthyThresholdCount:   jsii.Number(relayspec.TargetHealthyThresholdCount),
				UnhealthyThresholdCount: jsii.Number(relayspec.TargetUnhealthyThresholdCount),
				HealthyHttpCodes:        jsii.String(relayspec.TargetHealthyHTTPCodes),
			},
		})
		// No L2 property for these yet; the attribute names are the API's.
		tg.SetAttribute(jsii.String("target_health_state.unhealthy.connection_termination.enabled"), jsii.String("false"))
		tg.SetAttribute(jsii.String("target_health_state.unhealthy.draining_interval_seconds"), jsii.String(fmt.Sprint(draining)))
		l := lb.AddListener(jsii.String("Tcp443"), &elbv2.BaseNetworkListenerProps{
			Port:                jsii.Number(ListenerPort),
			Protocol:            elbv2.Protocol_TCP,
			TcpIdleTimeout:      awscdk.Duration_Seconds(jsii.Number(idle)),
			DefaultTargetGroups: &[]elbv2.INetworkTargetGroup{tg},
		})
		e.lbs = append(e.lbs, lb)
		e.tgs = append(e.tgs, tg)
		e.listeners = append(e.listeners, l)
	}
	return e
}

func (e *edge) LoadBalancers() []elbv2.NetworkLoadBalancer {
	return append([]elbv2.NetworkLoadBalancer(nil), e.lbs...)
}
func (e *edge) TargetGroups() []elbv2.INetworkTargetGroup {
	out := make([]elbv2.INetworkTargetGroup, len(e.tgs))
	for i, tg := range e.tgs {
		out[i] = tg
	}
	return out
}
func (e *edge) LoadBalancerFullNames() []*string {
	out := make([]*string, len(e.lbs))
	for i, lb := range e.lbs {
		out[i] = lb.LoadBalancerFullName()
	}
	return out
}
func (e *edge) Listeners() []elbv2.NetworkListener {
	return append([]elbv2.NetworkListener(nil), e.listeners...)
}
func (e *edge) Zones() []*string                      { return append([]*string(nil), e.zones...) }
func (e *edge) IdleTimeoutSec() float64               { return e.idle }
func (e *edge) DeregistrationDelaySec() float64       { return e.dereg }
func (e *edge) UnhealthyDrainingIntervalSec() float64 { return e.draining }
func (e *edge) Connections() awsec2.Connections       { return e.conns }

func (e *edge) MetricActiveFlows(opts *awscloudwatch.MetricOptions) awscloudwatch.IMetric {
	if len(e.lbs) == 1 {
		return e.MetricLoadBalancer(0, "ActiveFlowCount", withStat(opts, "Average"))
	}
	using := map[string]awscloudwatch.IMetric{}
	expr := ""
	for i := range e.lbs {
		k := fmt.Sprintf("f%d", i+1)
		using[k] = e.MetricLoadBalancer(i, "ActiveFlowCount", withStat(opts, "Average"))
		if expr != "" {
			expr += " + "
		}
		expr += k
	}
	label := "active flows (all load balancers)"
	if opts != nil && opts.Label != nil {
		label = *opts.Label
	}
	var period awscdk.Duration
	if opts != nil {
		period = opts.Period
	}
	return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String(expr), UsingMetrics: &using, Label: jsii.String(label), Period: period,
	})
}

func withStat(opts *awscloudwatch.MetricOptions, stat string) *awscloudwatch.MetricOptions {
	o := awscloudwatch.MetricOptions{}
	if opts != nil {
		o = *opts
	}
	if o.Statistic == nil {
		o.Statistic = jsii.String(stat)
	}
	return &o
}

func (e *edge) MetricZone(lb int, zone *string, metricName string, opts *awscloudwatch.MetricOptions) awscloudwatch.Metric {
	o := withStat(opts, "Maximum")
	o.DimensionsMap = &map[string]*string{
		"LoadBalancer":     e.lbs[lb].LoadBalancerFullName(),
		"TargetGroup":      e.tgs[lb].TargetGroupFullName(),
		"AvailabilityZone": zone,
	}
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/NetworkELB"), MetricName: jsii.String(metricName),
		DimensionsMap: o.DimensionsMap, Statistic: o.Statistic, Period: o.Period, Label: o.Label,
	})
}

func (e *edge) MetricLoadBalancer(lb int, metricName string, opts *awscloudwatch.MetricOptions) awscloudwatch.Metric {
	o := withStat(opts, "Sum")
	return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/NetworkELB"), MetricName: jsii.String(metricName),
		DimensionsMap: &map[string]*string{"LoadBalancer": e.lbs[lb].LoadBalancerFullName()},
		Statistic:     o.Statistic, Period: o.Period, Label: o.Label,
	})
}
