package lambdakit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/aws/aws-lambda-go/events"

	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

func testConsumer(failedMetric string) (lambdakit.Consumer, *syncbuf.Buffer, *syncbuf.Buffer) {
	logs, metrics := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	return lambdakit.Consumer{Reporter: lambdakit.Reporter{
		Log:            slog.New(slog.NewJSONHandler(logs, nil)),
		Metrics:        &lambdakit.Metrics{W: metrics, Namespace: "test", Service: "svc"},
		RejectedMsg:    "thing rejected",
		RejectedMetric: "ThingRejected",
		FailedMsg:      "thing failed; SQS will retry it",
		FailedMetric:   failedMetric,
	}}, logs, metrics
}

func batch(bodies ...string) events.SQSEvent {
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint("m", i), Body: b})
	}
	return ev
}

// outcome makes a message body decide its own fate.
func outcome(_ context.Context, body string) error {
	switch {
	case strings.HasPrefix(body, "reject:"):
		return fmt.Errorf("wrapped: %w", lambdakit.Reject(strings.TrimPrefix(body, "reject:"), "invalid %s", body))
	case body == "fail":
		return errors.New("throttled beyond the retries")
	}
	return nil
}

func TestConsumerReportsExactlyTheFailedMessages(t *testing.T) {
	c, logs, metrics := testConsumer("ThingFailed")
	resp, err := c.Handle(t.Context(), batch("ok", "reject:bad_key", "fail", "reject:bad_event", "fail", "ok"), outcome)
	if err != nil {
		t.Fatalf("Handle returned %v; a batch must never fail as a whole", err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"m2", "m4"}) {
		t.Errorf("BatchItemFailures = %v, want exactly the failed m2 and m4 (rejects must not be retried)", ids)
	}
	m := metrics.String()
	for _, want := range []string{`"ThingRejected":1`, `"Reason":"bad_key"`, `"Reason":"bad_event"`, `"ThingFailed":1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
	if n := strings.Count(m, "\n"); n != 4 {
		t.Errorf("%d metric lines, want 2 rejections + 2 failures:\n%s", n, m)
	}
	l := logs.String()
	for _, want := range []string{`"msg":"thing rejected","messageId":"m1","reason":"bad_key","error":"invalid reject:bad_key"`, `"msg":"thing failed; SQS will retry it","messageId":"m2","error":"throttled beyond the retries"`} {
		if !strings.Contains(l, want) {
			t.Errorf("logs lack %s:\n%s", want, l)
		}
	}
}

func TestConsumerWithoutFailedMetricOnlyLogsFailures(t *testing.T) {
	c, logs, metrics := testConsumer("")
	resp, _ := c.Handle(t.Context(), batch("fail"), outcome)
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("BatchItemFailures = %+v, want m0", resp.BatchItemFailures)
	}
	if metrics.String() != "" {
		t.Errorf("a failure was counted with no FailedMetric: %s", metrics.String())
	}
	if !strings.Contains(logs.String(), "thing failed") {
		t.Errorf("failure not logged: %s", logs.String())
	}
}

func TestConsumerEmptyBatchAnswersAnEmptyList(t *testing.T) {
	c, _, _ := testConsumer("")
	resp, err := c.Handle(t.Context(), events.SQSEvent{}, outcome)
	// Lambda reads a null batchItemFailures as "all succeeded" too, but an
	// empty list says so explicitly.
	if err != nil || resp.BatchItemFailures == nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("resp %+v, err %v; want an empty, non-nil list", resp, err)
	}
}

// With every handler blocked, exactly Concurrency of them have started: the
// bound holds and is reached. synctest.Wait returns once every goroutine of
// the bubble is durably blocked, so no sleep is involved.
func TestConsumerBoundsConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3, 0} { // 0: DefaultConcurrency
		synctest.Test(t, func(t *testing.T) {
			c, _, _ := testConsumer("")
			c.Concurrency = limit
			want := limit
			if limit == 0 {
				want = lambdakit.DefaultConcurrency
			}
			var started, active, peak atomic.Int32
			release := make(chan struct{})
			bodies := make([]string, 25)
			done := make(chan events.SQSEventResponse)
			go func() {
				resp, _ := c.Handle(t.Context(), batch(bodies...), func(context.Context, string) error {
					started.Add(1)
					n := active.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					<-release
					active.Add(-1)
					return nil
				})
				done <- resp
			}()
			synctest.Wait()
			if got := started.Load(); got != int32(want) {
				t.Errorf("Concurrency %d: %d handlers running while all block, want %d", limit, got, want)
			}
			close(release)
			if resp := <-done; len(resp.BatchItemFailures) != 0 {
				t.Errorf("failures %+v", resp.BatchItemFailures)
			}
			if started.Load() != 25 || peak.Load() != int32(want) {
				t.Errorf("Concurrency %d: %d of 25 handled, peak %d, want peak %d", limit, started.Load(), peak.Load(), want)
			}
		})
	}
}

func TestSettleCountsRejectsAndPassesOtherErrors(t *testing.T) {
	c, _, metrics := testConsumer("ThingFailed")
	if err := c.Settle(nil, "key", "k"); err != nil {
		t.Errorf("Settle(nil) = %v", err)
	}
	boom := errors.New("boom")
	if err := c.Settle(boom, "key", "k"); err != boom {
		t.Errorf("Settle(boom) = %v, want boom unchanged", err)
	}
	if err := c.Settle(lambdakit.Reject(lambdakit.ReasonOversize, "too big"), "key", "k"); err != nil {
		t.Errorf("Settle(reject) = %v, want nil", err)
	}
	if m := metrics.String(); strings.Count(m, "\n") != 1 || !strings.Contains(m, `"Reason":"oversize"`) {
		t.Errorf("metrics = %s, want one ThingRejected{oversize}", m)
	}
}

func TestRejectWithoutErrNeitherPanicsNorLosesTheReason(t *testing.T) {
	rej := &lambdakit.RejectError{Reason: lambdakit.ReasonBadKey}
	if got := rej.Error(); got != lambdakit.ReasonBadKey {
		t.Errorf("Error() = %q, want %q", got, lambdakit.ReasonBadKey)
	}
	c, logs, metrics := testConsumer("ThingFailed")
	if err := c.Settle(fmt.Errorf("wrapped: %w", rej), "key", "k"); err != nil {
		t.Errorf("Settle = %v, want nil", err)
	}
	if m := metrics.String(); !strings.Contains(m, `"Reason":"bad_key"`) {
		t.Errorf("metrics = %s, want one ThingRejected{bad_key}", m)
	}
	if l := logs.String(); !strings.Contains(l, `"reason":"bad_key"`) || !strings.Contains(l, `"error":"bad_key"`) {
		t.Errorf("log = %s, want reason and error bad_key", l)
	}
}
