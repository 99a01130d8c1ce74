package storm

import (
	"fmt"
	"io"
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
	fmt.Fprintln(tw, "at the stand-ins, signal to recovery + 1 s\tpeak /s (1 s window)\ttotal\taccount default /s\t")
	budget := func(q int) string {
		if q == 0 {
			return "not documented (unverified)"
		}
		return fmt.Sprint(q)
	}
	fmt.Fprintf(tw, "credentials-provider calls\t%.0f\t%d\t%s\t\n", r.Rates.PeakCredentials, r.Rates.Credentials, budget(QuotaCredentialsPerSecond))
	fmt.Fprintf(tw, "WebSocket upgrades (IoT gateway)\t%.0f\t%d\t\t\n", r.Rates.PeakUpgrades, r.Rates.Upgrades)
	fmt.Fprintf(tw, "MQTT CONNECTs (broker)\t%.0f\t%d\t%s\t\n", r.Rates.PeakConnects, r.Rates.Connects, budget(QuotaConnectsPerSecond))
	fmt.Fprintf(tw, "subscriptions (topic filters)\t%.0f\t%d\t%s\t\n", r.Rates.PeakSubscriptions, r.Rates.Subscriptions, budget(QuotaSubscriptionsPerSecond))
	tw.Flush()
	fmt.Fprintf(w, "recovery: every agent connected again %s after the signal\n", r.Recovery.Round(time.Millisecond))
	fmt.Fprintf(w, "QoS 1 messages to the agents: %d published in %d rounds (before, during, after), %d delivered, %d lost; broker dropped %d\n",
		r.Published, r.Rounds, r.Delivered, r.Lost, r.BrokerDropped)
	fmt.Fprintf(w, "client memory per agent: RSS %d KiB (Go heap %d KiB, stacks %d KiB, %.1f goroutines)\n",
		r.RSSPerAgent>>10, r.HeapPerAgent>>10, r.StackPerAgent>>10, r.GoroutinesPerAgent)
}
