// Package storm is the reconnect-storm test: thousands of simulated agents,
// each the real reference agent (package agent) with its own certificate
// and client ID, split over several client processes, connect through two
// real relay processes behind the load balancer stand-in to the mochi
// broker and the credentials stand-in (internal/testkit/agentlab); then
// one relay gets SIGTERM (a drain, as on every deploy) or SIGKILL (a task
// or host lost) and the whole share of the fleet it carried reconnects
// through the other. The stand-ins count what AWS would: credentials
// calls, WebSocket upgrades, MQTT CONNECTs and subscribed topic filters;
// Run reports their peak per-second rates against AWS IoT Core's
// account defaults (budget.go), the time until every agent is connected
// again, and how many QoS 1 messages published to the agents across the
// storm never arrived (must be 0).
//
// `make storm` runs the full size (docs/benchmarks.md, "Reconnect
// storm"); TestQuickStorm runs a few dozen agents in every `make test`.
package storm

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// Config sizes one storm.
type Config struct {
	// Agents is the fleet; Processes the client processes it is split
	// over (each holds Agents/Processes agents).
	Agents, Processes int
	// Signal is what the first relay gets: syscall.SIGTERM (drain) or
	// syscall.SIGKILL.
	Signal syscall.Signal
	// StartRate is how many agents start per second, all processes
	// together, for the fleet's first connection (not measured); default
	// 200.
	StartRate float64
	// DrainTimeout is the relays' --drain-timeout and the load balancer's
	// unhealthy draining interval (deployed: 110 s); 0 keeps the lab's
	// (deployed ÷ agentlab.TimeScale, 1.1 s).
	DrainTimeout time.Duration
	// Dir receives the lab's files and the client specs.
	Dir string
	// Executable is the client program: a binary that runs ClientMain when
	// ClientEnv is set (the test binary itself); default os.Executable().
	Executable string
	// ReconnectSpread is the agents' agent.Config.ReconnectSpread: their
	// first reconnect after the relay is lost waits the backoff floor plus
	// up to this. 0 takes DefaultSpread(Agents); at most
	// agent.DefaultBackoffMax.
	ReconnectSpread time.Duration
	// Log reports progress; nil is silent.
	Log func(format string, args ...any)
	// Patience bounds each wait (a hang guard, not a threshold); default
	// 10 min.
	Patience time.Duration
}

// Result is what one storm measured.
type Result struct {
	Agents, Processes int
	Signal            string
	DrainTimeout      time.Duration
	// ReconnectSpread is the agents' first-reconnect spread.
	ReconnectSpread time.Duration
	// StartedIn is how long the fleet's first connection took (every agent
	// subscribed), at StartRate.
	StartedIn time.Duration
	// OnRelay is how many agents the signalled relay carried.
	OnRelay int
	// Rates are the peak rates and totals from the signal until every
	// agent was back (and 1 s more): what the agents offered and what the
	// stand-ins saw; Timeline is that time slot by slot.
	Rates    Rates
	Timeline *Timeline
	// HealthFlips are the Route 53 health-check stand-in's status changes
	// from the signal to recovery: while every address is unhealthy, DNS
	// fails open and answers the signalled relay's address too.
	HealthFlips []HealthFlip
	// Busy is how busy the host and the test process were from the
	// signal to recovery.
	Busy Busy
	// Recovery is the time from the signal until every agent the relay
	// carried had an MQTT session established again and the broker had the
	// whole fleet connected.
	Recovery time.Duration
	// Published QoS 1 messages (one per agent per round: before, during
	// and after the storm), Delivered distinct ones, Lost the difference.
	Published, Delivered, Lost int64
	Rounds                     int
	// BrokerDropped is what mochi itself dropped (session store full):
	// not the path's loss, reported apart.
	BrokerDropped int64
	// RSSPerAgent is the client processes' resident-set growth from before
	// their agents started to the end, divided by the agents (bytes); the
	// Heap and Stack figures are the Go runtime's, per agent.
	RSSPerAgent, HeapPerAgent, StackPerAgent uint64
	GoroutinesPerAgent                       float64
}

// Run runs one storm.
func Run(cfg Config) (res Result, err error) {
	if cfg.Agents < 1 || cfg.Processes < 1 || cfg.Processes > cfg.Agents {
		return res, fmt.Errorf("storm: %d agents over %d processes", cfg.Agents, cfg.Processes)
	}
	if cfg.Signal != syscall.SIGTERM && cfg.Signal != syscall.SIGKILL {
		return res, fmt.Errorf("storm: signal %v: want SIGTERM or SIGKILL", cfg.Signal)
	}
	if cfg.StartRate <= 0 {
		cfg.StartRate = 200
	}
	if cfg.ReconnectSpread == 0 {
		cfg.ReconnectSpread = DefaultSpread(cfg.Agents)
	}
	if cfg.ReconnectSpread < 0 || cfg.ReconnectSpread > agent.DefaultBackoffMax {
		return res, fmt.Errorf("storm: reconnect spread %s: want 0 < spread ≤ %s", cfg.ReconnectSpread, agent.DefaultBackoffMax)
	}
	if cfg.Patience <= 0 {
		cfg.Patience = 10 * time.Minute
	}
	logf := cfg.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.Executable == "" {
		if cfg.Executable, err = os.Executable(); err != nil {
			return res, err
		}
	}
	if err := checkFiles(cfg.Agents); err != nil {
		return res, err
	}
	res = Result{Agents: cfg.Agents, Processes: cfg.Processes, Signal: map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[cfg.Signal], DrainTimeout: cfg.DrainTimeout,
		ReconnectSpread: cfg.ReconnectSpread}

	// The relays as deployed (agentlab.RelayEnv) with room for the whole
	// fleet on one relay, and no per-source limits: every simulated agent
	// comes from 127.0.0.1, where a real fleet comes from thousands of
	// addresses.
	maxConns := strconv.Itoa(max(relayspec.DefaultMaxConnsPerTask, cfg.Agents+cfg.Agents/5+100))
	extra := map[string]string{
		relayspec.EnvName(relayspec.FlagMaxConns):          maxConns,
		relayspec.EnvName(relayspec.FlagMaxConnsPerSource): maxConns,
		relayspec.EnvPrefix + "SOURCE_RATE":                "0",
	}
	// The health checks keep their deployed timeouts (the host is loaded;
	// see agentlab.Options.DeployedCheckTimeouts).
	opts := agentlab.Options{CredentialsDuration: time.Hour, RelayEnvExtra: extra, BrokerInMemory: true, DeployedCheckTimeouts: true}
	if cfg.DrainTimeout > 0 {
		extra[relayspec.EnvName(relayspec.FlagDrainTimeout)] = relayspec.Duration(cfg.DrainTimeout)
		opts.UnhealthyDrainingInterval = cfg.DrainTimeout
	}
	l, err := agentlab.Start(cfg.Dir, opts)
	if err != nil {
		return res, err
	}
	defer l.Close()
	// Weighted records at equal weights, as constructs/agentdns deploys the
	// home region's static IPs: each lookup answers one address at random,
	// so the fleet splits over the two relays (the lab's default
	// multi-address mode answers in a fixed order and would put every
	// agent on the first).
	var records []awsstandin.WeightedRecord
	for _, ip := range agentlab.RelayIPs {
		records = append(records, awsstandin.WeightedRecord{Addr: ip, Weight: 1, Healthy: true})
	}
	l.DNS.SetWeighted(records...)
	flips := &healthFlips{}
	l.Checks.Watch(flips.record)
	watch := newBrokerWatch()
	if err := l.Broker.AddHook(watch, nil); err != nil {
		return res, err
	}

	died := make(chan error, cfg.Processes)
	clients, err := startClients(cfg, l, died)
	defer stopClients(clients)
	if err != nil {
		return res, err
	}
	start := time.Now()
	logf("%d agents starting in %d processes at %.0f/s", cfg.Agents, cfg.Processes, cfg.StartRate)
	if err := await(watch, died, cfg.Patience, "every agent subscribed", func() bool {
		_, sub, _ := watch.state()
		return sub >= cfg.Agents
	}); err != nil {
		return res, err
	}
	res.StartedIn = time.Since(start)
	logf("all %d agents subscribed after %s", cfg.Agents, res.StartedIn.Round(time.Millisecond))

	round := 0
	// One QoS 1 message to every agent per round; an agent whose session
	// the broker is taking over right now gets it a moment later
	// (brokerWatch.OnSessionEstablish).
	publish := func() error {
		round++
		pending := make([]int, cfg.Agents)
		for i := range pending {
			pending[i] = i
		}
		for len(pending) > 0 {
			var later []int
			for _, i := range pending {
				ok, err := watch.publishTo(l.Broker, ThingName(i), Topic(i), payload(round))
				if err != nil {
					return err
				}
				if !ok {
					later = append(later, i)
				}
			}
			if pending = later; len(pending) > 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
		res.Published += int64(cfg.Agents)
		return nil
	}
	if err := publish(); err != nil {
		return res, err
	}
	if err := awaitDelivered(clients, res.Published, cfg.Patience); err != nil {
		return res, err
	}

	relay := l.Relays[0] // zone 0's, on RelayIPs[0] (ClientSpec.SignalledAddr)
	onRelay, err := relay.Metric("agentgate_relay_connections_active", "route="+agentlab.IoTHost)
	if err != nil {
		return res, err
	}
	res.OnRelay = int(onRelay)
	counters := startCounters(watch.seen, SlotWidth/2, func() (int64, int64) { return l.Creds.Total(), l.Gateway.Accepted() })
	defer counters.finish() // on the early returns; a no-op after the storm's own
	busy := startBusy(os.Getenv(ProfileEnv), res.Signal)
	defer busy.finish()
	t0 := time.Now()
	watch.startStorm(t0)
	logf("%s to the relay carrying %d agents", res.Signal, res.OnRelay)
	terminated := make(chan struct{})
	if cfg.Signal == syscall.SIGKILL {
		relay.Kill()
		close(terminated)
	} else {
		go func() { relay.Terminate(); close(terminated) }()
	}
	// Publish a round at once, one a second for 5 s, then one every 5 s
	// until every agent is back.
	if err := publish(); err != nil {
		return res, err
	}
	tick := time.NewTicker(time.Second)
	guard := time.After(cfg.Patience)
	lastLog := t0
	for {
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			conn, _, back := watch.state()
			logf("+%s: %d connected, %d of %d back; %d credentials calls, %d upgrades accepted, %d refused; agents' failed steps %s",
				time.Since(t0).Round(time.Second), conn, back, res.OnRelay, l.Creds.Total(), l.Gateway.Accepted(), l.Gateway.Refused(), failures(clients))
		}
		conn, _, back := watch.state()
		if back >= res.OnRelay && conn >= cfg.Agents {
			res.Recovery = time.Since(t0)
			break
		}
		select {
		case <-watch.changed:
		case <-tick.C:
			since := time.Since(t0)
			if round < MaxRounds-1 && (since < 5*time.Second || since%(5*time.Second) < time.Second) {
				if err := publish(); err != nil {
					tick.Stop()
					return res, err
				}
			}
		case err := <-died:
			tick.Stop()
			return res, err
		case <-guard:
			tick.Stop()
			return res, fmt.Errorf("storm: after %s, %d agents connected, %d of %d back", cfg.Patience, conn, back, res.OnRelay)
		}
	}
	tick.Stop()
	res.Busy = busy.finish()
	logf("every agent back %s after the signal", res.Recovery.Round(time.Millisecond))
	time.Sleep(time.Second) // one more rate window: the storm's tail
	counters.finish()
	tl := newTimeline(slotOf(t0), slotOf(time.Now()))
	tl.addSeen(watch.seen.snapshot())
	for _, c := range clients {
		slots, err := c.timeline()
		if err != nil {
			return res, err
		}
		tl.addAgents(slots)
	}
	res.Timeline, res.Rates = tl, tl.Rates()
	res.HealthFlips = flips.since(t0)
	if err := publish(); err != nil {
		return res, err
	}
	res.Rounds = round
	delivered, reps, err := collect(clients, res.Published, cfg.Patience)
	res.Delivered, res.Lost = delivered, res.Published-delivered
	if err != nil && res.Lost == 0 {
		return res, err
	}
	res.BrokerDropped = l.Regions[0].Dropped()
	var rssGrowth, heap, stack uint64
	var gor int
	for _, r := range reps {
		if r.RSSNow > r.RSSBefore {
			rssGrowth += r.RSSNow - r.RSSBefore
		}
		heap += r.HeapInuse
		stack += r.StackInuse
		gor += r.Goroutines
	}
	n := uint64(cfg.Agents)
	res.RSSPerAgent, res.HeapPerAgent, res.StackPerAgent = rssGrowth/n, heap/n, stack/n
	res.GoroutinesPerAgent = float64(gor) / float64(n)
	select {
	case <-terminated:
	case <-time.After(cfg.Patience):
		return res, errors.New("storm: the signalled relay did not exit")
	}
	return res, nil
}

// checkFiles makes sure this process may open what the lab needs: per
// agent the load balancer stand-in's two sockets and the IoT gateway
// stand-in's one (the broker is reached in memory), plus a margin for the
// credentials connections and the rest. It raises the soft limit to the
// hard one first.
func checkFiles(agents int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if need := uint64(3*agents + 1000); lim.Cur < need {
		return fmt.Errorf("storm: %d agents need about %d open files in the test process (load balancer and gateway stand-ins), the limit is %d: run fewer agents", agents, need, lim.Cur)
	}
	return nil
}

// await waits until cond holds (checked at every broker change), a client
// process dies, or patience runs out.
func await(w *brokerWatch, died <-chan error, patience time.Duration, what string, cond func() bool) error {
	guard := time.After(patience)
	for !cond() {
		select {
		case <-w.changed:
		case err := <-died:
			return err
		case <-guard:
			c, s, b := w.state()
			return fmt.Errorf("storm: no %s after %s (%d connected, %d subscribed, %d back)", what, patience, c, s, b)
		}
	}
	return nil
}
