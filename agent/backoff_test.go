package agent

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestBackoffEdgeCases pins Backoff's documented edges: a zero or negative
// base or max takes the agent's default (never a 0 delay that would spin the
// reconnect loop), a negative attempt counts as the first, a huge one stays
// below max without overflow, and every delay is at least the floor,
// min(DefaultBackoffFloor, base).
func TestBackoffEdgeCases(t *testing.T) {
	cases := []struct {
		name      string
		base, max time.Duration
		n         int
		lo, hi    time.Duration // the delay must be in [lo, hi); lo == hi: exactly lo
	}{
		{"base 0 takes the default base", 0, time.Minute, 0, time.Second, 2 * time.Second},
		{"negative base takes the default base", -time.Second, time.Minute, 2, time.Second, 5 * time.Second},
		{"max 0 takes the default max", time.Second, 0, 20, time.Second, DefaultBackoffMax},
		{"negative max takes the default max", time.Second, -time.Minute, 20, time.Second, DefaultBackoffMax},
		{"both 0: the defaults", 0, 0, 3, time.Second, 9 * time.Second},
		{"small base: floor = base", 10 * time.Millisecond, time.Minute, 0, 10 * time.Millisecond, 20 * time.Millisecond},
		{"n < 0 counts as 0", 10 * time.Millisecond, time.Minute, -5, 10 * time.Millisecond, 20 * time.Millisecond},
		{"n = MinInt counts as 0", 10 * time.Millisecond, time.Minute, math.MinInt, 10 * time.Millisecond, 20 * time.Millisecond},
		{"n = 30 below a huge max: floor + base·2³⁰", time.Nanosecond, time.Duration(math.MaxInt64), 30, 1, 1 + 1<<30},
		{"n = 63 overflows: below max", time.Nanosecond, time.Duration(math.MaxInt64), 63, 1, time.Duration(math.MaxInt64)},
		{"n = MaxInt: below max", time.Second, 2 * time.Minute, math.MaxInt, time.Second, 2 * time.Minute},
		{"base above max: max", time.Minute, time.Second, 0, time.Second, time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hi time.Duration
			for range 300 {
				d := Backoff(c.base, c.max, c.n)
				if c.lo == c.hi && d != c.lo || c.lo < c.hi && (d < c.lo || d >= c.hi) {
					t.Fatalf("Backoff(%s, %s, %d) = %s, outside [%s, %s)", c.base, c.max, c.n, d, c.lo, c.hi)
				}
				hi = max(hi, d)
			}
			// 300 uniform draws all in the lower half: probability 2⁻³⁰⁰.
			if mid := c.lo + (c.hi-c.lo)/2; c.lo < c.hi && hi < mid {
				t.Errorf("Backoff(%s, %s, %d): 300 delays all below %s, want spread over [%s, %s)", c.base, c.max, c.n, mid, c.lo, c.hi)
			}
		})
	}
}

// TestReconnectWaveSpreads: 10,000 agents with the default backoff (a seeded
// source, so the run is deterministic) lose their connections at the same
// instant. Nobody comes back before the 1 s floor; the first attempts
// spread evenly over [1 s, 2 s): every 100 ms slice of it carries
// 10 % ± 1.5 % of the fleet, none carries a burst. Agents whose first
// attempt fails (a throttled broker) spread over [1 s, 3 s), and so on.
func TestReconnectWaveSpreads(t *testing.T) {
	a, err := New(baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	a.rnd = rand.New(rand.NewPCG(16, 16))
	if a.cfg.BackoffFloor != time.Second || a.cfg.BackoffBase != time.Second || a.cfg.BackoffMax != 2*time.Minute {
		t.Fatalf("defaults: floor %s base %s max %s", a.cfg.BackoffFloor, a.cfg.BackoffBase, a.cfg.BackoffMax)
	}
	const fleet = 10000
	for n := range 4 {
		window := time.Second << n
		var slices [10]int
		for range fleet {
			d := a.backoff(n)
			if d < time.Second || d >= time.Second+window {
				t.Fatalf("attempt %d: delay %s outside [1s, %s)", n, d, time.Second+window)
			}
			slices[(d-time.Second)*10/window]++
		}
		for i, c := range slices {
			if c < fleet*85/1000 || c > fleet*115/1000 {
				t.Errorf("attempt %d: slice %d of [1s, %s) holds %d of %d agents, want about %d", n, i, time.Second+window, c, fleet, fleet/10)
			}
		}
	}
}

func TestBackoffFloorConfig(t *testing.T) {
	for _, tc := range []struct {
		floor, base, max time.Duration
		want             time.Duration // 0: New must refuse
	}{
		{0, 0, 0, time.Second},
		{0, 200 * time.Millisecond, 2 * time.Second, 200 * time.Millisecond},
		{0, time.Second, time.Second, 500 * time.Millisecond}, // half of max
		{3 * time.Second, time.Second, time.Minute, 3 * time.Second},
		{-time.Second, time.Second, time.Minute, 0},
		{time.Minute, time.Second, time.Minute, 0}, // not below max
	} {
		cfg := baseConfig(t)
		cfg.BackoffFloor, cfg.BackoffBase, cfg.BackoffMax = tc.floor, tc.base, tc.max
		a, err := New(cfg)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("floor %s base %s max %s: accepted", tc.floor, tc.base, tc.max)
		case tc.want != 0 && err != nil:
			t.Errorf("floor %s base %s max %s: %v", tc.floor, tc.base, tc.max, err)
		case tc.want != 0 && a.cfg.BackoffFloor != tc.want:
			t.Errorf("floor %s base %s max %s: floor %s, want %s", tc.floor, tc.base, tc.max, a.cfg.BackoffFloor, tc.want)
		}
	}
}

// TestFirstReconnectAfterALossSpreads: with the defaults, a fleet that loses
// its connections at the same instant (a relay task killed) comes back over
// [1 s, 19 s), the floor plus DefaultReconnectSpread, every 1.8 s slice of
// it carrying 10 % ± 1.5 %: 10,000 agents at ≈ 556/s instead of the
// ≈ 10,000/s a 1 s window would offer. The process's first connection still
// goes at once, and the second attempt after a loss is the ordinary
// backoff's attempt 1, [1 s, 3 s).
func TestFirstReconnectAfterALossSpreads(t *testing.T) {
	a, err := New(baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	a.rnd = rand.New(rand.NewPCG(16, 17))
	if a.cfg.ReconnectSpread != DefaultReconnectSpread || DefaultReconnectSpread != 18*time.Second {
		t.Fatalf("default spread %s", a.cfg.ReconnectSpread)
	}
	if d := a.reconnectDelay(0, true); d != 0 {
		t.Fatalf("process start: %s, want 0", d)
	}
	const fleet = 10000
	floor, spread := time.Second, a.cfg.ReconnectSpread
	var slices [10]int
	for range fleet {
		d := a.reconnectDelay(0, false)
		if d < floor || d >= floor+spread {
			t.Fatalf("first reconnect %s outside [%s, %s)", d, floor, floor+spread)
		}
		slices[(d-floor)*10/spread]++
	}
	for i, c := range slices {
		if c < fleet*85/1000 || c > fleet*115/1000 {
			t.Errorf("slice %d holds %d of %d agents, want about %d", i, c, fleet, fleet/10)
		}
	}
	for range 1000 {
		if d := a.reconnectDelay(1, false); d < floor || d >= 3*time.Second {
			t.Fatalf("second attempt %s outside [1s, 3s)", d)
		}
	}
}

func TestReconnectSpreadConfig(t *testing.T) {
	for _, tc := range []struct {
		spread, max time.Duration
		want        time.Duration // 0: New must refuse
	}{
		{0, 0, DefaultReconnectSpread},
		{0, 5 * time.Second, 5 * time.Second}, // default clamped to max
		{time.Second, 0, time.Second},         // the plain backoff's window
		{2 * time.Minute, 2 * time.Minute, 2 * time.Minute},
		{2*time.Minute + 1, 2 * time.Minute, 0},
		{-time.Second, 0, 0},
		{math.MinInt64, 0, 0},
		{math.MaxInt64, 0, 0},
	} {
		cfg := baseConfig(t)
		cfg.ReconnectSpread, cfg.BackoffMax = tc.spread, tc.max
		a, err := New(cfg)
		switch {
		case tc.want == 0 && err == nil:
			t.Errorf("spread %s max %s: accepted", tc.spread, tc.max)
		case tc.want != 0 && err != nil:
			t.Errorf("spread %s max %s: %v", tc.spread, tc.max, err)
		case tc.want != 0 && a.cfg.ReconnectSpread != tc.want:
			t.Errorf("spread %s max %s: %s, want %s", tc.spread, tc.max, a.cfg.ReconnectSpread, tc.want)
		}
	}
}
