package main

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted, or 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The epsilon keeps float error (0.999×1000 = 999.0000000000001) from
	// moving the rank up by one.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// sortDurations sorts d in place and returns it.
func sortDurations(d []time.Duration) []time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d
}

// median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rateStep is one step of the connection-rate search: a target rate held
// for a fixed number of connections.
type rateStep struct {
	Rate     int             // target new connections per second
	OK, Err  int             // completed and failed (or late) connections
	Achieved float64         // connections completed per second of the step
	P50, P99 time.Duration   // set-up time from the intended start
	samples  []time.Duration // unsorted, only while the step runs
}

// errFrac is the step's error fraction.
func (s rateStep) errFrac() float64 {
	if s.OK+s.Err == 0 {
		return 1
	}
	return float64(s.Err) / float64(s.OK+s.Err)
}

// passed says whether a step held its rate: an error fraction below maxErr
// and at least minAchieved of the target rate completed (an open-loop
// generator against a saturated proxy sees a growing backlog, which shows
// up as lateness before it shows up as errors).
func (s rateStep) passed(maxErr, minAchieved float64) bool {
	return s.errFrac() < maxErr && s.Achieved >= minAchieved*float64(s.Rate)
}

// highestPassing returns the highest-rate step that passed, and false if
// none did. Steps need not be sorted.
func highestPassing(steps []rateStep, maxErr, minAchieved float64) (rateStep, bool) {
	var best rateStep
	found := false
	for _, s := range steps {
		if s.passed(maxErr, minAchieved) && (!found || s.Rate > best.Rate) {
			best, found = s, true
		}
	}
	return best, found
}

// parseRates parses a comma-separated list of positive, strictly
// increasing rates.
func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("rate %q: want a positive integer", f)
		}
		if len(out) > 0 && r <= out[len(out)-1] {
			return nil, fmt.Errorf("rates must increase: %d after %d", r, out[len(out)-1])
		}
		out = append(out, r)
	}
	return out, nil
}

// goal is what a row requires of the relay: its metric relative to HAProxy's.
type goal int

const (
	noGoal      goal = iota
	atMost           // relay/HAProxy ratio ≤ limit
	atLeast          // relay/HAProxy ratio ≥ limit
	addedAtMost      // (relay − direct) ≤ limit × (HAProxy − direct)
)

// row is one metric in the final table. A NaN value was not measured.
type row struct {
	name                          string
	relay, haproxy, nginx, direct float64
	relaySplice                   float64 // the relay with --copy-mode splice
	format                        func(float64) string
	goal                          goal
	limit                         float64
	// notes qualify single cells, keyed by path ("relay", "haproxy",
	// "nginx", "direct", "relay-splice"): printed in parentheses after the
	// value, and a goal judged on a noted relay or HAProxy value says so.
	notes map[string]string
}

// ratio is relay/HAProxy, NaN when either is missing or HAProxy is zero.
func (r row) ratio() float64 {
	if math.IsNaN(r.relay) || math.IsNaN(r.haproxy) || r.haproxy == 0 {
		return math.NaN()
	}
	return r.relay / r.haproxy
}

// met says whether the relay meets the row's goal: "yes", "no", or "" for
// no goal or missing data.
func (r row) met() string {
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	switch r.goal {
	case atMost, atLeast:
		q := r.ratio()
		if math.IsNaN(q) {
			return ""
		}
		if r.goal == atMost {
			return yes(q <= r.limit)
		}
		return yes(q >= r.limit)
	case addedAtMost:
		if math.IsNaN(r.relay) || math.IsNaN(r.haproxy) || math.IsNaN(r.direct) {
			return ""
		}
		relayAdded, haAdded := r.relay-r.direct, r.haproxy-r.direct
		// HAProxy adding nothing measurable leaves no room above zero.
		return yes(relayAdded <= r.limit*max(haAdded, 0))
	}
	return ""
}

// goalText describes the goal for the table.
func (r row) goalText() string {
	switch r.goal {
	case atMost:
		return fmt.Sprintf("≤ %.2f×", r.limit)
	case atLeast:
		return fmt.Sprintf("≥ %.2f×", r.limit)
	case addedAtMost:
		return fmt.Sprintf("added ≤ %.1f× HAProxy's", r.limit)
	}
	return ""
}

// splice is the row with the splicing relay in the relay's place.
func (r row) splice() row {
	r.relay = r.relaySplice
	if r.notes != nil {
		n := map[string]string{}
		for k, v := range r.notes {
			n[k] = v
		}
		n["relay"] = r.notes["relay-splice"]
		r.notes = n
	}
	return r
}

// metText is met(), marked when the relay's or HAProxy's value carries a
// note (e.g. measured below saturation).
func (r row) metText() string {
	m := r.met()
	if m != "" && (r.notes["relay"] != "" || r.notes["haproxy"] != "") {
		m += " (see notes)"
	}
	return m
}

// table renders rows as one Markdown table; the splicing relay's columns
// appear only if it was measured.
func table(rows []row) string {
	withS := false
	for _, r := range rows {
		if !math.IsNaN(r.relaySplice) && r.relaySplice != 0 {
			withS = true
		}
	}
	var b strings.Builder
	if withS {
		b.WriteString("| metric | relay | HAProxy | nginx | direct | relay/HAProxy | goal | met | relay, splice | splice/HAProxy | met |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	} else {
		b.WriteString("| metric | relay | HAProxy | nginx | direct | relay/HAProxy | goal | met |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
	}
	for _, r := range rows {
		cell := func(v float64, path string) string {
			if math.IsNaN(v) {
				return "–"
			}
			if n := r.notes[path]; n != "" {
				return r.format(v) + " (" + n + ")"
			}
			return r.format(v)
		}
		ratio := func(r row) string {
			if v := r.ratio(); !math.IsNaN(v) {
				return fmt.Sprintf("%.2f", v)
			}
			return "–"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |", r.name,
			cell(r.relay, "relay"), cell(r.haproxy, "haproxy"), cell(r.nginx, "nginx"), cell(r.direct, "direct"), ratio(r), r.goalText(), r.metText())
		if withS {
			fmt.Fprintf(&b, " %s | %s | %s |", cell(r.relaySplice, "relay-splice"), ratio(r.splice()), r.splice().metText())
		}
		b.WriteString("\n")
	}
	return b.String()
}
