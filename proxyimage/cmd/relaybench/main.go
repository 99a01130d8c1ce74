//go:build linux

// Command relaybench measures the agentgate relay next to HAProxy and nginx
// doing the same job (TLS SNI passthrough of one routed name, every other
// name refused, 360 s idle timeout), and a direct client→upstream baseline,
// in one run on loopback:
//
//   - idle: memory per proxied idle TLS connection (process RSS, kernel
//     slab growth and /proc/net/sockstat socket memory) and descriptors;
//   - rate: the highest open-loop new-connection rate with < 0.1% errors
//     and p50/p99 set-up time (TCP connect + TLS handshake end to end);
//   - setup: new connections/s with the proxy's core saturated, and the
//     proxy's CPU per connection there: several closed-loop generator
//     processes send a real ClientHello, a plain upstream answers with a
//     fixed alert record and closes (no TLS crypto on the load side);
//   - throughput: bulk bytes/s through 1 and 16 streams and the proxy's
//     CPU-seconds per GB;
//   - latency: p50/p99/p99.9 of an MQTT QoS 1 PUBLISH→PUBACK round trip to
//     a real broker (mochi-mqtt), open-loop at a fixed rate, timed from the
//     intended send time.
//
// The proxy under test runs alone on CPU 0 (the relay with GOMAXPROCS=1,
// HAProxy with nbthread 1, nginx with one worker); load generators and
// upstreams run on CPU 1. It ends with one table: each metric for relay,
// HAProxy, nginx and direct, the relay/HAProxy ratio and whether the
// relay meets the goal. `make bench` runs it through scripts/bench.sh, which
// installs HAProxy and nginx's stream module if missing; BENCH_QUICK=1 (or
// -quick) runs a reduced version in under a minute.
//
//	go build -o /tmp/relaybench ./proxyimage/cmd/relaybench && /tmp/relaybench
//	/tmp/relaybench -quick
//	/tmp/relaybench -tests idle -n 9500 -paths direct,relay,haproxy,nginx,plain
//
// Every process is capped at 20,000 open files here, so the idle client side
// is split into processes of at most -per-client connections, and a proxy at
// 2 descriptors per connection holds at most ~9,990 proxied connections.
//
// The roles (upstream, client, rate, answer, setup, sink, pump, plain,
// broker, latency) are this same binary re-executed with -role; they are
// internal.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

const benchName = "bench.iot.test"

var (
	role          = flag.String("role", "", "internal: upstream, client, rate, answer, setup, sink, pump, plain, broker or latency")
	quick         = flag.Bool("quick", os.Getenv("BENCH_QUICK") == "1", "reduced run for smoke use (default from BENCH_QUICK=1)")
	paths         = flag.String("paths", "direct,relay,relay-splice,haproxy,nginx", "what to measure, in order (also: plain, the naive io.Copy Go relay; relay-base, see -base-relay; relay-splice and relay-buffered, the relay with that --copy-mode)")
	tests         = flag.String("tests", "idle,rate,setup,throughput,latency", "which measurements")
	timeout       = flag.Duration("timeout", 30*time.Minute, "whole run")
	pprofOn       = flag.Bool("pprof", false, "serve pprof on the relay's admin port (RELAY_DEBUG_PPROF=1) and save CPU/heap profiles in -profile-dir")
	baseRelay     = flag.String("base-relay", "", "a relay binary measured as path relay-base (before/after comparisons)")
	profDir       = flag.String("profile-dir", os.TempDir(), "where -pprof saves profiles")
	haproxySplice = flag.Bool("haproxy-splice", false, "HAProxy with option splice-auto (its default is recv/send)")

	n         = flag.Int("n", 9500, "idle: connections per proxy (rate: connections per step)")
	perClient = flag.Int("per-client", 9000, "idle: connections per client process (20,000 fd cap)")
	settle    = flag.Duration("settle", 5*time.Second, "idle: wait after the last connection before sampling")

	ratesFlag   = flag.String("rates", "500,1000,1500,2000,2500,3000,3500,4000,5000,6000,8000", "rate: target new connections/s, increasing (steps interleaved across paths; a failed step is repeated once)")
	rateCount   = flag.Int("rate-count", 3000, "rate: connections per step")
	connTimeout = flag.Duration("conn-timeout", time.Second, "rate: a connection not set up this long after its intended start is an error")
	maxErr      = flag.Float64("max-err", 0.001, "rate: a step passes with an error fraction below this")
	minAchieved = flag.Float64("min-achieved", 0.9, "rate: ... and at least this fraction of the target rate completed")
	fullHS      = flag.Bool("full-handshakes", false, "rate: full TLS 1.3 handshakes instead of resumed TLS 1.2 ones (the load generator's core then caps the rate)")

	setupGens    = flag.Int("setup-gens", 4, "setup: generator processes (closed loop, on the load core)")
	setupConc    = flag.Int("setup-conc", 16, "setup: connections in flight per generator process")
	setupWarmup  = flag.Duration("setup-warmup", time.Second, "setup: unrecorded start of each window")
	setupWindow  = flag.Duration("setup-window", 5*time.Second, "setup: recorded time per window")
	setupRounds  = flag.Int("setup-rounds", 3, "setup: windows per path, interleaved across paths (medians reported)")
	setupSources = flag.Int("setup-sources", 8, "setup: loopback source addresses the generators spread over (127.0.0.2 onwards)")
	setupClient  = flag.String("setup-client", "epoll", "setup: generator client, epoll (non-blocking sockets, one epoll loop: cheapest) or net (Go's net package)")
	minBusy      = flag.Float64("min-busy", 0.9, "setup: a proxy using less of its core than this is reported as not saturated")
	genIndex     = flag.Int("gen-index", 0, "internal: setup generator number")

	nbytes  = flag.Int64("bytes", 1<<30, "throughput: bytes per run (split over the streams)")
	rounds  = flag.Int("rounds", 5, "throughput and latency: interleaved runs per path (and stream count)")
	streams = flag.Int("streams", 1, "internal: pump streams")

	rate     = flag.Int("rate", 1000, "latency: PUBLISH messages per second")
	duration = flag.Duration("duration", 10*time.Second, "latency: recorded time per path, split over -rounds windows")
	warmup   = flag.Duration("warmup", 500*time.Millisecond, "latency: unrecorded start of each window")

	target   = flag.String("target", "", "internal: address to connect to")
	upstream = flag.String("upstream", "", "internal: plain relay upstream")
)

// quickDefaults apply under -quick to every flag not set explicitly.
var quickDefaults = map[string]string{
	"paths": "direct,relay,haproxy,nginx", "n": "400", "settle": "500ms", "rates": "1000,4000", "rate-count": "300",
	"bytes": "134217728", "rounds": "1", "rate": "500", "duration": "1s", "warmup": "200ms",
	"setup-warmup": "300ms", "setup-window": "1s", "setup-rounds": "1",
}

func main() {
	flag.Parse()
	if *quick && *role == "" {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				if err := flag.Set(name, v); err != nil {
					panic(err)
				}
			}
		}
	}
	var err error
	switch *role {
	case "upstream":
		err = runUpstream()
	case "client":
		err = runClient()
	case "rate":
		err = runRate()
	case "answer":
		err = runAnswer()
	case "setup":
		err = runSetupGen()
	case "sink":
		err = runSink()
	case "pump":
		err = runPump()
	case "plain":
		err = runPlain()
	case "broker":
		err = runBroker()
	case "latency":
		err = runLatency()
	case "":
		err = orchestrate()
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
