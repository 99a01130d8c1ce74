package capacity

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/relayspec"
)

// example is fleet euw1 of agentgate.example.json at full capacity: two
// zones, 2..8 tasks of 3000 connections, 24,000 agents, one iot.data
// endpoint, 60 s keep-alive.
var example = Fleet{Zones: 2, MinTasks: 2, MaxTasks: 8, MaxConnsPerTask: 3000, TargetConnsPerTask: 2000,
	Agents: 24000, DataEndpoints: 1, KeepAliveSec: 60}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestHoldableIsTheSmallerOfTasksAndEndpoints(t *testing.T) {
	// 8 × 3000 = 24,000 < 1 × 100,000: the tasks bind.
	if got := example.Holdable(); got != 24000 {
		t.Errorf("Holdable = %d, want 24000", got)
	}
	// 40 × 3000 = 120,000 > 100,000: the endpoint binds.
	big := example
	big.MaxTasks = 40
	if got, tasks := big.Holdable(), big.TaskConnections(); got != 100000 || tasks != 120000 {
		t.Errorf("Holdable = %d (tasks %d), want 100000 (120000)", got, tasks)
	}
	// Two endpoints: 200,000 ≥ 120,000.
	big.DataEndpoints = 2
	if got := big.Holdable(); got != 120000 {
		t.Errorf("Holdable with two endpoints = %d, want 120000", got)
	}
}

func TestWaveTasks(t *testing.T) {
	cases := []struct {
		n, minPct, maxPct, want int
	}{
		{8, 100, 200, 8}, // floor(16) − 8
		{8, 100, 124, 1}, // floor(9.92) − 8
		{8, 100, 125, 2}, // floor(10) − 8
		{3, 100, 150, 1}, // floor(4.5) − 3
		{1, 100, 150, 0}, // floor(1.5) − 1: stalls
		{4, 50, 150, 4},  // surge floor(6) − 4 = 2, below 4 − ceil(2) = 2
		{5, 50, 100, 2},  // no surge; 5 − ceil(2.5) = 2
	}
	for _, c := range cases {
		d := Deploy{MinHealthyPercent: c.minPct, MaximumPercent: c.maxPct}
		if got := d.WaveTasks(c.n); got != c.want {
			t.Errorf("WaveTasks(n=%d, %d/%d) = %d, want %d", c.n, c.minPct, c.maxPct, got, c.want)
		}
	}
}

func TestCloseWindowFollowsTheRelaysDrain(t *testing.T) {
	// 0.9 × (110 − 35) = 67.5 s; 0.9 × (49 − 35) = 12.6 s.
	near(t, "window(110)", Deploy{DrainTimeoutSec: 110}.CloseWindowSec(), 67.5)
	near(t, "window(49)", Deploy{DrainTimeoutSec: 49}.CloseWindowSec(), 12.6)
}

func TestRollingDeployToday(t *testing.T) {
	// 100/200, drain 110: 8 tasks (24,000 / 3000), one wave of 8, window
	// 67.5 s, overlap min(1 wave, ceil(67.5/20) = 4) = 1:
	// peak = 8 × 3000 / 67.5 = 355.5… agents/s; duration 35 + 0 + 67.5.
	s := example.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 200, DrainTimeoutSec: 110})
	if s.Tasks != 8 || s.WaveTasks != 8 || s.Waves != 1 || s.Overlap != 1 {
		t.Errorf("storm = %+v, want 8 tasks, one wave of 8, overlap 1", s)
	}
	near(t, "peak", s.PeakReconnects, 24000/67.5)
	near(t, "duration", s.DurationSec, 102.5)
	// 3 filters per reconnect: 1067 subscriptions/s, over the default 500.
	if got := DefaultBudget().Over(AgentReconnect.At(s.PeakReconnects)); !reflect.DeepEqual(got, []string{"subscribesPerSecond"}) {
		t.Errorf("Over = %v, want [subscribesPerSecond]", got)
	}
}

// fixed8 is the example's fleet pinned at 8 tasks.
var fixed8 = Fleet{Zones: 2, MinTasks: 8, MaxTasks: 8, MaxConnsPerTask: 3000, TargetConnsPerTask: 2000,
	Agents: 24000, DataEndpoints: 1, KeepAliveSec: 60}

func TestRollingDeployOverlapsWaves(t *testing.T) {
	// 8 tasks, 100/124, drain 110: waves of 1 task (3000 agents), 8 waves;
	// each closes over 67.5 s and waves come every 20 s, so ceil(67.5/20) =
	// 4 overlap: peak = 4 × 3000 / 67.5 = 177.7…; duration 35 + 7 × 20 + 67.5.
	s := fixed8.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 124, DrainTimeoutSec: 110})
	if s.WaveTasks != 1 || s.Waves != 8 || s.Overlap != 4 {
		t.Errorf("storm = %+v, want waves of 1, 8 waves, overlap 4", s)
	}
	near(t, "peak", s.PeakReconnects, 4*3000/67.5)
	near(t, "duration", s.DurationSec, 35+7*20+67.5)
}

func TestRollingDeployTakesTheWorstTaskCount(t *testing.T) {
	// 6000 agents on 2..8 tasks; 100/150, drain 110 (window 67.5):
	//   n=2: wave 1 of 3000, 2 waves, overlap 2 → 2 × 3000 / 67.5 = 88.9
	//   n=3: wave 1 of 2000, 3 waves, overlap 3 → 3 × 2000 / 67.5 = 88.9
	//   n=4: wave 2 of 1500, 2 waves, overlap 2 → 2 × 3000 / 67.5 = 88.9
	//   n=6: wave 3 of 1000, 2 waves → 88.9; n=5: wave 2 (floor 7.5 − 5)
	//   of 1200, 3 waves, overlap 3 → 3 × 2400 / 67.5 = 106.7
	//   n=7: wave 3 (floor 10.5 − 7) of 857.1, 3 waves → 3 × 2571.4 / 67.5 = 114.3
	//   n=8: wave 4 of 750, 2 waves → 2 × 3000 / 67.5 = 88.9
	// The worst is n=7.
	f := example
	f.Agents = 6000
	s := f.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 150, DrainTimeoutSec: 110})
	if s.Tasks != 7 || s.WaveTasks != 3 || s.Waves != 3 || s.Overlap != 3 {
		t.Errorf("storm = %+v, want n=7, waves of 3, 3 waves, overlap 3", s)
	}
	near(t, "peak", s.PeakReconnects, 3*3*(6000.0/7)/67.5)
}

func TestRollingDeployStallsAtTheFloor(t *testing.T) {
	// The example scaled in to 2 tasks: floor(2 × 1.24) − 2 = 0, so 124 %
	// cannot start a task there, however well it suits 8 tasks.
	if s := example.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 124, DrainTimeoutSec: 110}); !math.IsInf(s.PeakReconnects, 1) || s.Tasks != 2 {
		t.Errorf("storm %+v, want a stall (+Inf) at 2 tasks", s)
	}
}

func TestRollingDeployThatCannotProgress(t *testing.T) {
	// One task, 100/150: floor(1.5) − 1 = 0 new tasks, none below 100 %.
	f := Fleet{Zones: 1, MinTasks: 1, MaxTasks: 1, MaxConnsPerTask: 10, Agents: 10, DataEndpoints: 1, KeepAliveSec: 60}
	if s := f.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 150, DrainTimeoutSec: 110}); !math.IsInf(s.PeakReconnects, 1) {
		t.Errorf("a stalled deploy's peak = %v, want +Inf", s.PeakReconnects)
	}
}

func TestZoneLoss(t *testing.T) {
	// 8 tasks over 2 zones: 4 in one, 4 × 3000 = 12,000 agents over a 60 s
	// keep-alive = 200 agents/s.
	s := example.ZoneLoss()
	near(t, "agents", s.Agents, 12000)
	near(t, "peak", s.PeakReconnects, 200)
	// Three zones: ceil(8/3) = 3 tasks, 9000 agents, 150/s.
	f := example
	f.Zones = 3
	near(t, "peak (3 zones)", f.ZoneLoss().PeakReconnects, 150)
	// 6000 agents on 2..8 tasks, 2 zones: n=3 puts 2 of 3 tasks (4000
	// agents) in one zone, the worst: 4000 / 60 = 66.7.
	f = example
	f.Agents = 6000
	s = f.ZoneLoss()
	if s.Tasks != 3 {
		t.Errorf("worst task count = %d, want 3", s.Tasks)
	}
	near(t, "peak (6000 agents)", s.PeakReconnects, 4000.0/60)
}

func TestBudget(t *testing.T) {
	b := DefaultBudget()
	// min(500/1, 500/3, 500/1) = 166.7 agents/s; 24,000 / 166.7 = 144 s.
	near(t, "max reconnects", b.MaxReconnects(AgentReconnect), 500.0/3)
	near(t, "full reconnect", example.FullReconnectSec(b, AgentReconnect), 144)
	// Without self-update: min(500/1, 500/2, 500/1) = 250; 24,000 / 250 = 96 s.
	near(t, "max reconnects (no self-update)", b.MaxReconnects(PlainAgentReconnect), 250)
	near(t, "full reconnect (no self-update)", example.FullReconnectSec(b, PlainAgentReconnect), 96)
	// With credentials reused: min(500, 250) still 250.
	near(t, "max reconnects (credentials reused)", b.MaxReconnects(Cost{Connects: 1, Subscriptions: 2}), 250)
	if got := b.Over(Rates{500, 500, 500}); got != nil {
		t.Errorf("Over at the budget = %v, want none", got)
	}
	if got := b.Over(Rates{501, 1001, 500.5}); !reflect.DeepEqual(got, []string{"connectsPerSecond", "subscribesPerSecond", "credentialsPerSecond"}) {
		t.Errorf("Over = %v", got)
	}
	if got := (Budget{}).MaxReconnects(Cost{}); got != 0 {
		t.Errorf("MaxReconnects with no cost = %v, want 0", got)
	}
}

func TestDeriveFixedEightTasks(t *testing.T) {
	// 8 tasks of 3000: all at once (200 %) is 24,000 / 67.5 s = 356/s, 711
	// subscriptions/s, over 500. Waves of 2 (125..137 %) never fit: 6000
	// agents over W ≤ 20 s is ≥ 300/s, and longer windows overlap
	// (12,000 / W on (20, 40], …). 124 % gives waves of 1: peak = ceil(W /
	// 20) × 3000 / W, lowest (151.5/s) where W is just under a multiple of
	// 20 s: W = 19.8, 39.6 or 59.4 s (drain 57, 79 or 101 s: 35 + W / 0.9);
	// the longest is kept.
	d, err := Derive(fixed8, DefaultBudget(), AgentReconnect)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Deploy{MinHealthyPercent: 100, MaximumPercent: 124, DrainTimeoutSec: 101}); d != want {
		t.Errorf("Derive = %+v, want %+v", d, want)
	}
	near(t, "derived peak", fixed8.RollingDeploy(d).PeakReconnects, 3*3000/59.4)
}

func TestDeriveDeploysAtOnceWhenThatFits(t *testing.T) {
	// 11,000 agents on 2..8 tasks: 200 % stops every task at once; the
	// worst, 8 tasks, is 11,000 agents over 67.5 s = 163/s (488.9
	// subscriptions/s), within 500, at the longest drain. (12,000 would be
	// 533 subscriptions/s: TestMaxAgentsWithinTheBudget.)
	f := example
	f.Agents = 11000
	d, err := Derive(f, DefaultBudget(), AgentReconnect)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Deploy{MinHealthyPercent: 100, MaximumPercent: 200, DrainTimeoutSec: 110}); d != want {
		t.Errorf("Derive = %+v, want %+v", d, want)
	}
}

func TestDeriveNeverStallsTheFloor(t *testing.T) {
	// Whatever it picks starts at least one task at every size the service
	// may have, from MinTasks up.
	for _, f := range []Fleet{fixed8, example, {Zones: 3, MinTasks: 3, MaxTasks: 30, MaxConnsPerTask: 1000, Agents: 9000, DataEndpoints: 1, KeepAliveSec: 60},
		{Zones: 2, MinTasks: 5, MaxTasks: 40, MaxConnsPerTask: 500, Agents: 20000, DataEndpoints: 1, KeepAliveSec: 60}} {
		f.Agents = min(f.Agents, 11000)
		d, err := Derive(f, DefaultBudget(), AgentReconnect)
		if err != nil {
			t.Errorf("%+v: %v", f, err)
			continue
		}
		for n := f.MinTasks; n <= f.MaxTasks; n++ {
			if d.WaveTasks(n) < 1 {
				t.Errorf("%+v: %+v stalls at %d tasks", f, d, n)
			}
		}
		if over := DefaultBudget().Over(AgentReconnect.At(f.RollingDeploy(d).PeakReconnects)); over != nil {
			t.Errorf("%+v: derived %+v is over %v", f, d, over)
		}
	}
}

func TestDeriveRefusesTheFullExample(t *testing.T) {
	// 24,000 agents on 2..8 tasks: 124 % stalls at 2 tasks, so at least
	// 150 %, which at 8 tasks stops 4 at a time, 2 waves, both closing
	// together: 24,000 agents over at most 67.5 s = 356/s whatever the
	// percentage from 150 to 200.
	f := example
	_, err := Derive(f, DefaultBudget(), AgentReconnect)
	if err == nil || !strings.Contains(err.Error(), "maximumPercent 200 with a 110 s drain, reconnects 356 agents/s at 8 tasks (24000 agents") || !strings.Contains(err.Error(), "over subscribesPerSecond") {
		t.Errorf("Derive = %v", err)
	}
}

func TestDeriveSmallFleetDeploysAtOnce(t *testing.T) {
	// 1000 agents on 2 tasks: 100/200 stops both (1000 agents) at once,
	// 14.8/s at the longest drain.
	f := Fleet{Zones: 2, MinTasks: 2, MaxTasks: 2, MaxConnsPerTask: 3000, TargetConnsPerTask: 2000, Agents: 1000, DataEndpoints: 1, KeepAliveSec: 60}
	d, err := Derive(f, DefaultBudget(), AgentReconnect)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Deploy{MinHealthyPercent: 100, MaximumPercent: 200, DrainTimeoutSec: 110}); d != want {
		t.Errorf("Derive = %+v, want %+v", d, want)
	}
}

func TestDeriveRefusesWhatCannotFit(t *testing.T) {
	// 2 tasks of 50,000 agents: 200 % stops both, 100,000 agents over at
	// most 67.5 s = 1481/s (150 % stops one at a time, but the two waves,
	// 20 s apart, close together: the same), over every dimension of the
	// default budget.
	f := Fleet{Zones: 2, MinTasks: 2, MaxTasks: 2, MaxConnsPerTask: 50000, TargetConnsPerTask: 40000, Agents: 100000, DataEndpoints: 1, KeepAliveSec: 60}
	_, err := Derive(f, DefaultBudget(), AgentReconnect)
	if err == nil || !strings.Contains(err.Error(), "(100000 agents, 1 wave(s) of 2)") || !strings.Contains(err.Error(), "connectsPerSecond") {
		t.Errorf("Derive = %v, want a refusal naming 100000 agents in one wave and connectsPerSecond", err)
	}
}

// Nonsense fleets (zero or negative sizes, more agents than tasks admit)
// give infinite or zero rates and a refusal, never a panic or NaN.
func TestDegenerateFleetsNeitherPanicNorNaN(t *testing.T) {
	for _, f := range []Fleet{
		{},
		{Zones: -1, MinTasks: -3, MaxTasks: -1, MaxConnsPerTask: -5, Agents: -10, KeepAliveSec: -60},
		{Zones: 2, MinTasks: 2, MaxTasks: 2, MaxConnsPerTask: 1, Agents: 1000000, KeepAliveSec: 60},
	} {
		for _, s := range []Storm{f.RollingDeploy(Deploy{MinHealthyPercent: 100, MaximumPercent: 200, DrainTimeoutSec: 110}), f.ZoneLoss(), f.TaskKilled()} {
			if math.IsNaN(s.PeakReconnects) || math.IsNaN(s.DurationSec) || s.PeakReconnects < 0 && f.Agents >= 0 {
				t.Errorf("%+v: storm %+v", f, s)
			}
		}
		// No agents fit any budget; a million do not fit an empty one.
		if _, err := Derive(f, Budget{}, AgentReconnect); (err == nil) != (f.Agents <= 0) {
			t.Errorf("%+v: Derive with a zero budget: %v", f, err)
		}
		_ = f.FullReconnectSec(Budget{}, AgentReconnect)
		if m := f.MinReconnectSpreadSec(Budget{}, AgentReconnect); !math.IsInf(m, 1) {
			t.Errorf("%+v: MinReconnectSpreadSec with a zero budget = %v, want +Inf", f, m)
		}
	}
}

func TestMaxAgentsWithinTheBudget(t *testing.T) {
	// 2..8 tasks of 3000: a deploy must start a task at 2 tasks, so at
	// 8 tasks 2 waves of 4 close together: all agents over at most 67.5 s
	// at 166.7/s (500 subscriptions/s, 3 a reconnect) is 11,250 agents.
	// The zone loss of that many, the worst at 7 tasks (4 of 7 in one
	// zone: 6429 agents over 60 s, 107/s), fits.
	if got := example.MaxAgents(DefaultBudget(), AgentReconnect); got != 11250 {
		t.Errorf("MaxAgents = %d, want 11250", got)
	}
	// Agents without self-update, 250/s: 16,875.
	if got := example.MaxAgents(DefaultBudget(), PlainAgentReconnect); got != 16875 {
		t.Errorf("MaxAgents (no self-update) = %d, want 16875", got)
	}
	// Pinned at 8 tasks, waves of one: the deploy fits 24,000
	// (TestDeriveFixedEightTasks), but the loss of one zone (4 tasks) must
	// stay within 166.7/s over the 60 s keep-alive: 10,000 a zone, 20,000
	// in all; 24,000 without self-update (12,000 / 60 s = 200/s ≤ 250).
	if got := fixed8.MaxAgents(DefaultBudget(), AgentReconnect); got != 20000 {
		t.Errorf("MaxAgents(fixed 8) = %d, want 20000", got)
	}
	if got := fixed8.MaxAgents(DefaultBudget(), PlainAgentReconnect); got != 24000 {
		t.Errorf("MaxAgents(fixed 8, no self-update) = %d, want 24000", got)
	}
	if got := example.MaxAgents(Budget{}, AgentReconnect); got != 0 {
		t.Errorf("MaxAgents with no budget = %d, want 0", got)
	}
}

// TestTaskKilled pins the one-task-killed arithmetic: the task's agents
// (its connection cap, or every agent when fewer) over the agents' reconnect
// spread.
func TestTaskKilled(t *testing.T) {
	// The reference agent's default spread (18 s): 3000 / 18 = 166.7/s,
	// 500 subscriptions/s: exactly the default budget, so it fits.
	s := example.TaskKilled()
	near(t, "agents", s.Agents, 3000)
	near(t, "spread", s.SpreadSec, 18)
	near(t, "peak", s.PeakReconnects, 3000.0/18)
	if over := DefaultBudget().Over(AgentReconnect.At(s.PeakReconnects)); over != nil {
		t.Errorf("default spread over %v", over)
	}
	// The old 1 s first-attempt window: 3000/s, 9000 subscriptions/s.
	f := example
	f.ReconnectSpreadSec = 1
	near(t, "peak (1 s)", f.TaskKilled().PeakReconnects, 3000)
	if f.Fits(DefaultBudget(), AgentReconnect) {
		t.Error("a 1 s spread fits the default budget")
	}
	if got := f.MaxAgents(DefaultBudget(), AgentReconnect); got != 166 {
		t.Errorf("MaxAgents with a 1 s spread = %d, want 166 (all on one task, 166/s)", got)
	}
	// Fewer agents than one task's cap: all of them on one task.
	f.Agents, f.ReconnectSpreadSec = 1200, 6
	near(t, "peak (1200 agents, 6 s)", f.TaskKilled().PeakReconnects, 200)
	// Minimum spread: 3000 / 166.7 = 18 s at the default budget (12 s
	// without self-update); with subscriptions raised to 1000/s, 3000 × 3 /
	// 1000 = 9 s (connects alone would allow 6 s); 1200 agents need 7.2 s.
	near(t, "min spread", example.MinReconnectSpreadSec(DefaultBudget(), AgentReconnect), 18)
	near(t, "min spread (no self-update)", example.MinReconnectSpreadSec(DefaultBudget(), PlainAgentReconnect), 12)
	near(t, "min spread (subscriptions 1000/s)", example.MinReconnectSpreadSec(Budget{500, 1000, 500}, AgentReconnect), 9)
	near(t, "min spread (1200 agents)", f.MinReconnectSpreadSec(DefaultBudget(), AgentReconnect), 7.2)
	// 6000 connections per task need 36 s; the default 18 s refuses.
	g := example
	g.MaxConnsPerTask, g.MaxTasks = 6000, 4
	near(t, "min spread (6000 per task)", g.MinReconnectSpreadSec(DefaultBudget(), AgentReconnect), 36)
	if g.Fits(DefaultBudget(), AgentReconnect) {
		t.Error("6000 agents a task with an 18 s spread fit")
	}
}

// TestDefaultSpreadFitsTheDefaultTask: the reference agent's default spread
// is exactly what the relay's default connection cap needs at the default
// budget (three filters a reconnect: 166.7 reconnects/s, 3000 / 166.7 =
// 18 s), so the defaults pass synth's check and the agent waits no longer
// than they require; agents without self-update would need 12 s.
func TestDefaultSpreadFitsTheDefaultTask(t *testing.T) {
	f := Fleet{MaxConnsPerTask: relayspec.DefaultMaxConnsPerTask, Agents: relayspec.DefaultMaxConnsPerTask}
	if got, want := f.MinReconnectSpreadSec(DefaultBudget(), AgentReconnect), backoff.DefaultReconnectSpread.Seconds(); math.Abs(got-want) > 1e-9 {
		t.Errorf("min spread for the default task %v s, the agent's default %v s", got, want)
	}
	near(t, "min spread without self-update", f.MinReconnectSpreadSec(DefaultBudget(), PlainAgentReconnect), 12)
	near(t, "max reconnects", DefaultBudget().MaxReconnects(AgentReconnect), 500.0/3)
}
