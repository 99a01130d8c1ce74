package capacity

import "math"

// Footprint is what one fleet deploys that costs money.
type Footprint struct {
	// Name names the fleet in the report.
	Name string
	// Zones, StaticIPs and NATGateways: the network's shape; the fleet has
	// StaticIPs / Zones load balancers.
	Zones, StaticIPs, NATGateways int
	// InterfaceEndpoints are the fleet VPC's interface endpoints (iot.data
	// and iot.credentials), each with one network interface per zone.
	InterfaceEndpoints int
	// MinTasks, MaxTasks and TargetConnsPerTask size the relay service.
	MinTasks, MaxTasks, TargetConnsPerTask int
	// CPU (units) and MemoryMiB of one task.
	CPU, MemoryMiB int
	// Alarms and Dashboards are the CloudWatch alarms and dashboards the
	// fleet's stacks create.
	Alarms, Dashboards int
	// HealthChecks are the Route 53 health checks of its static IPs, each
	// HTTPS with a 10 s interval (two optional features).
	HealthChecks int
}

// AlarmsPerFleet is the CloudWatch alarms agentgate's stacks create for a
// fleet with staticIPs static IPs: its edge stack's two per static IP (no
// healthy target, unhealthy targets) plus active flows and relay rejects,
// its control plane's errors and dead-letter alarms of both publisher
// Lambdas, its data plane's telemetry dead-letter alarm, and the DNS alarms
// stack's one per health check (one per static IP). The stacks' tests count
// the synthesized alarms against it.
func AlarmsPerFleet(staticIPs int) int { return 2*staticIPs + 2 + 4 + 1 + staticIPs }

// InterfaceEndpointsPerFleet is the interface VPC endpoints of a fleet's
// network (iot.data and iot.credentials), each with a network interface
// per zone; the stacks' tests count them, and the NAT gateways (one per
// zone), load balancers (staticIpCount / zones) and health checks (one per
// static IP) the report prices.
const InterfaceEndpointsPerFleet = 2

// Dashboards agentgate's stacks create: one per fleet (its edge stack's)
// and the DNS alarms stack's one.
const (
	DashboardsPerFleet = 1
	DNSDashboards      = 1
)

// Usage is what the agents do, as the report states it.
type Usage struct {
	// MessagesPerAgentHour is MQTT messages each agent exchanges an hour
	// (metered in 5 KB units: one each up to 5 KB).
	MessagesPerAgentHour float64
	// MessageBytes is one message's size on the wire, for data processed.
	MessageBytes float64
	// NewFlowsPerAgentHour is new connections through the load balancer
	// per agent an hour (credentials refreshes, reconnects).
	NewFlowsPerAgentHour float64
}

// Line is one priced item of a month.
type Line struct {
	// Item names it, Qty and Unit say how much.
	Item string
	Qty  float64
	Unit string
	// USD is the month's cost.
	USD float64
}

// Tasks is how many relay tasks carry agents at the scaling target: at
// least MinTasks. It may exceed MaxTasks: the report then says the fleet
// cannot carry them.
func (f Footprint) Tasks(agents int) int {
	if f.TargetConnsPerTask <= 0 {
		return f.MinTasks
	}
	return max(f.MinTasks, ceilDiv(agents, f.TargetConnsPerTask))
}

// Monthly prices one fleet carrying agents for a month (HoursPerMonth).
func (f Footprint) Monthly(agents int, u Usage) []Line {
	h := float64(HoursPerMonth)
	tasks := float64(f.Tasks(agents))
	vcpu, gb := float64(f.CPU)/1024, float64(f.MemoryMiB)/1024
	nlbs := float64(f.StaticIPs / max(f.Zones, 1))
	// Per load balancer and hour: active flows, new flows/s, GB.
	a := float64(agents) / math.Max(nlbs, 1)
	gbPerHour := a * u.MessagesPerAgentHour * u.MessageBytes / 1e9
	nlcu := math.Max(a/NLCUActiveFlows, math.Max(a*u.NewFlowsPerAgentHour/3600/NLCUNewFlowsPerSec, gbPerHour/NLCUGBPerHour))
	endpointGB := float64(agents) * u.MessagesPerAgentHour * u.MessageBytes / 1e9 * h
	hcOptions := 2.0
	return []Line{
		{"Fargate vCPU", tasks * vcpu * h, "vCPU-hours", tasks * vcpu * h * PriceOf(FargateVCPUHour)},
		{"Fargate memory", tasks * gb * h, "GB-hours", tasks * gb * h * PriceOf(FargateGBHour)},
		{"NLB hours", nlbs * h, "hours", nlbs * h * PriceOf(NLBHour)},
		{"NLB capacity units", nlbs * nlcu * h, "NLCU-hours", nlbs * nlcu * h * PriceOf(NLCUHour)},
		{"NAT gateways", float64(f.NATGateways) * h, "hours", float64(f.NATGateways) * h * PriceOf(NATHour)},
		{"Interface endpoints", float64(f.InterfaceEndpoints*f.Zones) * h, "endpoint-AZ-hours", float64(f.InterfaceEndpoints*f.Zones) * h * PriceOf(EndpointAZHour)},
		{"Interface endpoint data", endpointGB, "GB", endpointGB * PriceOf(EndpointGB)},
		{"Public IPv4", float64(f.StaticIPs+f.NATGateways) * h, "IP-hours", float64(f.StaticIPs+f.NATGateways) * h * PriceOf(PublicIPv4Hour)},
		{"Route 53 health checks", float64(f.HealthChecks), "checks", float64(f.HealthChecks) * (PriceOf(HealthCheck) + hcOptions*PriceOf(HealthCheckOption))},
		{"CloudWatch alarms", float64(f.Alarms), "alarms", float64(f.Alarms) * PriceOf(AlarmMonth)},
		{"CloudWatch dashboards", float64(f.Dashboards), "dashboards", float64(f.Dashboards) * PriceOf(DashboardMonth)},
	}
}

// IoTMonthly prices IoT Core for agents connected all month: connection
// minutes and messages (tiered per account).
func IoTMonthly(agents int, u Usage) []Line {
	minutes := float64(agents) * HoursPerMonth * 60
	msgs := float64(agents) * u.MessagesPerAgentHour * HoursPerMonth
	return []Line{
		{"IoT Core connectivity", minutes, "connection-minutes", minutes / 1e6 * PriceOf(IoTMinutes)},
		{"IoT Core messaging", msgs, "messages", MessagingUSD(msgs)},
	}
}

// MessagingUSD is the month's IoT Core messaging charge for msgs messages:
// the first billion at tier 1, the next four at tier 2, the rest at tier 3.
func MessagingUSD(msgs float64) float64 {
	t1 := math.Min(msgs, 1e9)
	t2 := math.Min(math.Max(msgs-1e9, 0), 4e9)
	t3 := math.Max(msgs-5e9, 0)
	return (t1*PriceOf(IoTMessagesTier1) + t2*PriceOf(IoTMessagesTier2) + t3*PriceOf(IoTMessagesTier3)) / 1e6
}

// Sum adds lines' USD.
func Sum(lines []Line) float64 {
	s := 0.0
	for _, l := range lines {
		s += l.USD
	}
	return s
}
