package capacity

import (
	"fmt"
	"math"
	"strings"

	"github.com/agentgate/agentgate/contract/backoff"
)

// Fleet is what the arithmetic needs to know about one relay fleet.
type Fleet struct {
	// Zones is the availability zones the tasks spread over.
	Zones int
	// MinTasks and MaxTasks are the auto-scaling floor and ceiling.
	MinTasks, MaxTasks int
	// MaxConnsPerTask is the relay's connection cap.
	MaxConnsPerTask int
	// TargetConnsPerTask is the scaling target of connections per task.
	TargetConnsPerTask int
	// Agents is how many agents the fleet is expected to carry.
	Agents int
	// DataEndpoints is the iot.data interface endpoints the relays dial
	// (one per fleet VPC); each carries DataEndpointConnections.
	DataEndpoints int
	// KeepAliveSec is the agents' MQTT keep-alive.
	KeepAliveSec int
	// ReconnectSpreadSec is the window the agents spread their first
	// reconnect after a lost connection over (the reference agent's
	// --reconnect-spread, backoff.FirstReconnect); 0 means the reference
	// agent's default, backoff.DefaultReconnectSpread.
	ReconnectSpreadSec float64
}

// reconnectSpreadSec is ReconnectSpreadSec with its default.
func (f Fleet) reconnectSpreadSec() float64 {
	if f.ReconnectSpreadSec > 0 {
		return f.ReconnectSpreadSec
	}
	return backoff.DefaultReconnectSpread.Seconds()
}

// killedAgents is the most agents one task holds: its connection cap, or
// every agent of the fleet when they are fewer (the load balancer may put
// them all on one task).
func (f Fleet) killedAgents() float64 {
	a := f.Agents
	if f.MaxConnsPerTask > 0 {
		a = min(a, f.MaxConnsPerTask)
	}
	return float64(a)
}

// TaskKilled is one relay task killed outright (SIGKILL, a crash, an
// out-of-memory kill: no drain): the kernel closes its connections at
// once, so every agent on it notices at the same instant and makes its
// first reconnect after its floor plus a uniform delay in [0, spread)
// (backoff.FirstReconnect). The floor only delays the wave; the spread
// sets its rate:
//
//	peak = min(MaxConnsPerTask, Agents) / ReconnectSpreadSec
func (f Fleet) TaskKilled() Storm {
	spread := f.reconnectSpreadSec()
	a := f.killedAgents()
	return Storm{Agents: a, Tasks: 1, WaveTasks: 1, Waves: 1, SpreadSec: spread, Overlap: 1,
		PeakReconnects: a / spread, DurationSec: spread}
}

// MinReconnectSpreadSec is the shortest spread that keeps TaskKilled within
// b at cost c: min(MaxConnsPerTask, Agents) / b.MaxReconnects(c); +Inf when
// b allows no reconnects.
func (f Fleet) MinReconnectSpreadSec(b Budget, c Cost) float64 {
	r := b.MaxReconnects(c)
	if r <= 0 {
		return math.Inf(1)
	}
	return f.killedAgents() / r
}

// TaskConnections is MaxTasks × MaxConnsPerTask: what the relays admit at
// the scaling ceiling.
func (f Fleet) TaskConnections() int { return f.MaxTasks * f.MaxConnsPerTask }

// EndpointConnections is what the fleet's iot.data endpoints carry:
// DataEndpoints × DataEndpointConnections.
func (f Fleet) EndpointConnections() int { return f.DataEndpoints * DataEndpointConnections }

// Holdable is the agents the fleet can hold: the smaller of the relays' and
// the endpoints' capacity.
func (f Fleet) Holdable() int { return min(f.TaskConnections(), f.EndpointConnections()) }

// taskRange is the task counts the service may run: MinTasks to MaxTasks
// (at a deploy ECS takes the desired count of the moment, which scaling may
// have set anywhere in that range). Both are at least 1, lo ≤ hi.
func (f Fleet) taskRange() (lo, hi int) {
	lo = max(f.MinTasks, 1)
	return lo, max(f.MaxTasks, lo)
}

// agentsOn is how many of f.Agents n tasks carry: all of them, or as many
// as n tasks admit (the service scales out for the rest).
func (f Fleet) agentsOn(n int) float64 {
	a := f.Agents
	if f.MaxConnsPerTask > 0 {
		a = min(a, n*f.MaxConnsPerTask)
	}
	return float64(a)
}

// Deploy is a fleet's ECS rolling-deployment settings and relay drain.
type Deploy struct {
	// MinHealthyPercent and MaximumPercent are the ECS service's
	// deploymentConfiguration (ECSRollingURL): the scheduler keeps at least
	// ceil(desired × MinHealthyPercent / 100) tasks RUNNING and at most
	// floor(desired × MaximumPercent / 100) RUNNING or PENDING.
	MinHealthyPercent, MaximumPercent int
	// DrainTimeoutSec is the relay's drain budget (--drain-timeout),
	// UnreadyDelaySec included.
	DrainTimeoutSec int
}

// CloseWindowSec is how long one relay spreads its closes over after a
// SIGTERM: CloseShare of the drain budget left after the unready delay.
func (d Deploy) CloseWindowSec() float64 {
	return CloseShare * float64(d.DrainTimeoutSec-UnreadyDelaySec)
}

// WaveTasks is how many old tasks one wave of a rolling deploy stops when
// the service runs n tasks: the surge maximumPercent allows above n
// (floor(n × MaximumPercent / 100) − n new tasks start, then as many old
// ones stop) plus what minimumHealthyPercent lets go below n
// (n − ceil(n × MinHealthyPercent / 100)). 0 means the deploy cannot
// progress.
func (d Deploy) WaveTasks(n int) int {
	surge := n*d.MaximumPercent/100 - n
	below := n - ceilDiv(n*d.MinHealthyPercent, 100)
	return max(surge, 0) + max(below, 0)
}

// Storm is how the agents of a fleet come back after an event.
type Storm struct {
	// Agents is how many agents the event disconnects.
	Agents float64
	// Tasks is the running tasks of the worst case.
	Tasks int
	// WaveTasks and Waves: tasks stopped per wave and the number of waves
	// (1 for a zone loss).
	WaveTasks, Waves int
	// SpreadSec is the time one wave's agents reconnect over.
	SpreadSec float64
	// Overlap is how many waves' reconnects may run at once.
	Overlap int
	// PeakReconnects is the highest reconnect rate, agents per second.
	PeakReconnects float64
	// DurationSec is how long from the first SIGTERM (or the failure) until
	// the last agent of the event has been dropped (a lower bound for a
	// deploy: Fargate launch time adds to each wave).
	DurationSec float64
}

// RollingDeploy is the worst rolling deploy of f under d: over every task
// count n the service may run (MinTasks..MaxTasks), each wave stops
// WaveTasks(n) tasks holding agentsOn(n)/n agents each, whose closes the relays
// spread over d.CloseWindowSec(); waves start at least WaveGapSec apart, so
// min(waves, ceil(window / WaveGapSec)) of them may be closing at once.
//
//	peak = overlap × wave × (agents / n) / window
func (f Fleet) RollingDeploy(d Deploy) Storm {
	lo, hi := f.taskRange()
	window := d.CloseWindowSec()
	var worst Storm
	for n := lo; n <= hi; n++ {
		w := d.WaveTasks(n)
		if w <= 0 || window <= 0 {
			// The deploy cannot start a task at this size: it stalls.
			return Storm{Agents: f.agentsOn(n), Tasks: n, PeakReconnects: math.Inf(1), DurationSec: math.Inf(1)}
		}
		w = min(w, n)
		waves := ceilDiv(n, w)
		overlap := min(waves, int(math.Ceil(window/WaveGapSec)))
		perTask := f.agentsOn(n) / float64(n)
		s := Storm{
			Agents: f.agentsOn(n), Tasks: n, WaveTasks: w, Waves: waves,
			SpreadSec: window, Overlap: overlap,
			PeakReconnects: float64(overlap) * float64(w) * perTask / window,
			DurationSec:    float64(UnreadyDelaySec) + float64(waves-1)*WaveGapSec + window,
		}
		if s.PeakReconnects > worst.PeakReconnects || worst.Tasks == 0 {
			worst = s
		}
	}
	return worst
}

// ZoneLoss is the loss of the busiest zone, at the worst task count: ECS spreads tasks evenly over
// the zones, so one holds at most ceil(n / Zones) of n tasks, and their
// agents lose their connections without a drain. Each agent notices at its
// next keep-alive exchange; with keep-alive timers in every phase the
// agents notice, and reconnect, spread over one keep-alive period (an
// assumption: agents whose timers happen to align come back faster).
//
//	peak = ceil(n / zones) × (agentsOn(n) / n) / keepAlive
func (f Fleet) ZoneLoss() Storm {
	lo, hi := f.taskRange()
	zones := max(f.Zones, 1)
	spread := float64(max(f.KeepAliveSec, 1))
	var worst Storm
	for n := lo; n <= hi; n++ {
		inZone := ceilDiv(n, zones)
		agents := float64(inZone) * f.agentsOn(n) / float64(n)
		s := Storm{Agents: agents, Tasks: n, WaveTasks: inZone, Waves: 1, SpreadSec: spread, Overlap: 1,
			PeakReconnects: agents / spread, DurationSec: spread}
		if s.PeakReconnects > worst.PeakReconnects || worst.Tasks == 0 {
			worst = s
		}
	}
	return worst
}

// FullReconnectSec is how long every one of f.Agents takes to reconnect at
// the fastest rate b allows for reconnects costing c.
func (f Fleet) FullReconnectSec(b Budget, c Cost) float64 {
	r := b.MaxReconnects(c)
	if r <= 0 {
		return math.Inf(1)
	}
	return float64(f.Agents) / r
}

// Derive picks f's rolling-deployment settings: minimumHealthyPercent 100
// (a deploy never runs below the capacity the agents need) and the largest
// maximumPercent (200 down to 101: the fewest waves, the fastest deploy)
// that still starts a task at the smallest service (MinTasks: floor(MinTasks
// × p / 100) > MinTasks, or the deploy stalls) and whose gentlest drain fits
// b; the drain budget (UnreadyDelaySec+1 .. MaxDrainTimeoutSec) is the one
// with the lowest RollingDeploy peak at that percentage, the longest of
// equals. It fails, naming the gentlest setting it found, when none fits.
func Derive(f Fleet, b Budget, c Cost) (Deploy, error) {
	lo, _ := f.taskRange()
	var best Deploy
	bestPeak := math.Inf(1)
	for maxPct := 200; maxPct > 100; maxPct-- {
		d := Deploy{MinHealthyPercent: 100, MaximumPercent: maxPct}
		if d.WaveTasks(lo) < 1 {
			break // smaller percentages stall the smallest service too
		}
		pick, pickPeak := d, math.Inf(1)
		for drain := UnreadyDelaySec + 1; drain <= MaxDrainTimeoutSec; drain++ {
			d.DrainTimeoutSec = drain
			if p := f.RollingDeploy(d).PeakReconnects; p <= pickPeak*(1+1e-9) {
				pick, pickPeak = d, math.Min(p, pickPeak)
			}
		}
		if len(b.Over(c.At(pickPeak))) == 0 {
			return pick, nil
		}
		if pickPeak < bestPeak {
			best, bestPeak = pick, pickPeak
		}
	}
	if math.IsInf(bestPeak, 1) {
		return Deploy{}, fmt.Errorf("no rolling deployment fits the budget: no maximumPercent up to 200 starts a task at %d tasks", lo)
	}
	s := f.RollingDeploy(best)
	return Deploy{}, fmt.Errorf("no rolling deployment fits the budget: the gentlest, maximumPercent %d with a %d s drain, reconnects %.0f agents/s at %d tasks (%.0f agents, %d wave(s) of %d), over %s",
		best.MaximumPercent, best.DrainTimeoutSec, s.PeakReconnects, s.Tasks, s.Agents, s.Waves, s.WaveTasks, strings.Join(b.Over(c.At(s.PeakReconnects)), ", "))
}

func ceilDiv(a, b int) int {
	if b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// Fits reports whether f's agents fit b at cost c: a rolling deployment
// exists (Derive), and the loss of its busiest zone and the kill of one
// task stay within b.
func (f Fleet) Fits(b Budget, c Cost) bool {
	if len(b.Over(c.At(f.ZoneLoss().PeakReconnects))) > 0 || len(b.Over(c.At(f.TaskKilled().PeakReconnects))) > 0 {
		return false
	}
	_, err := Derive(f, b, c)
	return err == nil
}

// MaxAgents is the most agents f could carry within b at cost c (Fits),
// at most Holdable: every rate grows with the agents, so a binary search
// finds it. 0 when not even one fits.
func (f Fleet) MaxAgents(b Budget, c Cost) int {
	lo, hi := 0, f.Holdable()
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		g := f
		g.Agents = mid
		if g.Fits(b, c) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
