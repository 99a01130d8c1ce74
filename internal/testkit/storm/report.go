package storm

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// Print writes the storm's measurements next to the account defaults
// (budget.go).
func (r Result) Print(w io.Writer) {
	drain := "lab default, deployed ÷ 100"
	if r.DrainTimeout > 0 {
		drain = r.DrainTimeout.String()
	}
	fmt.Fprintf(w, "Reconnect storm: %d agents (real agent library) in %d client processes, two relays; %s to the relay carrying %d (drain timeout %s)\n",
		r.Agents, r.Processes, r.Signal, r.OnRelay, drain)
	fmt.Fprintf(w, "agents' first reconnect after a lost connection: backoff floor + up to %s (--reconnect-spread)\n", r.ReconnectSpread)
	fmt.Fprintf(w, "fleet's first connection: every agent subscribed after %s\n", r.StartedIn.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "signal to recovery + 1 s\tpeak /s (1 s window)\twindow from\ttotal\taccount default /s\t")
	budget := func(q int) string {
		if q == 0 {
			return "not documented (unverified)"
		}
		return fmt.Sprint(q)
	}
	at := func(d time.Duration) string { return "+" + d.Round(100*time.Millisecond).String() }
	rt := r.Rates
	fmt.Fprintf(tw, "connection attempts the agents offered\t%d\t%s\t%d\t\t\n", rt.PeakOffered, at(rt.PeakOfferedAt), rt.Offered)
	fmt.Fprintf(tw, "  of them not refused at TCP (would reach IoT)\t%d\t%s\t%d\t%s\t\n", rt.PeakReaching, at(rt.PeakReachingAt), rt.Reaching, budget(QuotaConnectsPerSecond))
	fmt.Fprintf(tw, "credentials-provider calls (stand-in)\t%d\t\t%d\t%s\t\n", rt.PeakCredentials, rt.Credentials, budget(QuotaCredentialsPerSecond))
	fmt.Fprintf(tw, "WebSocket upgrades (IoT gateway stand-in)\t%d\t%s\t%d\t\t\n", rt.PeakUpgrades, at(rt.PeakUpgradesAt), rt.Upgrades)
	fmt.Fprintf(tw, "MQTT CONNECTs (broker)\t%d\t%s\t%d\t%s\t\n", rt.PeakConnects, at(rt.PeakConnectsAt), rt.Connects, budget(QuotaConnectsPerSecond))
	fmt.Fprintf(tw, "subscriptions (topic filters, broker)\t%d\t\t%d\t%s\t\n", rt.PeakSubscriptions, rt.Subscriptions, budget(QuotaSubscriptionsPerSecond))
	tw.Flush()
	fmt.Fprint(w, "Route 53 health checks (stand-in) from the signal:")
	if len(r.HealthFlips) == 0 {
		fmt.Fprint(w, " no change")
	}
	for _, f := range r.HealthFlips {
		state := "unhealthy"
		if f.Healthy {
			state = "healthy"
		}
		fmt.Fprintf(w, " %s %s at +%s;", f.Addr, state, f.After.Round(10*time.Millisecond))
	}
	fmt.Fprintln(w)
	if r.Timeline != nil {
		r.Timeline.Print(w)
	}
	fmt.Fprintf(w, "recovery: every agent connected again %s after the signal\n", r.Recovery.Round(time.Millisecond))
	fmt.Fprintf(w, "signal to recovery: %s\n", r.Busy)
	fmt.Fprintf(w, "QoS 1 messages to the agents: %d published in %d rounds (before, during, after), %d delivered, %d lost; broker dropped %d\n",
		r.Published, r.Rounds, r.Delivered, r.Lost, r.BrokerDropped)
	fmt.Fprintf(w, "client memory per agent: RSS %d KiB (Go heap %d KiB, stacks %d KiB, %.1f goroutines)\n",
		r.RSSPerAgent>>10, r.HeapPerAgent>>10, r.StackPerAgent>>10, r.GoroutinesPerAgent)
}

// Print writes the timeline one line per second since the signal: the
// agents' side (connections lost, attempts offered, failed attempts by
// cause, upgrades and CONNACKs they completed, offer-to-CONNACK latency)
// and the stand-ins' side.
func (t *Timeline) Print(w io.Writer) {
	fmt.Fprintln(w, "per second since the signal; the agents: connections lost, attempts offered, attempts failed by cause (TCP refused at the signalled")
	fmt.Fprintln(w, "relay's IP, refused elsewhere, timeout, reset, other), upgrades and CONNACKs done, attempt start to CONNACK mean and max | the stand-ins;")
	fmt.Fprintln(w, "pub: QoS 1 messages the storm published to the agents (load on the test process itself)")
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "s\tlost\toffered\tref-sig\tref\ttimeout\treset\tother\tupgraded\tconnacked\tlat-mean\tlat-max\t|\tcreds\tupgrades\tCONNECTs\tfilters\tpub\t")
	for i, s := range t.Seconds() {
		a, v := s.Agents, s.Seen
		mean := "-"
		if a.Connacked > 0 {
			mean = fmt.Sprintf("%dms", a.LatencySumMs/a.Connacked)
		}
		maxLat := "-"
		if a.Connacked > 0 {
			maxLat = fmt.Sprintf("%dms", a.LatencyMaxMs)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t|\t%d\t%d\t%d\t%d\t%d\t\n", i,
			a.Lost, a.Offered, a.RefusedSignalled, a.Refused, a.Timeouts, a.Resets, a.OtherFailures, a.Upgraded, a.Connacked, mean, maxLat,
			v.Credentials, v.Upgrades, v.Connects, v.Filters, v.Published)
	}
	tw.Flush()
}

// WriteCSV writes the timeline one row per slot, ms since the signal.
func (t *Timeline) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"ms", "lost", "offered", "refused_signalled", "refused", "timeouts", "resets", "other_failures", "upgraded", "connacked",
		"latency_sum_ms", "latency_max_ms", "credentials", "upgrades", "connects", "filters", "published"})
	for i, s := range t.Slots {
		a, v := s.Agents, s.Seen
		row := []int64{int64(i) * SlotWidth.Milliseconds(), a.Lost, a.Offered, a.RefusedSignalled, a.Refused, a.Timeouts, a.Resets, a.OtherFailures,
			a.Upgraded, a.Connacked, a.LatencySumMs, a.LatencyMaxMs, v.Credentials, v.Upgrades, v.Connects, v.Filters, v.Published}
		rec := make([]string, len(row))
		for j, n := range row {
			rec[j] = strconv.FormatInt(n, 10)
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}
