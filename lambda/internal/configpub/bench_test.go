package configpub

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

var (
	benchAgents    = flag.Int("fanout.agents", 10000, "agents of the customer in BenchmarkFanout")
	benchRate      = flag.Float64("fanout.rate", 200, "publish-rate cap (msg/s) the iot-data stand-in enforces with 429 above it")
	benchInstances = flag.Int("fanout.instances", 5, "concurrent Lambda instances (the event source's maximum concurrency)")
	benchBatch     = flag.Int("fanout.batch", 10, "SQS batch size")
)

// BenchmarkFanout fans one customer default out to -fanout.agents agents
// through the real handler and SDK clients, with the iot-data stand-in
// capping retained publishes at -fanout.rate msg/s (token bucket, burst of
// one tenth of a second, 429 ThrottlingException above it). Lambda
// instances are simulated by -fanout.instances goroutines taking batches
// of -fanout.batch; reported failures are redelivered at once (real SQS
// waits out the visibility timeout first). It reports the time to converge
// (every agent holds the new version) and the achieved publish rate.
//
//	go test ./lambda/internal/configpub -run '^$' -bench BenchmarkFanout -benchtime 1x
func BenchmarkFanout(b *testing.B) {
	for b.Loop() {
		runFanout(b)
	}
}

func runFanout(b *testing.B) {
	e := newEnv(b, lambdakit.DefaultRetryPolicy)
	e.h.Concurrency = *benchBatch
	for i := range *benchAgents {
		e.aws.AddThing(fmt.Sprintf("agent-%05d", i), "acme")
	}
	e.aws.SetPublishRate(*benchRate, *benchRate/10)
	at := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	first := e.put(artifacts.DefaultConfigKey("acme"), `{"telemetry":{"intervalSec":60},"features":["printers","pcs"]}`, at)

	var (
		mu         sync.Mutex
		pending    = []events.SQSMessage{{MessageId: "s3-event", Body: first}}
		inFlight   int
		seq        int
		redelivers int
		cond       = sync.NewCond(&mu)
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range *benchInstances {
		wg.Go(func() {
			for {
				mu.Lock()
				for len(pending) == 0 && inFlight > 0 {
					cond.Wait()
				}
				if len(pending) == 0 {
					mu.Unlock()
					cond.Broadcast()
					return
				}
				n := min(*benchBatch, len(pending))
				batch := append([]events.SQSMessage(nil), pending[:n]...)
				pending = pending[n:]
				inFlight++
				mu.Unlock()

				resp, err := e.h.Handle(context.Background(), events.SQSEvent{Records: batch})
				if err != nil {
					b.Error(err)
				}
				byID := map[string]events.SQSMessage{}
				for _, m := range batch {
					byID[m.MessageId] = m
				}
				mu.Lock()
				for _, f := range resp.BatchItemFailures {
					pending = append(pending, byID[f.ItemIdentifier])
					redelivers++
				}
				for _, s := range e.aws.TakeSent() {
					seq++
					pending = append(pending, events.SQSMessage{MessageId: fmt.Sprint("m", seq), Body: s.Body})
				}
				inFlight--
				mu.Unlock()
				cond.Broadcast()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for i := range *benchAgents {
		got, ok := e.retained(b, topics.ConfigTopic("acme", fmt.Sprintf("agent-%05d", i)))
		if !ok || got.Version != at.UnixMilli() {
			b.Fatalf("agent-%05d did not converge: %+v %v", i, got, ok)
		}
	}
	ok, throttled := e.aws.Count("Publish ok"), e.aws.Count("Publish 429")
	rate := float64(ok) / elapsed.Seconds()
	b.ReportMetric(elapsed.Seconds(), "s-to-converge")
	b.ReportMetric(rate, "publishes/s")
	b.ReportMetric(rate / *benchRate, "rate/cap")
	b.ReportMetric(float64(throttled), "429s")
	b.ReportMetric(float64(redelivers), "redeliveries")
	b.Logf("%d agents converged in %s: %d publishes (%.1f/s against a cap of %.0f/s = %.2f), %d answered 429, %d SQS redeliveries, %d instances × batch %d",
		*benchAgents, elapsed.Round(time.Millisecond), ok, rate, *benchRate, rate / *benchRate, throttled, redelivers, *benchInstances, *benchBatch)
}
