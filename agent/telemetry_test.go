package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// TestTelemetryThroughTheRelaysToTheStream: an agent behind the relays
// sends 3,000 records through Basic Ingest; its relay is killed while it
// sends. The lab's telemetry rule (the IoT rule's mapping) puts every
// batch on the stream stand-in: every record arrives, in order, with the
// customer, thing and receive time the rule adds; batches the agent had to
// send again are seen twice and flagged by their (boot, seq).
func TestTelemetryThroughTheRelaysToTheStream(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	a, err := agent.New(labConfig(l, rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	tel, err := a.NewTelemetry(agent.TelemetryConfig{MaxBatchRecords: 50, FlushInterval: 20 * time.Millisecond, MaxPublishesPerSecond: 20, MaxBytesPerSecond: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- a.Run(ctx) }()
	go func() { done <- tel.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	rec.wait(t, "connected", func() bool { return hasEvent(rec.events, agent.StepSubscribe, "") })

	const total = 3000
	for i := range total {
		if err := tel.Add(json.RawMessage(fmt.Sprintf(`{"i":%d,"cpu":0.5}`, i))); err != nil {
			t.Fatal(err)
		}
		if i == total/3 {
			// Kill the relay once some batches are on the stream.
			for len(l.Regions[0].Telemetry.Stream.Records()) == 0 {
				select {
				case <-time.After(5 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			l.Relays[activeRelay(t, l)].Kill()
		}
	}
	guard := time.After(120 * time.Second)
	for tel.Stats().Sent < total {
		select {
		case <-guard:
			t.Fatalf("sent %+v of %d", tel.Stats(), total)
		case <-time.After(20 * time.Millisecond):
		}
	}
	seen := map[string]bool{}
	next, dups := 0, 0
	var lastReceived int64
	for _, r := range l.Regions[0].Telemetry.Stream.Records() {
		if r.PartitionKey != agentlab.CustomerID+"/"+agentlab.ThingName {
			t.Fatalf("partition key %q", r.PartitionKey)
		}
		var rec telemetry.Record
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Customer != agentlab.CustomerID || rec.Thing != agentlab.ThingName || rec.ReceivedAt < lastReceived {
			t.Fatalf("record %s/%s received %d after %d", rec.Customer, rec.Thing, rec.ReceivedAt, lastReceived)
		}
		lastReceived = rec.ReceivedAt
		key := fmt.Sprintf("%s/%d", rec.Boot, rec.Seq)
		if seen[key] {
			dups++
			continue
		}
		seen[key] = true
		for _, raw := range rec.Records {
			var v struct{ I int }
			_ = json.Unmarshal(raw, &v)
			if v.I != next {
				t.Fatalf("record %d arrived where %d was due: lost or reordered", v.I, next)
			}
			next++
		}
	}
	if next != total {
		t.Fatalf("%d of %d records on the stream", next, total)
	}
	events, _, _ := rec.snapshot()
	if !hasEvent(events, agent.StepDisconnect, "") {
		t.Error("the relay kill did not disconnect the agent while it sent")
	}
	if n := len(l.Regions[0].Telemetry.DeadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	st := tel.Stats()
	t.Logf("%d records in %d batches, %d retries, %d batches flagged as repeats on the stream", st.Sent, st.Batches, st.Retries, dups)
}

func TestTelemetryRefusesBadInput(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	a, err := agent.New(labConfig(l, newRecorder(), ""))
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]agent.TelemetryConfig{
		"above IoT's publish rate": {MaxPublishesPerSecond: 101},
		"above IoT's byte rate":    {MaxBytesPerSecond: 513 << 10},
		"batch above 128 KiB":      {MaxBatchBytes: agent.MaxMessageBytes + 1, MaxBytesPerSecond: 512 << 10},
		"tiny batch":               {MaxBatchBytes: 10},
		"negative records":         {MaxBatchRecords: -1},
	} {
		if _, err := a.NewTelemetry(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	tel, err := a.NewTelemetry(agent.TelemetryConfig{MaxQueuedRecords: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Add(json.RawMessage(`{`)); err == nil {
		t.Error("invalid JSON accepted")
	}
	if err := tel.Add(json.RawMessage(`"` + strings.Repeat("x", agent.DefaultTelemetryBatchBytes) + `"`)); err == nil {
		t.Error("a record larger than a batch accepted")
	}
	_ = tel.Add(json.RawMessage(`1`))
	_ = tel.Add(json.RawMessage(`2`))
	if err := tel.Add(json.RawMessage(`3`)); !errors.Is(err, agent.ErrTelemetryFull) {
		t.Errorf("third record in a queue of 2: %v", err)
	}
}
