package agent

import (
	"math"
	"testing"
	"time"
)

// TestBackoffEdgeCases pins Backoff's documented edges: a zero or negative
// base or max takes the agent's default (never a 0 delay that would spin the
// reconnect loop), a negative attempt counts as the first, and a huge one
// is capped at max without overflow.
func TestBackoffEdgeCases(t *testing.T) {
	cases := []struct {
		name      string
		base, max time.Duration
		n         int
		ceil      time.Duration // the delay must be in [0, ceil)
	}{
		{"base 0 takes the default base", 0, time.Minute, 0, DefaultBackoffBase},
		{"negative base takes the default base", -time.Second, time.Minute, 2, 4 * DefaultBackoffBase},
		{"max 0 takes the default max", time.Second, 0, 20, DefaultBackoffMax},
		{"negative max takes the default max", time.Second, -time.Minute, 20, DefaultBackoffMax},
		{"both 0: the defaults", 0, 0, 3, 8 * DefaultBackoffBase},
		{"n < 0 counts as 0", 10 * time.Millisecond, time.Minute, -5, 10 * time.Millisecond},
		{"n = MinInt counts as 0", 10 * time.Millisecond, time.Minute, math.MinInt, 10 * time.Millisecond},
		{"n = 30 below a huge max: base·2³⁰", time.Nanosecond, time.Duration(math.MaxInt64), 30, 1 << 30},
		{"n = 62 below a huge max: base·2⁶²", time.Nanosecond, time.Duration(math.MaxInt64), 62, 1 << 62},
		{"n = 63 overflows: max", time.Nanosecond, time.Duration(math.MaxInt64), 63, time.Duration(math.MaxInt64)},
		{"n = MaxInt: max", time.Second, 2 * time.Minute, math.MaxInt, 2 * time.Minute},
		{"base above max: max", time.Minute, time.Second, 0, time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hi time.Duration
			for range 300 {
				d := Backoff(c.base, c.max, c.n)
				if d < 0 || d >= c.ceil {
					t.Fatalf("Backoff(%s, %s, %d) = %s, outside [0, %s)", c.base, c.max, c.n, d, c.ceil)
				}
				hi = max(hi, d)
			}
			// 300 uniform draws all below half the window: probability 2⁻³⁰⁰.
			if hi < c.ceil/2 {
				t.Errorf("Backoff(%s, %s, %d): 300 delays all below %s, want spread over [0, %s)", c.base, c.max, c.n, c.ceil/2, c.ceil)
			}
		})
	}
}
