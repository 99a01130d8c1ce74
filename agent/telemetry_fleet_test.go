package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// TestTelemetryFromManyAgents runs simulated agents (the reference agent,
// certificate transport, one certificate each) behind the lab's relays,
// each sending records through Basic Ingest to the lab's telemetry rule,
// and checks per-agent order and no loss on the stream. It reports
// messages per second, end-to-end latency (record produced → rule put it
// on the stream) and loss. AGENTGATE_TELEMETRY_AGENTS and
// AGENTGATE_TELEMETRY_RECORDS size it (default 10 agents × 200 records);
// all records are added at once unless AGENTGATE_TELEMETRY_EVERY (a
// duration) paces each agent to one record per interval. docs/data-plane.md
// has measured runs.
func TestTelemetryFromManyAgents(t *testing.T) {
	agents, records := envInt(t, "AGENTGATE_TELEMETRY_AGENTS", 10), envInt(t, "AGENTGATE_TELEMETRY_RECORDS", 200)
	l := startLab(t, agentlab.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	tels := make([]*agent.Telemetry, agents)
	ups := make([]<-chan struct{}, agents)
	for i := range agents {
		thing := fmt.Sprintf("sim-%05d", i)
		cert, err := l.CA.ClientLeaf(thing)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(agent.Config{CustomerID: agentlab.CustomerID, ThingName: thing, Transport: agent.TransportCertificate,
			IoTEndpoint: agentlab.IoTHost, Certificate: cert, RootCAs: l.CA.Pool,
			Dialer:    &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: l.RelayPort, Resolver: l.DNS.Resolver(), Timeout: 10 * time.Second},
			KeepAlive: 60 * time.Second, BackoffBase: 200 * time.Millisecond, BackoffMax: 5 * time.Second, ConnectTimeout: 60 * time.Second,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		tels[i], err = a.NewTelemetry(agent.TelemetryConfig{MaxBatchRecords: 20, FlushInterval: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ups[i], _ = a.Subscribed()
		wg.Add(2)
		go func() { defer wg.Done(); _ = a.Run(ctx) }()
		go func(tel *agent.Telemetry) { defer wg.Done(); _ = tel.Run(ctx) }(tels[i])
	}
	guard := time.After(10 * time.Minute) // deadlock guard for the largest runs
	for i, up := range ups {
		select {
		case <-up:
		case <-guard:
			t.Fatalf("agent %d never subscribed", i)
		}
	}
	var every time.Duration
	if v := os.Getenv("AGENTGATE_TELEMETRY_EVERY"); v != "" {
		var err error
		if every, err = time.ParseDuration(v); err != nil || every <= 0 {
			t.Fatalf("AGENTGATE_TELEMETRY_EVERY=%q: want a positive duration", v)
		}
	}
	start := time.Now()
	for r := range records {
		if every > 0 && r > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(r) * every))) // pacing the producers, not waiting for a result
		}
		for i, tel := range tels {
			if err := tel.Add(json.RawMessage(fmt.Sprintf(`{"i":%d,"at":%d}`, r, time.Now().UnixMicro()))); err != nil {
				t.Fatalf("agent %d record %d: %v", i, r, err)
			}
		}
	}
	total := agents * records
	for {
		sent := 0
		for _, tel := range tels {
			sent += tel.Stats().Sent
		}
		if sent == total {
			break
		}
		select {
		case <-guard:
			t.Fatalf("%d of %d records acknowledged", sent, total)
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	batches := 0
	for _, tel := range tels {
		batches += tel.Stats().Batches
	}

	next := map[string]int{}
	seen := map[string]bool{}
	var latencies []time.Duration
	dups := 0
	for _, r := range l.Regions[0].Telemetry.Stream.Records() {
		var rec telemetry.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatal(err)
		}
		if r.PartitionKey != rec.Customer+"/"+rec.Thing {
			t.Fatalf("partition key %q for %s/%s", r.PartitionKey, rec.Customer, rec.Thing)
		}
		key := fmt.Sprintf("%s/%s/%d", rec.Thing, rec.Boot, rec.Seq)
		if seen[key] {
			dups++
			continue
		}
		seen[key] = true
		for _, raw := range rec.Records {
			var v struct{ I, At int64 }
			_ = json.Unmarshal(raw, &v)
			if int(v.I) != next[rec.Thing] {
				t.Fatalf("%s: record %d where %d was due", rec.Thing, v.I, next[rec.Thing])
			}
			next[rec.Thing]++
			latencies = append(latencies, time.UnixMilli(rec.ReceivedAt).Sub(time.UnixMicro(v.At)))
		}
	}
	got := 0
	for _, n := range next {
		got += n
	}
	if got != total {
		t.Fatalf("%d of %d records on the stream", got, total)
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	p := func(q float64) time.Duration {
		return latencies[int(q*float64(len(latencies)-1))].Round(time.Millisecond)
	}
	t.Logf("%d agents × %d records = %d records in %d messages in %s: %.0f records/s, %.0f messages/s; %d messages flagged as repeats; lost %d; latency p50 %s p99 %s max %s",
		agents, records, total, batches, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), float64(batches)/elapsed.Seconds(), dups, total-got, p(0.5), p(0.99), p(1))
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
