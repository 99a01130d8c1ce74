package lambdakit

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aws/aws-lambda-go/events"
)

// DefaultConcurrency is how many messages of one batch a Consumer processes
// at once when Concurrency is unset. It is the SQS event source's default
// BatchSize, and the largest without a batching window ("Lambda parameters
// for Amazon SQS event source mappings", AWS Lambda Developer Guide;
// MaximumBatchingWindowInSeconds in CreateEventSourceMapping, AWS Lambda API
// Reference), so such a batch runs fully in parallel.
const DefaultConcurrency = 10

// Reporter logs and counts what happened to a message or record. Both
// publishers report the same way; only the words differ.
type Reporter struct {
	// Log receives one JSON line per rejection or failure.
	Log *slog.Logger
	// Metrics receives the counters.
	Metrics *Metrics
	// RejectedMsg is the log message of a rejection, e.g.
	// "configuration rejected, nothing published".
	RejectedMsg string
	// RejectedMetric counts rejections with a Reason dimension, e.g. "ConfigRejected".
	RejectedMetric string
	// FailedMsg is the log message of a failure SQS will redeliver.
	FailedMsg string
	// FailedMetric counts failures (no dimension); empty: not counted.
	FailedMetric string
}

// Settle logs and counts a RejectError and returns nil for it; any other
// error (or nil) is returned as is. args name the message or record, e.g.
// "key", k. A loop over the records of one message settles each one, so one
// bad record neither blocks its neighbours nor makes SQS redeliver them.
func (r Reporter) Settle(err error, args ...any) error {
	rej, ok := AsReject(err)
	if !ok {
		return err
	}
	r.Log.Error(r.RejectedMsg, append(args, "reason", rej.Reason, "error", rej.Err.Error())...)
	r.Metrics.Count(r.RejectedMetric, 1, map[string]string{"Reason": rej.Reason})
	return nil
}

// Failed logs and counts err, a failure SQS will redeliver.
func (r Reporter) Failed(err error, args ...any) {
	r.Log.Error(r.FailedMsg, append(args, "error", err.Error())...)
	if r.FailedMetric != "" {
		r.Metrics.Count(r.FailedMetric, 1, nil)
	}
}

// Consumer is the SQS batch loop both publishers run: each message body goes
// to one handler call, at most Concurrency at once, and the response names
// exactly the messages whose handler failed (not rejected), so that with
// ReportBatchItemFailures on the event source mapping SQS redelivers only
// those and, after maxReceiveCount receives, moves them to the dead-letter
// queue ("Implementing partial batch responses" in "Handling errors for an
// SQS event source in Lambda", AWS Lambda Developer Guide).
type Consumer struct {
	Reporter
	// Concurrency bounds the messages processed at once; default DefaultConcurrency.
	Concurrency int
}

// Handle runs handle on every message of ev and returns the partial-batch
// response. Its error is always nil: a failed message is reported in
// BatchItemFailures, never by failing the whole batch, which would make SQS
// redeliver the messages that succeeded too.
func (c Consumer) Handle(ctx context.Context, ev events.SQSEvent, handle func(ctx context.Context, body string) error) (events.SQSEventResponse, error) {
	n := c.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	var (
		mu   sync.Mutex
		resp = events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		wg   sync.WaitGroup
		sem  = make(chan struct{}, n)
	)
	for _, m := range ev.Records {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := c.Settle(handle(ctx, m.Body), "messageId", m.MessageId)
			if err == nil {
				return
			}
			c.Failed(err, "messageId", m.MessageId)
			mu.Lock()
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			mu.Unlock()
		})
	}
	wg.Wait()
	return resp, nil
}
