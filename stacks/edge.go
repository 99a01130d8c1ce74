package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/alarmtopic"
	"github.com/agentgate/agentgate/constructs/edge"
	"github.com/agentgate/agentgate/constructs/endpointdiscovery"
	"github.com/agentgate/agentgate/constructs/network"
	"github.com/agentgate/agentgate/constructs/relayfleet"
	"github.com/agentgate/agentgate/constructs/staticips"
	"github.com/agentgate/agentgate/internal/deploy/capacity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// EdgeStackProps configures an EdgeStack.
type EdgeStackProps struct {
	awscdk.StackProps
	// Fleet sizes the relay and the load balancers.
	Fleet deployconfig.Fleet
	// MQTTKeepAliveSec is the agents' keep-alive (topics.mqttKeepAliveSec), checked by the timing rule.
	MQTTKeepAliveSec int
	// HealthSNI is the server name the relay answers health checks for (dns.healthSni).
	HealthSNI string
	// Network is the fleet's VPC and IoT endpoints (network stack).
	Network network.Network
	// StaticIPs are the fleet's Elastic IPs (addresses stack).
	StaticIPs staticips.StaticIPs
	// ArtifactsBucket, when set, adds the bucket's regional S3 host to the
	// relay's routes (SNI = upstream = "<bucket>.s3.<region>.amazonaws.com").
	// Optional until the control-plane stack exists.
	ArtifactsBucket awss3.IBucket
	// OtherFleets are the deployment's other fleets. DNS may send any
	// fleet's agents here (a standby takes traffic when every active IP
	// fails), and an agent presents its home fleet's IoT endpoint names, so
	// the relay routes every fleet's data and credentials endpoints: this
	// region's through the VPC interface endpoints, another region's to its
	// public names on 443 (through NAT), looked up at deploy time once per
	// region. They must be in this fleet's account. Optional.
	OtherFleets []deployconfig.Fleet
	// ExtraRoutes are added to the relay's routes as given. Optional.
	ExtraRoutes []*relayfleet.Route
	// AlarmEmails are subscribed to the fleet's alarm topic (alarms.email).
	AlarmEmails []string
	// Rollout is the relay service's rolling-deployment percentages and the
	// relay's drain budget, derived from the fleet's size and the reconnect
	// budget (deployconfig.Config.Rollout). Zero: the construct's defaults
	// (100/200, relayspec.DefaultDrainTimeoutSeconds).
	Rollout capacity.Deploy
}

// EdgeStack is one fleet's load balancers, relay service and their alarms.
// It holds nothing stateful: replacing it cannot change the static IPs,
// which live in the addresses stack and are only referenced here.
type EdgeStack struct {
	awscdk.Stack
	// Edge is the NLBs with the static IPs.
	Edge edge.Edge
	// Relay is the relay service.
	Relay relayfleet.RelayFleet
	// Endpoints are the discovered IoT endpoint names of this fleet's region.
	Endpoints endpointdiscovery.Discovery
	// PeerEndpoints are those of the other fleets' regions, one per region.
	PeerEndpoints []endpointdiscovery.Discovery
	// Alarms is the fleet's alarm topic.
	Alarms alarmtopic.AlarmTopic
}

// Alarm thresholds of the edge stack.
const (
	// CapacityAlarmFraction of MaxTasks × MaxConnsPerTask active flows
	// raises the capacity alarm: scaling is near its ceiling.
	CapacityAlarmFraction = 0.8
	// RejectsAlarmPer5Min is how many logged rejects in 5 minutes raise the
	// rejects alarm (floods, which the relay logs at debug level, are not
	// in this count).
	RejectsAlarmPer5Min = 100
)

// NewEdgeStack creates the edge stack of one fleet.
func NewEdgeStack(scope constructs.Construct, id string, props *EdgeStackProps) *EdgeStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	// Same-region references to the network and addresses stacks are read
	// with Fn::GetStackOutput, as cdk.json sets app-wide; pinned here so
	// unit tests (which do not read cdk.json) synthesize the same template.
	awscdk.CrossStackReferences_Of(stack).Consume(awscdk.ReferenceStrength_WEAK)
	f := props.Fleet
	r := f.Relay
	allocs := props.StaticIPs.AllocationIDs()

	e := edge.New(stack, jsii.String("Edge"), &edge.Props{
		Vpc:                 props.Network.Vpc(),
		AllocationIDs:       &allocs,
		IdleTimeoutSec:      jsii.Number(float64(r.NLBIdleTimeoutSec)),
		RelayIdleTimeoutSec: jsii.Number(float64(r.IdleTimeoutSec)),
		MQTTKeepAliveSec:    jsii.Number(float64(props.MQTTKeepAliveSec)),
		// The Fargate maximum stop timeout: a deregistered task keeps its
		// connections until the relay has drained them itself.
		DeregistrationDelaySec: jsii.Number(relayfleet.MaxStopTimeoutSec),
	})
	endpoints := endpointdiscovery.New(stack, jsii.String("IotEndpoints"), nil)
	peers := peerEndpoints(stack, f, props.OtherFleets, props.Network)
	routes := relayRoutes(endpoints, peers, props.Network, props.ArtifactsBucket, props.ExtraRoutes)
	var minHealthy, maxHealthy, drain *float64
	if d := props.Rollout; d != (capacity.Deploy{}) {
		minHealthy, maxHealthy = jsii.Number(float64(d.MinHealthyPercent)), jsii.Number(float64(d.MaximumPercent))
		drain = jsii.Number(float64(d.DrainTimeoutSec))
	}
	relay := relayfleet.New(stack, jsii.String("Relay"), &relayfleet.Props{
		Vpc:                props.Network.Vpc(),
		Edge:               e,
		FleetName:          jsii.String(f.Name),
		Routes:             &routes,
		HealthSNI:          jsii.String(props.HealthSNI),
		TrustedCidrs:       &[]*string{jsii.String(f.VPCCIDR)},
		MQTTKeepAliveSec:   jsii.Number(float64(props.MQTTKeepAliveSec)),
		IdleTimeoutSec:     jsii.Number(float64(r.IdleTimeoutSec)),
		MinTasks:           jsii.Number(float64(r.MinTasks)),
		MaxTasks:           jsii.Number(float64(r.MaxTasks)),
		MaxConnsPerTask:    jsii.Number(float64(r.MaxConnsPerTask)),
		MaxConnsPerSource:  jsii.Number(float64(r.MaxConnsPerSource)),
		TargetConnsPerTask: jsii.Number(float64(r.TargetConnsPerTask)),
		Cpu:                jsii.Number(float64(r.CPU)),
		MemoryMiB:          jsii.Number(float64(r.MemoryMiB)),
		MinHealthyPercent:  minHealthy,
		MaxHealthyPercent:  maxHealthy,
		DrainTimeoutSec:    drain,
	})
	// The relay dials the IoT interface endpoints, which admit nobody by
	// default. The rules live in this stack, so the network stack never
	// depends on this one, under IDs this stack names
	// (IotEndpointsFromRelay<i><j>): renumbering them would replace rules
	// that describe the same EC2 permission.
	props.Network.AllowEndpointsFrom(stack, jsii.String("IotEndpointsFromRelay"), relay, jsii.String("agentgate relay "+f.Name+" to the IoT interface endpoints"))
	topic := alarmtopic.New(stack, jsii.String("AlarmTopic"), &alarmtopic.Props{
		DisplayName:    jsii.String("agentgate " + f.Name + " edge alarms"),
		EmailAddresses: emails(props.AlarmEmails),
	})
	edgeAlarms(stack, f, e, relay, topic)
	suppressEdgeFindings(stack, e, relay, append([]endpointdiscovery.Discovery{endpoints}, peers...))
	return &EdgeStack{Stack: stack, Edge: e, Relay: relay, Endpoints: endpoints, PeerEndpoints: peers, Alarms: topic}
}

// peerEndpoints looks up the IoT endpoints of the other fleets' regions,
// once per region. A fleet in this fleet's region (same account) has the
// same endpoints, which the own lookup already routes: no second route for
// one name. It panics on a fleet in another account (the lookup runs in
// this account; deployconfig refuses such configurations) and when the
// fleet subnets have no NAT (public endpoints are reached through it).
func peerEndpoints(stack awscdk.Stack, self deployconfig.Fleet, others []deployconfig.Fleet, n network.Network) []endpointdiscovery.Discovery {
	var out []endpointdiscovery.Discovery
	seen := map[string]bool{self.Region: true}
	for _, o := range others {
		if o.Account != self.Account {
			panic(fmt.Sprintf("stacks: fleet %s (account %s) must route fleet %s's IoT endpoints, but fleet %s is in account %s and the lookup runs in %s; put every fleet in one account (fleets[].account)", self.Name, self.Account, o.Name, o.Name, o.Account, self.Account))
		}
		if seen[o.Region] {
			continue
		}
		seen[o.Region] = true
		if len(*n.Vpc().PrivateSubnets()) == 0 {
			panic(fmt.Sprintf("stacks: fleet %s routes fleet %s's IoT endpoints in %s through NAT, but its fleet subnets have none; give the network NAT gateways", self.Name, o.Name, o.Region))
		}
		out = append(out, endpointdiscovery.New(stack, jsii.String("IotEndpoints-"+o.Region), &endpointdiscovery.Props{Region: jsii.String(o.Region)}))
	}
	return out
}

// relayRoutes maps each allowed SNI to its upstream: this region's IoT
// data and credentials endpoints to their interface VPC endpoints' own DNS
// names; other regions' (peers) to themselves on 443, through NAT (the
// relay SG's egress allows 443; interface endpoints serve only their own
// region); the artifacts bucket's S3 host to itself (reached through the
// S3 gateway endpoint, whose policy admits only its release objects); plus
// extras. Other fleets' artifacts buckets are not routed (docs/edge.md).
func relayRoutes(d endpointdiscovery.Discovery, peers []endpointdiscovery.Discovery, n network.Network, bucket awss3.IBucket, extra []*relayfleet.Route) []*relayfleet.Route {
	routes := []*relayfleet.Route{
		{SNI: d.DataEndpoint(), Upstream: jsii.String(*endpointdiscovery.EndpointDNSName(n.IotDataEndpoint()) + ":443")},
		{SNI: d.CredentialsEndpoint(), Upstream: jsii.String(*endpointdiscovery.EndpointDNSName(n.IotCredentialsEndpoint()) + ":443")},
	}
	for _, p := range peers {
		routes = append(routes,
			&relayfleet.Route{SNI: p.DataEndpoint(), Upstream: jsii.String(*p.DataEndpoint() + ":443")},
			&relayfleet.Route{SNI: p.CredentialsEndpoint(), Upstream: jsii.String(*p.CredentialsEndpoint() + ":443")},
		)
	}
	if bucket != nil {
		host := endpointdiscovery.BucketHost(bucket)
		routes = append(routes, &relayfleet.Route{SNI: host, Upstream: jsii.String(*host + ":443")})
	}
	return append(routes, extra...)
}

func edgeAlarms(stack awscdk.Stack, f deployconfig.Fleet, e edge.Edge, relay relayfleet.RelayFleet, topic alarmtopic.AlarmTopic) {
	action := awscloudwatchactions.NewSnsAction(topic.Topic())
	alarm := func(id string, m awscloudwatch.IMetric, opts *awscloudwatch.CreateAlarmOptions) awscloudwatch.Alarm {
		a := awscloudwatch.NewAlarm(stack, jsii.String(id), &awscloudwatch.AlarmProps{
			Metric: m, AlarmDescription: opts.AlarmDescription, Threshold: opts.Threshold,
			ComparisonOperator: opts.ComparisonOperator, EvaluationPeriods: opts.EvaluationPeriods,
			DatapointsToAlarm: opts.DatapointsToAlarm, TreatMissingData: opts.TreatMissingData,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		return a
	}
	minute := awscdk.Duration_Minutes(jsii.Number(1))
	var healthy, unhealthy []awscloudwatch.IMetric
	for lb := range e.LoadBalancers() {
		for z, zone := range e.Zones() {
			ip := lb*len(e.Zones()) + z + 1
			label := fmt.Sprintf("static IP %d (%s)", ip, *zone)
			// Alarms take the plain metric; the dashboard the labelled one.
			metric := func(name, stat string, label *string) awscloudwatch.Metric {
				return e.MetricZone(lb, zone, name, &awscloudwatch.MetricOptions{Statistic: jsii.String(stat), Period: minute, Label: label})
			}
			h, u := metric("HealthyHostCount", "Minimum", nil), metric("UnHealthyHostCount", "Maximum", nil)
			healthy = append(healthy, metric("HealthyHostCount", "Minimum", jsii.String(label)))
			unhealthy = append(unhealthy, metric("UnHealthyHostCount", "Maximum", jsii.String(label)))
			alarm(fmt.Sprintf("NoHealthyTarget%d", ip), h, &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String(fmt.Sprintf("fleet %s %s: no healthy relay task behind it (cross-zone is off), so Route 53 takes this IP out of DNS", f.Name, label)),
				Threshold:        jsii.Number(1), ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
				EvaluationPeriods: jsii.Number(2), TreatMissingData: awscloudwatch.TreatMissingData_BREACHING,
			})
			alarm(fmt.Sprintf("UnhealthyTargets%d", ip), u, &awscloudwatch.CreateAlarmOptions{
				AlarmDescription: jsii.String(fmt.Sprintf("fleet %s %s: relay tasks failing the load balancer's /readyz check for 3 minutes", f.Name, label)),
				Threshold:        jsii.Number(1), ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
				EvaluationPeriods: jsii.Number(3), TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
			})
		}
	}
	capacity := CapacityAlarmFraction * float64(f.Relay.MaxTasks*f.Relay.MaxConnsPerTask)
	flows := e.MetricActiveFlows(&awscloudwatch.MetricOptions{Period: minute})
	alarm("ActiveFlowsNearCapacity", flows, &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String(fmt.Sprintf("fleet %s: active flows above %.0f%% of maxTasks × maxConnsPerTask; raise relay.maxTasks", f.Name, CapacityAlarmFraction*100)),
		Threshold:        jsii.Number(capacity), ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods: jsii.Number(5), TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	rejects := relay.MetricRejects(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5))})
	alarm("RelayRejects", rejects, &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String(fmt.Sprintf("fleet %s: the relay refused over %d connections in 5 minutes (unknown or missing SNI, bad PROXY header, a source over relay.maxConnsPerSource, CONNECT denied...); see its JSON logs, msg=rejected", f.Name, RejectsAlarmPer5Min)),
		Threshold:        jsii.Number(RejectsAlarmPer5Min), ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods: jsii.Number(1), TreatMissingData: awscloudwatch.TreatMissingData_NOT_BREACHING,
	})

	var resets []awscloudwatch.IMetric
	for lb := range e.LoadBalancers() {
		for _, name := range []string{"TCP_Client_Reset_Count", "TCP_Target_Reset_Count", "TCP_ELB_Reset_Count"} {
			resets = append(resets, e.MetricLoadBalancer(lb, name, &awscloudwatch.MetricOptions{Period: minute, Label: jsii.String(fmt.Sprintf("NLB %d %s", lb+1, name))}))
		}
	}
	dash := awscloudwatch.NewDashboard(stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String(*stack.StackName()),
	})
	graph := func(title string, left []awscloudwatch.IMetric) awscloudwatch.GraphWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(12)})
	}
	dash.AddWidgets(
		graph("Active flows (all NLBs)", []awscloudwatch.IMetric{flows}),
		graph("Active flows per relay task (scaling metric)", []awscloudwatch.IMetric{relay.MetricFlowsPerTask()}),
	)
	dash.AddWidgets(
		graph("Healthy targets per static IP / zone", healthy),
		graph("Unhealthy targets per static IP / zone", unhealthy),
	)
	dash.AddWidgets(
		// A quiet period has no data point (the metric filter has a dimension,
		// so no default value): FILL draws it as 0 instead of a gap ("Using
		// math expressions with CloudWatch metrics"). The alarm keeps the raw
		// metric.
		graph("Relay rejects (logged, per 5 min)", []awscloudwatch.IMetric{awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
			Expression:   jsii.String("FILL(rejects, 0)"),
			UsingMetrics: &map[string]awscloudwatch.IMetric{"rejects": rejects},
			Label:        jsii.String("rejects"),
			Period:       awscdk.Duration_Minutes(jsii.Number(5)),
		})}),
		graph("TCP resets", resets),
	)
	dash.AddWidgets(graph("Relay CPU %", []awscloudwatch.IMetric{relay.MetricCPUUtilization(&awscloudwatch.MetricOptions{Period: minute})}))
}
