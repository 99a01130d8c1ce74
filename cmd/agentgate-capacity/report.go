package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/agentgate/agentgate/internal/deploy/capacity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// fleetReport is one fleet's part of the report.
type fleetReport struct {
	Fleet      deployconfig.Fleet
	Capacity   capacity.Fleet
	Deploy     capacity.Deploy
	Rolling    capacity.Storm
	ZoneLoss   capacity.Storm
	TaskKilled capacity.Storm
	MinSpread  float64 // seconds: the least agent reconnect spread that fits
	FullSec    float64
	Footprint  capacity.Footprint
	ShareOfDNS float64
}

// costColumn is the month's cost for one agent count.
type costColumn struct {
	Agents   int
	PerFleet [][]capacity.Line // in fleet order
	IoT      []capacity.Line
	Total    float64
	Over     []string // fleets that cannot carry their share
}

type report struct {
	Config  string
	Budget  capacity.Budget
	Fleets  []fleetReport
	Usage   capacity.Usage
	Columns []costColumn
}

func build(cfg *deployconfig.Config, counts []int, u capacity.Usage) (*report, error) {
	r := &report{Budget: cfg.Budget.Capacity(), Usage: u}
	weights := 0
	for _, f := range cfg.Fleets {
		weights += f.Weight
	}
	for i, f := range cfg.Fleets {
		d, err := cfg.Rollout(f)
		if err != nil {
			return nil, fmt.Errorf("fleet %s: %w", f.Name, err)
		}
		cf := cfg.CapacityFleet(f)
		dashboards := capacity.DashboardsPerFleet
		if i == 0 {
			dashboards += capacity.DNSDashboards // priced with the first fleet
		}
		r.Fleets = append(r.Fleets, fleetReport{
			Fleet: f, Capacity: cf, Deploy: d,
			Rolling: cf.RollingDeploy(d), ZoneLoss: cf.ZoneLoss(), TaskKilled: cf.TaskKilled(),
			MinSpread: cf.MinReconnectSpreadSec(r.Budget, capacity.AgentReconnect),
			FullSec:   cf.FullReconnectSec(r.Budget, capacity.AgentReconnect),
			Footprint: capacity.Footprint{
				Name: f.Name, Zones: len(f.AvailabilityZones), StaticIPs: f.StaticIPCount, NATGateways: len(f.AvailabilityZones),
				InterfaceEndpoints: capacity.InterfaceEndpointsPerFleet, MinTasks: f.Relay.MinTasks, MaxTasks: f.Relay.MaxTasks, TargetConnsPerTask: f.Relay.TargetConnsPerTask,
				CPU: f.Relay.CPU, MemoryMiB: f.Relay.MemoryMiB, Alarms: capacity.AlarmsPerFleet(f.StaticIPCount), Dashboards: dashboards, HealthChecks: f.StaticIPCount,
			},
			ShareOfDNS: float64(f.Weight) / float64(max(weights, 1)),
		})
	}
	for _, n := range counts {
		col := costColumn{Agents: n, IoT: capacity.IoTMonthly(n, u)}
		shares := split(n, r.Fleets)
		for i, fr := range r.Fleets {
			lines := fr.Footprint.Monthly(shares[i], u)
			col.PerFleet = append(col.PerFleet, lines)
			col.Total += capacity.Sum(lines)
			if shares[i] > fr.Capacity.Holdable() || fr.Footprint.Tasks(shares[i]) > fr.Footprint.MaxTasks {
				col.Over = append(col.Over, fmt.Sprintf("%s (%d agents need %d tasks; it holds %d on %d)", fr.Fleet.Name, shares[i], fr.Footprint.Tasks(shares[i]), fr.Capacity.Holdable(), fr.Footprint.MaxTasks))
			}
		}
		col.Total += capacity.Sum(col.IoT)
		r.Columns = append(r.Columns, col)
	}
	return r, nil
}

// split shares n agents over the fleets by DNS weight (standby fleets,
// weight 0, carry none); the rounding remainder goes to the first active
// fleet.
func split(n int, fleets []fleetReport) []int {
	out := make([]int, len(fleets))
	given, first := 0, -1
	for i, f := range fleets {
		out[i] = int(float64(n) * f.ShareOfDNS)
		given += out[i]
		if first < 0 && f.Fleet.Weight > 0 {
			first = i
		}
	}
	if first >= 0 {
		out[first] += n - given
	}
	return out
}

func (r *report) write(w io.Writer) {
	b := r.Budget
	fmt.Fprintf(w, "agentgate capacity and cost report: %s\n\n", r.Config)
	fmt.Fprintf(w, "Reconnect budget (per account and region): %.0f connects/s, %.0f subscriptions/s, %.0f credential calls/s\n", b.ConnectsPerSecond, b.SubscriptionsPerSecond, b.CredentialsPerSecond)
	c := capacity.AgentReconnect
	fmt.Fprintf(w, "One reconnect costs %.0f connect, %.0f subscriptions, %.0f credential call: at most %.1f reconnects/s.\n", c.Connects, c.Subscriptions, c.CredentialCalls, b.MaxReconnects(c))
	fmt.Fprintf(w, "Quotas: %s (subscription and credentials rates unverified); endpoint cap: %s (%d connections, unverified).\n\n", capacity.IoTQuotasURL, capacity.IoTVPCEndpointsURL, capacity.DataEndpointConnections)

	total := struct{ holds, expected int }{}
	for _, fr := range r.Fleets {
		f, cf, d := fr.Fleet, fr.Capacity, fr.Deploy
		total.holds += cf.Holdable()
		total.expected += f.ExpectedAgents
		fmt.Fprintf(w, "Fleet %s (%s, %d zones, DNS weight %d)\n", f.Name, f.Region, cf.Zones, f.Weight)
		line := func(label, format string, args ...any) {
			fmt.Fprintf(w, "  %-16s"+format+"\n", append([]any{label}, args...)...)
		}
		line("holds", "%d agents: relays %d tasks × %d = %d, iot.data endpoint %d × %d = %d", cf.Holdable(), f.Relay.MaxTasks, f.Relay.MaxConnsPerTask, cf.TaskConnections(), cf.DataEndpoints, capacity.DataEndpointConnections, cf.EndpointConnections())
		line("expected", "%d agents (fleets[].expectedAgents); the budget admits up to %d", f.ExpectedAgents, cf.MaxAgents(r.Budget, c))
		line("deployment", "minimumHealthyPercent %d, maximumPercent %d, relay drain %d s (closes spread over %.1f s)", d.MinHealthyPercent, d.MaximumPercent, d.DrainTimeoutSec, d.CloseWindowSec())
		line("rolling deploy", "%s", rates(r.Budget, fr.Rolling))
		line("", "%s", waves(fr.Rolling))
		line("zone loss", "%s", rates(r.Budget, fr.ZoneLoss))
		line("", "worst at %d tasks: %.0f agents of one zone back over one keep-alive (%.0f s)", fr.ZoneLoss.Tasks, fr.ZoneLoss.Agents, fr.ZoneLoss.SpreadSec)
		line("task killed", "%s", rates(r.Budget, fr.TaskKilled))
		line("", "%.0f agents of one task back over agentReconnectSpreadSec %.0f s; set your agents' --reconnect-spread to at least %.0f s", fr.TaskKilled.Agents, fr.TaskKilled.SpreadSec, math.Ceil(fr.MinSpread))
		line("full reconnect", "%.0f s: %d agents at the budget's %.1f reconnects/s", fr.FullSec, f.ExpectedAgents, b.MaxReconnects(c))
		fmt.Fprintln(w)
	}
	slowest := 0.0
	for _, fr := range r.Fleets {
		slowest = max(slowest, fr.FullSec)
	}
	fmt.Fprintf(w, "Total: holds %d agents, expects %d; every fleet's agents back at the budget within %.0f s (fleets are in different regions, each with its own quotas).\n\n", total.holds, total.expected, slowest)

	fmt.Fprintf(w, "Monthly cost, %s list prices of %s (%d h), every fleet priced at them; agents spread by DNS weight;\n", capacity.PriceRegion, capacity.PriceDate, capacity.HoursPerMonth)
	fmt.Fprintf(w, "each agent connected all month, %g messages an hour of %g bytes, %g new connections an hour.\n", r.Usage.MessagesPerAgentHour, r.Usage.MessageBytes, r.Usage.NewFlowsPerAgentHour)
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "item\t"
	for _, col := range r.Columns {
		head += fmt.Sprintf("%d agents\t", col.Agents)
	}
	fmt.Fprintln(t, head)
	for i, fr := range r.Fleets {
		for j, l := range r.Columns[0].PerFleet[i] {
			row := fmt.Sprintf("%s: %s\t", fr.Fleet.Name, l.Item)
			for _, col := range r.Columns {
				row += fmt.Sprintf("$%.2f\t", col.PerFleet[i][j].USD)
			}
			fmt.Fprintln(t, row)
		}
	}
	for j, l := range r.Columns[0].IoT {
		row := l.Item + "\t"
		for _, col := range r.Columns {
			row += fmt.Sprintf("$%.2f\t", col.IoT[j].USD)
		}
		fmt.Fprintln(t, row)
	}
	row, per := "total\t", "per agent\t"
	for _, col := range r.Columns {
		row += fmt.Sprintf("$%.2f\t", col.Total)
		per += fmt.Sprintf("$%.4f\t", col.Total/float64(col.Agents))
	}
	fmt.Fprintln(t, row)
	fmt.Fprintln(t, per)
	t.Flush()
	for _, col := range r.Columns {
		if len(col.Over) > 0 {
			fmt.Fprintf(w, "At %d agents, over capacity (priced anyway; raise relay.maxTasks or add fleets): %s\n", col.Agents, strings.Join(col.Over, "; "))
		}
	}
	fmt.Fprintln(w, "\nPrices (region "+capacity.PriceRegion+", compiled "+capacity.PriceDate+"):")
	t = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range capacity.Prices {
		note := p.Status
		if p.Note != "" {
			note += ": " + p.Note
		}
		fmt.Fprintf(t, "  %s\t$%g per %s\t%s\t%s\n", p.What, p.USD, p.Unit, p.Source, note)
	}
	t.Flush()
}

func rates(b capacity.Budget, s capacity.Storm) string {
	r := capacity.AgentReconnect.At(s.PeakReconnects)
	verdict := "fits"
	if over := b.Over(r); len(over) > 0 {
		verdict = "OVER " + strings.Join(over, ", ")
	}
	return fmt.Sprintf("peak %.1f connects/s, %.1f subscriptions/s, %.1f credential calls/s: %s", r.Connects, r.Subscriptions, r.Credentials, verdict)
}

func waves(s capacity.Storm) string {
	return fmt.Sprintf("worst at %d tasks: %d wave(s) of %d task(s), %.0f agents a task, %d wave(s) closing at once, ≥ %.0f s from the first SIGTERM", s.Tasks, s.Waves, s.WaveTasks, s.Agents/float64(max(s.Tasks, 1)), s.Overlap, s.DurationSec)
}
