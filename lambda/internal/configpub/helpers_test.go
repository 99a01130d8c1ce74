package configpub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

const (
	testBucket = "cfg-bucket"
	testQueue  = "https://sqs.eu-west-1.amazonaws.com/111111111111/fanout"
)

// fastRetries keeps tests quick while exercising the same retryer: jittered
// backoff capped at 20 ms, attempts that time out after 300 ms.
var fastRetries = lambdakit.RetryPolicy{MaxAttempts: 5, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, AttemptTimeout: 300 * time.Millisecond}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	aws     *awsstandin.AWS
	h       *Handler
	logs    *syncBuf
	metrics *syncBuf
}

// newEnv starts the stand-ins and a Handler whose real SDK clients talk to
// them (BaseEndpoint, static credentials, path-style S3).
func newEnv(t testing.TB, policy lambdakit.RetryPolicy) *env {
	t.Helper()
	a := awsstandin.Start()
	t.Cleanup(a.Close)
	cfg := awsstandin.Config()
	policy.Apply(&cfg)
	e := &env{aws: a, logs: &syncBuf{}, metrics: &syncBuf{}}
	e.h = &Handler{
		S3:       s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(a.S3URL); o.UsePathStyle = true }),
		IoT:      iot.NewFromConfig(cfg, func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL) }),
		Data:     iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(a.DataURL) }),
		SQS:      sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(a.SQSURL) }),
		Bucket:   testBucket,
		QueueURL: testQueue,
		Log:      slog.New(slog.NewJSONHandler(e.logs, nil)),
		Metrics:  &lambdakit.Metrics{W: e.metrics, Namespace: "agentgate/ControlPlane", Service: "configpublisher"},
	}
	return e
}

// s3Event renders an S3 event notification body as S3 sends it to SQS.
func s3EventBody(name, key, versionID string, at time.Time) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "eu-west-1",
		"eventTime": at.UTC().Format("2006-01-02T15:04:05.000Z"), "eventName": name,
		"s3": map[string]any{
			"s3SchemaVersion": "1.0",
			"bucket":          map[string]any{"name": testBucket, "arn": "arn:aws:s3:::" + testBucket},
			"object":          map[string]any{"key": strings.ReplaceAll(key, " ", "+"), "versionId": versionID, "sequencer": "0055AED6DCD90281E5"},
		},
	}}})
	return string(b)
}

// put stores a configuration object and returns its creation event.
func (e *env) put(key, doc string, at time.Time) string {
	v := e.aws.PutObject(testBucket, key, []byte(doc), at)
	return s3EventBody("ObjectCreated:Put", key, v, at)
}

// queue simulates the SQS queue and its Lambda event source mapping:
// batches of up to 10, redelivery of exactly the reported failures, and a
// DLQ after maxReceive receives. Messages the handler enqueues (fan-out)
// join the queue.
type queue struct {
	pending    []*qmsg
	dlq        []*qmsg
	maxReceive int
	seq        int
	batches    int
}

type qmsg struct {
	id       string
	body     string
	receives int
}

func (q *queue) add(bodies ...string) {
	for _, b := range bodies {
		q.seq++
		q.pending = append(q.pending, &qmsg{id: fmt.Sprintf("msg-%d", q.seq), body: b})
	}
}

// runBatch delivers one batch and returns the handler's response.
func (q *queue) runBatch(t testing.TB, e *env) events.SQSEventResponse {
	t.Helper()
	if q.maxReceive == 0 {
		q.maxReceive = 5
	}
	n := min(10, len(q.pending))
	batch := q.pending[:n]
	q.pending = q.pending[n:]
	var ev events.SQSEvent
	byID := map[string]*qmsg{}
	for _, m := range batch {
		m.receives++
		byID[m.id] = m
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, Body: m.body, EventSource: "aws:sqs"})
	}
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("Handle returned an error (the whole batch would be retried): %v", err)
	}
	q.batches++
	for _, f := range resp.BatchItemFailures {
		m, ok := byID[f.ItemIdentifier]
		if !ok {
			t.Fatalf("BatchItemFailures names %q, which is not in the batch", f.ItemIdentifier)
		}
		if m.receives >= q.maxReceive {
			q.dlq = append(q.dlq, m)
		} else {
			q.pending = append(q.pending, m)
		}
	}
	for _, s := range e.aws.TakeSent() {
		if s.QueueURL != testQueue {
			t.Fatalf("fan-out sent to %q, want %q", s.QueueURL, testQueue)
		}
		q.add(s.Body)
	}
	return resp
}

// drain runs batches until the queue is empty.
func (q *queue) drain(t testing.TB, e *env) {
	t.Helper()
	if q.maxReceive == 0 {
		q.maxReceive = 5
	}
	for len(q.pending) > 0 {
		q.runBatch(t, e)
	}
}

// retained decodes the retained envelope of an agent's config topic.
func (e *env) retained(t testing.TB, topic string) (Envelope, bool) {
	t.Helper()
	b, ok := e.aws.Retained(topic)
	if !ok {
		return Envelope{}, false
	}
	env, err := ParseEnvelope(b)
	if err != nil {
		t.Fatalf("retained message on %s does not parse as an envelope: %v\n%s", topic, err, b)
	}
	return env, true
}
