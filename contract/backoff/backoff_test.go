package backoff

import (
	"math"
	"testing"
	"time"
)

func TestBackoffIsFullJitterUnderItsCeiling(t *testing.T) {
	base, max := 100*time.Millisecond, 4*time.Second
	for n := -2; n < 80; n++ {
		ceil := max
		if n <= 0 {
			ceil = base
		} else if n < 6 {
			ceil = base << n
		}
		lo, hi := ceil, time.Duration(0)
		for range 300 {
			d := FullJitter(base, max, n)
			if d < 0 || d >= ceil {
				t.Fatalf("FullJitter(%s, %s, %d) = %s, outside [0, %s)", base, max, n, d, ceil)
			}
			lo, hi = min(lo, d), maxDuration(hi, d)
		}
		// 300 uniform draws leave a gap of a quarter of the window at either
		// end with probability about 2·0.75³⁰⁰ ≈ 1e-37: jitter, not a constant.
		if lo > ceil/4 || hi < ceil*3/4 {
			t.Errorf("FullJitter(n=%d) spans only %s..%s of [0, %s)", n, lo, hi, ceil)
		}
	}
}

func TestBackoffEdgesNeverPanicOrOverflow(t *testing.T) {
	cases := []struct {
		base, max time.Duration
		n         int
		ceil      time.Duration // the delay must be in [0, ceil), or 0 when ceil is 0
	}{
		{0, time.Second, 3, 0},
		{time.Second, 0, 3, 0},
		{-time.Second, time.Second, 3, 0},
		{time.Second, -time.Second, 3, 0},
		{time.Nanosecond, math.MaxInt64, 62, 1 << 62},
		{time.Nanosecond, math.MaxInt64, 63, math.MaxInt64},
		{time.Hour, math.MaxInt64, 40, math.MaxInt64}, // base·2⁴⁰ overflows
		{time.Second, 2 * time.Minute, math.MaxInt, 2 * time.Minute},
		{time.Second, 2 * time.Minute, math.MinInt, time.Second},
		{3 * time.Second, time.Second, 0, time.Second}, // base above max: max wins
	}
	for _, c := range cases {
		for range 50 {
			d := FullJitter(c.base, c.max, c.n)
			if c.ceil == 0 && d != 0 || c.ceil > 0 && (d < 0 || d >= c.ceil) {
				t.Fatalf("FullJitter(%d, %d, %d) = %d, want in [0, %d)", c.base, c.max, c.n, d, c.ceil)
			}
		}
	}
}

func maxDuration(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
