//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Microsecond}, {99, 990 * time.Microsecond}, {99.9, 999 * time.Microsecond}, {100, time.Millisecond}, {0.01, time.Microsecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	if got := percentile([]time.Duration{7}, 99.9); got != 7 {
		t.Errorf("one sample: %v", got)
	}
}

func TestSortDurations(t *testing.T) {
	got := sortDurations([]time.Duration{3, 1, 2})
	if got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("%v", got)
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{5, 1, 3}
	if m := median(xs); m != 3 {
		t.Errorf("odd: %v", m)
	}
	if xs[0] != 5 {
		t.Error("median sorted its input")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("even: %v", m)
	}
	if m := median(nil); m != 0 {
		t.Errorf("empty: %v", m)
	}
}

func TestHighestPassing(t *testing.T) {
	steps := []rateStep{
		{Rate: 500, OK: 2000, Achieved: 500},
		{Rate: 2000, OK: 1990, Err: 10, Achieved: 2000}, // 0.5% errors: fails
		{Rate: 1000, OK: 1999, Err: 1, Achieved: 990},   // 0.05%, 99% of the rate: passes
		{Rate: 1500, OK: 2000, Achieved: 1300},          // no errors but fell behind: fails
		{Rate: 4000},                                    // nothing completed: fails
	}
	best, ok := highestPassing(steps, 0.001, 0.9)
	if !ok || best.Rate != 1000 {
		t.Fatalf("got %+v %v, want rate 1000", best, ok)
	}
	if _, ok := highestPassing([]rateStep{{Rate: 100, OK: 1, Err: 1, Achieved: 100}}, 0.001, 0.9); ok {
		t.Fatal("a failing step passed")
	}
	if _, ok := highestPassing(nil, 0.001, 0.9); ok {
		t.Fatal("no steps passed")
	}
}

func TestParseRates(t *testing.T) {
	got, err := parseRates("250, 500,1000")
	if err != nil || len(got) != 3 || got[0] != 250 || got[2] != 1000 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "0", "-5", "100,50", "100,100", "abc", "1e3", "10,,20"} {
		if _, err := parseRates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRowGoals(t *testing.T) {
	f := func(v float64) string { return "x" }
	nan := math.NaN()
	cases := []struct {
		r    row
		want string
	}{
		{row{relay: 3, haproxy: 3.3, goal: atMost, limit: 1}, "yes"},
		{row{relay: 4.2, haproxy: 3.3, goal: atMost, limit: 1}, "no"},
		{row{relay: 96, haproxy: 100, goal: atLeast, limit: 0.95}, "yes"},
		{row{relay: 94, haproxy: 100, goal: atLeast, limit: 0.95}, "no"},
		{row{relay: nan, haproxy: 100, goal: atLeast, limit: 0.95}, ""},
		{row{relay: 1, haproxy: 0, goal: atLeast, limit: 0.95}, ""},
		// direct 100, HAProxy adds 40, relay adds 60: 1.5× exactly.
		{row{relay: 160, haproxy: 140, direct: 100, goal: addedAtMost, limit: 1.5}, "yes"},
		{row{relay: 161, haproxy: 140, direct: 100, goal: addedAtMost, limit: 1.5}, "no"},
		// HAProxy faster than direct (noise): the relay must add nothing.
		{row{relay: 99, haproxy: 90, direct: 100, goal: addedAtMost, limit: 1.5}, "yes"},
		{row{relay: 101, haproxy: 90, direct: 100, goal: addedAtMost, limit: 1.5}, "no"},
		{row{relay: 1, haproxy: 1, direct: nan, goal: addedAtMost, limit: 1.5}, ""},
		{row{relay: 1, haproxy: 2}, ""},
	}
	for i, tc := range cases {
		tc.r.format = f
		if got := tc.r.met(); got != tc.want {
			t.Errorf("case %d %+v: met %q, want %q", i, tc.r, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	out := table([]row{
		{name: "RSS per idle conn (KB)", relay: 4.2, haproxy: 3.3, nginx: math.NaN(), direct: math.NaN(), relaySplice: math.NaN(),
			format: func(v float64) string { return fmt.Sprintf("%.1f", v) }, goal: atMost, limit: 1},
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header, rule and one row:\n%s", out)
	}
	want := "| RSS per idle conn (KB) | 4.2 | 3.3 | – | – | 1.27 | ≤ 1.00× | no |"
	if lines[2] != want {
		t.Errorf("row\n got %s\nwant %s", lines[2], want)
	}
}

func TestTableWithSplicingRelay(t *testing.T) {
	f := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	out := table([]row{
		{name: "MiB/s", relay: 700, relaySplice: 950, haproxy: 1000, nginx: 990, direct: 1100, format: f, goal: atLeast, limit: 0.95},
		{name: "idle", relay: 1, relaySplice: math.NaN(), haproxy: 1, nginx: 1, direct: 1, format: f},
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := "| MiB/s | 700 | 1000 | 990 | 1100 | 0.70 | ≥ 0.95× | no | 950 | 0.95 | yes |"
	if len(lines) != 4 || lines[2] != want {
		t.Fatalf("got\n%s\nwant row\n%s", out, want)
	}
	if !strings.HasSuffix(lines[3], "| – | – |  |") {
		t.Errorf("unmeasured splice cell: %s", lines[3])
	}
}

func TestParseSlabinfo(t *testing.T) {
	in := `slabinfo - version: 2.1
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
tw_sock_TCP          165    224    256   16    1 : tunables    0    0    0 : slabdata     14     14      0
TCP                   92    143   2368   13    8 : tunables    0    0    0 : slabdata     11     11      0
eventpoll_epi        486    672    128   32    1 : tunables    0    0    0 : slabdata     21     21      0
`
	got, ok := parseSlabinfo(in)
	if want := int64((92*2368 + 486*128) / 1024); !ok || got != want {
		t.Fatalf("got %d %v, want %d (TIME_WAIT sockets excluded)", got, ok, want)
	}
	for _, bad := range []string{"", "slabinfo - version: 2.1\n", "TCP x 1 2368\n", "TCP 1\n"} {
		if _, ok := parseSlabinfo(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	st, err := parseStat("4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10 18446744073709551615")
	if err != nil || st.ppid != 1 || st.utime != 250 || st.stime != 75 {
		t.Fatalf("%+v %v", st, err)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x S 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S p 1 1 0 -1 0 0 0 0 0 u s"} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestTopGrowth(t *testing.T) {
	before := map[string]int64{"TCP": 1000, "eventpoll_epi": 0, "filp": 500, "tw_sock_TCP": 0}
	after := map[string]int64{"TCP": 21000, "eventpoll_epi": 2560, "filp": 400, "tw_sock_TCP": 99999, "dentry": 4000}
	got := topGrowth(before, after, 10, 2)
	if want := "TCP=+2000B dentry=+400B"; got != want {
		t.Errorf("got %q, want %q (TIME_WAIT and shrinking caches left out)", got, want)
	}
}

func TestCacheGrowth(t *testing.T) {
	before := map[string]int64{"TCP": 1000, "filp": 500}
	after := map[string]int64{"TCP": 3000, "filp": 400, "dentry": 100, "kmalloc-64": 1 << 20}
	if got := cacheGrowth(before, after, socketCaches); got != 2000-100+100 {
		t.Errorf("got %d (only the named caches count, shrinking ones subtract)", got)
	}
}
