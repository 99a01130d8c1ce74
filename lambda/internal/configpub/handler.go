// Package configpub is the configuration publisher's logic: it turns
// changes to the configuration bucket (key layout: package artifacts) into
// retained QoS 1 messages on each affected agent's exact config topic.
package configpub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// MaxObjectBytes bounds how much of a configuration object is read: anything
// larger cannot fit in one IoT message anyway.
const MaxObjectBytes = topics.MaxMessageBytes + 1

// Handler consumes the configuration queue: S3 event notifications of the
// configuration bucket and fan-out messages it enqueued itself.
type Handler struct {
	// S3 reads the configuration bucket.
	S3 *s3.Client
	// IoT lists and describes things (thing type = customer).
	IoT *iot.Client
	// Data publishes to the iot-data endpoint.
	Data *iotdataplane.Client
	// SQS enqueues fan-out messages.
	SQS *sqs.Client
	// Bucket is the configuration bucket; events of other buckets are rejected.
	Bucket string
	// QueueURL is where fan-out messages go (the queue this handler consumes).
	QueueURL string
	// Log receives one JSON line per decision.
	Log *slog.Logger
	// Metrics receives EMF counters.
	Metrics *lambdakit.Metrics
	// Concurrency bounds messages processed at once per batch; default 10.
	Concurrency int
}

// Handle processes one SQS batch and reports exactly the messages that
// failed transiently (throttling beyond the SDK's retries, 5xx, timeouts),
// so SQS redelivers only those and moves them to the DLQ after
// maxReceiveCount. Invalid input is logged, counted and dropped: retrying
// it cannot help.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	bc := &batchCache{defaults: map[string]*defaultDoc{}}
	c := lambdakit.Consumer{Reporter: h.reporter(), Concurrency: h.Concurrency}
	return c.Handle(ctx, ev, func(ctx context.Context, body string) error { return h.message(ctx, bc, body) })
}

// reporter logs and counts rejections as ConfigRejected{Reason} and
// failures as ConfigPublishFailed.
func (h *Handler) reporter() lambdakit.Reporter {
	return lambdakit.Reporter{
		Log:            h.Log,
		Metrics:        h.Metrics,
		RejectedMsg:    "configuration rejected, nothing published",
		RejectedMetric: "ConfigRejected",
		FailedMsg:      "config message failed; SQS will retry it",
		FailedMetric:   "ConfigPublishFailed",
	}
}

func (h *Handler) message(ctx context.Context, bc *batchCache, body string) error {
	m, err := ParseMessage(body)
	if err != nil {
		return err
	}
	if m.Test {
		h.Log.Info("s3 test event ignored")
		return nil
	}
	if m.Fanout != nil {
		return h.fanoutOne(ctx, bc, m.Fanout.Customer, m.Fanout.Agent)
	}
	rep := h.reporter()
	var errs []error
	for _, c := range m.Changes {
		errs = append(errs, rep.Settle(h.change(ctx, c), "key", c.Key.String(), "versionId", c.VersionID))
	}
	return errors.Join(errs...)
}

// change handles one S3 event record.
func (h *Handler) change(ctx context.Context, c Change) error {
	if c.Bucket != h.Bucket {
		return lambdakit.Reject(ReasonBadEvent, "event for bucket %q; this publisher serves %q", c.Bucket, h.Bucket)
	}
	if c.Key.IsDefault() {
		if c.Removed {
			h.Log.Warn("customer default deleted; agents keep their current configuration", "customer", c.Key.Customer)
			return nil
		}
		return h.fanoutStart(ctx, c.Key.Customer)
	}
	if err := h.checkAgent(ctx, c.Key.Customer, c.Key.Agent); err != nil {
		return err
	}
	var floor int64
	if c.Removed {
		// The agent falls back to its customer default. The default may be
		// older than the configuration it replaces, so the delete's time is
		// the floor of the version: agents must take the fallback.
		floor = c.EventTime.UnixMilli()
	}
	return h.publishAgent(ctx, c.Key.Customer, c.Key.Agent, floor, c.VersionID)
}

// checkAgent rejects an agent that is not a thing of the customer's type.
func (h *Handler) checkAgent(ctx context.Context, customer, agent string) error {
	out, err := h.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(agent)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return lambdakit.Reject(ReasonUnknownAgent, "agent %q does not exist", agent)
	}
	if err != nil {
		return fmt.Errorf("describe thing %s: %w", agent, err)
	}
	if got := aws.ToString(out.ThingTypeName); got != customer {
		return lambdakit.Reject(ReasonUnknownAgent, "agent %q belongs to thing type %q, not customer %q", agent, got, customer)
	}
	return nil
}

// object is the current version of a configuration object.
type object struct {
	body         []byte
	versionID    string
	lastModified time.Time
}

// getCurrent reads the current version of key; (nil, nil) when it does not
// exist or its current version is a delete marker. Reading the current
// version (not the event's) makes a late or replayed event publish the
// newest configuration instead of a stale one.
func (h *Handler) getCurrent(ctx context.Context, key string) (*object, error) {
	out, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nsk) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", h.Bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, MaxObjectBytes))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", h.Bucket, key, err)
	}
	if len(body) >= MaxObjectBytes {
		return nil, lambdakit.Reject(ReasonOversize, "object %s is larger than %d bytes; IoT Core messages are limited to %d", key, MaxObjectBytes-1, topics.MaxMessageBytes)
	}
	return &object{body: body, versionID: aws.ToString(out.VersionId), lastModified: aws.ToTime(out.LastModified)}, nil
}

// exists reports whether key's current version is an object (not absent,
// not a delete marker).
func (h *Handler) exists(ctx context.Context, key string) (bool, error) {
	_, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("head s3://%s/%s: %w", h.Bucket, key, err)
	}
	return true, nil
}

// publishAgent publishes an agent's effective configuration: its own object
// if it has one, else its customer's default (version at least floor).
func (h *Handler) publishAgent(ctx context.Context, customer, agent string, floor int64, eventVersion string) error {
	own, err := h.getCurrent(ctx, artifacts.AgentConfigKey(customer, agent))
	if err != nil {
		return err
	}
	src, key := own, artifacts.AgentConfigKey(customer, agent)
	if own == nil {
		key = artifacts.DefaultConfigKey(customer)
		if src, err = h.getCurrent(ctx, key); err != nil {
			return err
		}
		if src == nil {
			h.Log.Warn("agent has no configuration of its own and its customer no default; nothing to publish", "customer", customer, "agent", agent)
			return nil
		}
	} else if eventVersion != "" && own.versionID != eventVersion {
		h.Log.Info("event is not about the current object version; publishing the current one", "key", key, "eventVersionId", eventVersion, "currentVersionId", own.versionID)
	}
	return h.publish(ctx, customer, agent, key, src, floor)
}

func (h *Handler) publish(ctx context.Context, customer, agent, key string, src *object, floor int64) error {
	version := max(src.lastModified.UnixMilli(), floor)
	payload, env, err := BuildEnvelope(src.body, version, time.UnixMilli(version))
	if err != nil {
		var r *lambdakit.RejectError
		if errors.As(err, &r) {
			r.Err = fmt.Errorf("%s (version %s): %w", key, src.versionID, r.Err)
		}
		return err
	}
	topic := topics.ConfigTopic(customer, agent)
	if err := lambdakit.PublishRetained(ctx, h.Data, topic, payload); err != nil {
		return err
	}
	h.Log.Info("configuration published", "topic", topic, "source", key, "sourceVersionId", src.versionID, "version", env.Version, "sha256", env.SHA256)
	h.Metrics.Count("ConfigPublished", 1, nil)
	return nil
}

// fanoutStart validates a customer's new default and enqueues one fan-out
// message per agent of the customer. A failure part-way fails the message:
// its redelivery enqueues everything again, which is harmless (idempotent).
func (h *Handler) fanoutStart(ctx context.Context, customer string) error {
	def, err := h.getCurrent(ctx, artifacts.DefaultConfigKey(customer))
	if err != nil {
		return err
	}
	if def == nil {
		h.Log.Info("customer default no longer exists; nothing to fan out", "customer", customer)
		return nil
	}
	if _, _, err := BuildEnvelope(def.body, def.lastModified.UnixMilli(), def.lastModified); err != nil {
		return err // rejected before any agent sees it
	}
	var (
		batch  []sqstypes.SendMessageBatchRequestEntry
		agents int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := h.sendBatch(ctx, batch)
		batch = batch[:0]
		return err
	}
	p := iot.NewListThingsPaginator(h.IoT, &iot.ListThingsInput{ThingTypeName: aws.String(customer), MaxResults: aws.Int32(250)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nf *iottypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return lambdakit.Reject(ReasonUnknownCustomer, "customer %q is not a thing type", customer)
		}
		if err != nil {
			return fmt.Errorf("list things of type %s: %w", customer, err)
		}
		for _, t := range page.Things {
			name := aws.ToString(t.ThingName)
			if topics.ValidateThingName(name) != nil || name == artifacts.DefaultConfigName {
				h.Log.Warn("thing name cannot be an agent ID; skipped", "customer", customer, "thing", name)
				continue
			}
			body, _ := json.Marshal(FanoutMessage{Kind: FanoutKind, Customer: customer, Agent: name})
			batch = append(batch, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(len(batch))), MessageBody: aws.String(string(body))})
			agents++
			if len(batch) == 10 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if agents == 0 {
		return lambdakit.Reject(ReasonUnknownCustomer, "customer %q has no agents (no things of that type)", customer)
	}
	h.Log.Info("customer default fanned out", "customer", customer, "agents", agents, "defaultVersionId", def.versionID)
	h.Metrics.Count("FanoutEnqueued", agents, nil)
	return nil
}

// sendBatch sends up to 10 entries, resending the entries SQS reports as
// failed a bounded number of times.
func (h *Handler) sendBatch(ctx context.Context, entries []sqstypes.SendMessageBatchRequestEntry) error {
	for attempt := 0; ; attempt++ {
		out, err := h.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.QueueURL), Entries: entries})
		if err != nil {
			return fmt.Errorf("enqueue fan-out: %w", err)
		}
		if len(out.Failed) == 0 {
			return nil
		}
		if attempt == 4 {
			return fmt.Errorf("enqueue fan-out: %d entries still failing, e.g. %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
		failed := map[string]bool{}
		for _, f := range out.Failed {
			failed[aws.ToString(f.Id)] = true
		}
		var again []sqstypes.SendMessageBatchRequestEntry
		for _, e := range entries {
			if failed[aws.ToString(e.Id)] {
				again = append(again, e)
			}
		}
		entries = again
	}
}

// defaultDoc caches a customer's default within one batch: the messages of a
// batch are usually the same customer's fan-out.
type defaultDoc struct {
	once sync.Once
	obj  *object
	err  error
}

type batchCache struct {
	mu       sync.Mutex
	defaults map[string]*defaultDoc
}

func (b *batchCache) get(customer string, load func() (*object, error)) (*object, error) {
	b.mu.Lock()
	d, ok := b.defaults[customer]
	if !ok {
		d = &defaultDoc{}
		b.defaults[customer] = d
	}
	b.mu.Unlock()
	d.once.Do(func() { d.obj, d.err = load() })
	return d.obj, d.err
}

// fanoutOne republishes one agent's configuration from its customer's
// current default, unless the agent has an object of its own (which wins
// and is published by its own events).
//
// A fan-out message is only a queue message: whoever can send to the queue
// could name any valid agent ID. The registry is asked first, as for an
// agent's own object, so a forged message for a thing that does not exist
// or belongs to another customer is rejected and never published.
func (h *Handler) fanoutOne(ctx context.Context, bc *batchCache, customer, agent string) error {
	if err := h.checkAgent(ctx, customer, agent); err != nil {
		return err
	}
	own, err := h.exists(ctx, artifacts.AgentConfigKey(customer, agent))
	if err != nil {
		return err
	}
	if own {
		h.Log.Info("agent has its own configuration; default not applied", "customer", customer, "agent", agent)
		h.Metrics.Count("FanoutSkippedOverride", 1, nil)
		return nil
	}
	def, err := bc.get(customer, func() (*object, error) { return h.getCurrent(ctx, artifacts.DefaultConfigKey(customer)) })
	if err != nil {
		return err
	}
	if def == nil {
		h.Log.Info("customer default no longer exists; nothing to publish", "customer", customer, "agent", agent)
		return nil
	}
	return h.publish(ctx, customer, agent, artifacts.DefaultConfigKey(customer), def, 0)
}
