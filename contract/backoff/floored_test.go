package backoff

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// TestFlooredBoundsAndSpread: with a seeded source, every delay of attempt n
// lies in [floor, floor+min(max−floor, base·2ⁿ)), and 20,000 draws fill
// each tenth of that window with 10 % ± 1.5 % of them (a uniform spread:
// the seed makes the run deterministic, the margin is ~7 standard
// deviations, so a correct rule cannot fail it and a clumped one cannot
// pass).
func TestFlooredBoundsAndSpread(t *testing.T) {
	src := rand.New(rand.NewPCG(16, 2))
	floor, base, max := time.Second, time.Second, 2*time.Minute
	for n := 0; n < 12; n++ {
		window := min(max-floor, base<<n)
		const draws = 20000
		var buckets [10]int
		for range draws {
			d := Floored(src, floor, base, max, n)
			if d < floor || d >= floor+window {
				t.Fatalf("Floored(n=%d) = %s, outside [%s, %s)", n, d, floor, floor+window)
			}
			buckets[int((d-floor)*10/window)]++
		}
		for i, c := range buckets {
			if c < draws*85/1000 || c > draws*115/1000 {
				t.Errorf("Floored(n=%d): tenth %d of the window holds %d of %d draws, want about %d", n, i, c, draws, draws/10)
			}
		}
	}
}

// TestFlooredSameSeedSameDelays: the source decides everything.
func TestFlooredSameSeedSameDelays(t *testing.T) {
	a, b := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	for n := range 20 {
		if x, y := Floored(a, time.Second, time.Second, time.Minute, n), Floored(b, time.Second, time.Second, time.Minute, n); x != y {
			t.Fatalf("attempt %d: %s and %s from the same seed", n, x, y)
		}
	}
}

func TestFlooredEdges(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	cases := []struct {
		name             string
		floor, base, max time.Duration
		n                int
		lo, hi           time.Duration // the delay must be in [lo, hi), or exactly lo when lo == hi
	}{
		{"no floor is full jitter", 0, time.Second, time.Minute, 2, 0, 4 * time.Second},
		{"negative floor counts as 0", -time.Second, time.Second, time.Minute, 0, 0, time.Second},
		{"base 0: the floor", time.Second, 0, time.Minute, 5, time.Second, time.Second},
		{"max at the floor: the floor", time.Second, time.Second, time.Second, 5, time.Second, time.Second},
		{"max below the floor: max", 3 * time.Second, time.Second, time.Second, 5, time.Second, time.Second},
		{"max 0: 0", time.Second, time.Second, 0, 5, 0, 0},
		{"n < 0 counts as 0", time.Second, time.Second, time.Minute, math.MinInt, time.Second, 2 * time.Second},
		{"n = 63 overflows: the whole window", time.Second, time.Nanosecond, math.MaxInt64, 63, time.Second, math.MaxInt64},
		{"n = MaxInt: the whole window", time.Second, time.Second, 2 * time.Minute, math.MaxInt, time.Second, 2 * time.Minute},
		{"huge base·2ⁿ overflows: the whole window", time.Second, time.Hour, math.MaxInt64, 40, time.Second, math.MaxInt64},
	}
	for _, c := range cases {
		for range 200 {
			d := Floored(src, c.floor, c.base, c.max, c.n)
			if c.lo == c.hi && d != c.lo || c.lo < c.hi && (d < c.lo || d >= c.hi) {
				t.Fatalf("%s: Floored(%s, %s, %s, %d) = %s, want in [%s, %s)", c.name, c.floor, c.base, c.max, c.n, d, c.lo, c.hi)
			}
		}
	}
}

// TestFirstReconnectSpreadsOverTheSpread: a fleet cut at once comes back
// spread evenly over [floor, floor+spread), never sooner, never later, each
// tenth carrying 10 % ± 1.5 % (seeded: deterministic); a spread beyond
// max−floor is clamped to it.
func TestFirstReconnectSpreadsOverTheSpread(t *testing.T) {
	src := rand.New(rand.NewPCG(16, 16))
	floor, max := time.Second, 2*time.Minute
	for _, spread := range []time.Duration{time.Second, 6 * time.Second, DefaultReconnectSpread} {
		const fleet = 20000
		var tenths [10]int
		for range fleet {
			d := FirstReconnect(src, floor, spread, max)
			if d < floor || d >= floor+spread {
				t.Fatalf("spread %s: delay %s outside [%s, %s)", spread, d, floor, floor+spread)
			}
			tenths[(d-floor)*10/spread]++
		}
		for i, c := range tenths {
			if c < fleet*85/1000 || c > fleet*115/1000 {
				t.Errorf("spread %s: tenth %d holds %d of %d, want about %d", spread, i, c, fleet, fleet/10)
			}
		}
	}
	for range 100 {
		if d := FirstReconnect(src, time.Second, time.Hour, 3*time.Second); d < time.Second || d >= 3*time.Second {
			t.Fatalf("spread above max: %s outside [1s, 3s)", d)
		}
	}
	if d := FirstReconnect(src, time.Second, 0, time.Minute); d != time.Second {
		t.Fatalf("spread 0: %s, want the floor", d)
	}
}
