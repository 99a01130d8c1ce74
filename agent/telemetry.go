package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/contract/telemetry"
)

// AWS IoT Core's per-connection limits
// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits):
// 100 publish requests per second per connection, and 512 KiB of
// throughput per second per connection (the byte figure as remembered from
// that page, unverified here). The defaults stay at a tenth and a half of
// them, leaving room for results, status and retries on the same connection.
const (
	IoTMaxPublishesPerSecond = 100
	IoTMaxBytesPerSecond     = 512 << 10
)

// Telemetry defaults (TelemetryConfig fields left zero).
const (
	DefaultTelemetryBatchRecords   = 100
	DefaultTelemetryBatchBytes     = 32 << 10
	DefaultTelemetryFlushInterval  = time.Second
	DefaultTelemetryPublishesPerS  = 10
	DefaultTelemetryBytesPerS      = 256 << 10
	DefaultTelemetryQueuedRecords  = 10000
	maxTelemetryRecordBytes        = DefaultTelemetryBatchBytes
	telemetryBatchOverheadEstimate = 80 // {"seq":<20 digits>,"boot":"<16>","records":[]} and then some
)

// ErrTelemetryFull means Add found the queue at MaxQueuedRecords: the agent
// produces faster than its connection may send (or it is offline).
var ErrTelemetryFull = errors.New("telemetry queue is full")

// TelemetryConfig tunes a Telemetry sender. Zero fields take the defaults.
type TelemetryConfig struct {
	// MaxBatchRecords and MaxBatchBytes bound one message (a
	// telemetry.Batch): at most this many records, at most this many bytes
	// (at most MaxMessageBytes).
	MaxBatchRecords, MaxBatchBytes int
	// FlushInterval is how long a record may wait for more to share its
	// message.
	FlushInterval time.Duration
	// MaxPublishesPerSecond and MaxBytesPerSecond cap what the sender
	// publishes on the agent's connection; at most the IoT limits above.
	MaxPublishesPerSecond, MaxBytesPerSecond float64
	// MaxQueuedRecords bounds the records waiting to be sent.
	MaxQueuedRecords int
	// Direct publishes on <customer>/<thing>/up/telemetry through the
	// broker instead of Basic Ingest ($aws/rules/agentgate_telemetry/…),
	// which reaches the same rule without the messaging charge.
	Direct bool
}

// TelemetryStats counts what a Telemetry sender did.
type TelemetryStats struct {
	// Queued records wait to be sent; Sent records were acknowledged.
	Queued, Sent int
	// Batches counts acknowledged messages; Retries counts publishes that
	// failed and were sent again (the rule may then see a batch twice:
	// readers drop repeats by Boot and Seq).
	Batches, Retries int
	// Refused counts batches the broker refused (policy): dropped.
	Refused int
}

// Telemetry batches an agent's telemetry records into telemetry.Batch
// messages and publishes them at QoS 1, one at a time and in order, within
// its rate limits. Create it with Agent.NewTelemetry and run Run beside the
// agent's Run.
type Telemetry struct {
	a     *Agent
	cfg   TelemetryConfig
	topic string
	boot  string

	mu     sync.Mutex
	queue  []json.RawMessage
	seq    uint64
	stats  TelemetryStats
	wake   chan struct{}
	limits *rateLimit
}

// NewTelemetry returns a telemetry sender for a.
func (a *Agent) NewTelemetry(cfg TelemetryConfig) (*Telemetry, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxBatchRecords, DefaultTelemetryBatchRecords)
	def(&cfg.MaxBatchBytes, DefaultTelemetryBatchBytes)
	def(&cfg.MaxQueuedRecords, DefaultTelemetryQueuedRecords)
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = DefaultTelemetryFlushInterval
	}
	if cfg.MaxPublishesPerSecond == 0 {
		cfg.MaxPublishesPerSecond = DefaultTelemetryPublishesPerS
	}
	if cfg.MaxBytesPerSecond == 0 {
		cfg.MaxBytesPerSecond = DefaultTelemetryBytesPerS
	}
	switch {
	case cfg.MaxBatchRecords < 1 || cfg.MaxQueuedRecords < 1 || cfg.FlushInterval < 0:
		return nil, errors.New("telemetry: batch records, queued records and flush interval must be positive")
	case cfg.MaxBatchBytes < 1024 || cfg.MaxBatchBytes > MaxMessageBytes:
		return nil, fmt.Errorf("telemetry: MaxBatchBytes %d must be 1 KiB..%d", cfg.MaxBatchBytes, MaxMessageBytes)
	case cfg.MaxPublishesPerSecond <= 0 || cfg.MaxPublishesPerSecond > IoTMaxPublishesPerSecond:
		return nil, fmt.Errorf("telemetry: MaxPublishesPerSecond %v must be in (0, %d], IoT's per-connection limit", cfg.MaxPublishesPerSecond, IoTMaxPublishesPerSecond)
	case cfg.MaxBytesPerSecond < float64(cfg.MaxBatchBytes) || cfg.MaxBytesPerSecond > IoTMaxBytesPerSecond:
		return nil, fmt.Errorf("telemetry: MaxBytesPerSecond %v must be at least MaxBatchBytes and at most %d, IoT's per-connection limit", cfg.MaxBytesPerSecond, IoTMaxBytesPerSecond)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	t := &Telemetry{a: a, cfg: cfg, boot: hex.EncodeToString(b), wake: make(chan struct{}, 1),
		limits: newRateLimit(cfg.MaxPublishesPerSecond, cfg.MaxBytesPerSecond, float64(cfg.MaxBatchBytes))}
	if cfg.Direct {
		t.topic = telemetry.Topic(a.cfg.CustomerID, a.cfg.ThingName)
	} else {
		t.topic = telemetry.BasicIngestTopic(a.cfg.CustomerID, a.cfg.ThingName)
	}
	return t, nil
}

// Add queues one record, a JSON value. It never blocks: a full queue is
// ErrTelemetryFull.
func (t *Telemetry) Add(record json.RawMessage) error {
	if !json.Valid(record) {
		return errors.New("telemetry record is not valid JSON")
	}
	if len(record)+telemetryBatchOverheadEstimate > t.cfg.MaxBatchBytes {
		return fmt.Errorf("telemetry record of %d bytes does not fit a batch of %d bytes", len(record), t.cfg.MaxBatchBytes)
	}
	t.mu.Lock()
	if len(t.queue) >= t.cfg.MaxQueuedRecords {
		t.mu.Unlock()
		return ErrTelemetryFull
	}
	t.queue = append(t.queue, append(json.RawMessage(nil), record...))
	t.stats.Queued = len(t.queue)
	full := len(t.queue) >= t.cfg.MaxBatchRecords
	t.mu.Unlock()
	if full || len(t.queue) == 1 {
		select {
		case t.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Stats returns the counters so far.
func (t *Telemetry) Stats() TelemetryStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// Run sends batches until ctx ends. Records still queued then stay queued.
func (t *Telemetry) Run(ctx context.Context) error {
	for {
		// Wait for a first record, then up to FlushInterval for a full batch.
		for t.pending() == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-t.wake:
			}
		}
		if t.pending() < t.cfg.MaxBatchRecords {
			timer := time.NewTimer(t.cfg.FlushInterval)
		wait:
			for t.pending() < t.cfg.MaxBatchRecords {
				select {
				case <-ctx.Done():
					timer.Stop()
					return nil
				case <-timer.C:
					break wait
				case <-t.wake:
				}
			}
			timer.Stop()
		}
		for t.pending() > 0 {
			if err := t.sendOne(ctx); err != nil {
				return nil // ctx ended
			}
		}
	}
}

func (t *Telemetry) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// sendOne publishes the next batch until the broker acknowledges or
// refuses it; it returns an error only when ctx ends.
func (t *Telemetry) sendOne(ctx context.Context) error {
	t.mu.Lock()
	t.seq++
	b := telemetry.Batch{Seq: t.seq, Boot: t.boot}
	size := telemetryBatchOverheadEstimate
	for _, r := range t.queue {
		if len(b.Records) == t.cfg.MaxBatchRecords || size+len(r)+1 > t.cfg.MaxBatchBytes {
			break
		}
		b.Records = append(b.Records, r)
		size += len(r) + 1
	}
	t.mu.Unlock()
	payload, err := json.Marshal(b)
	if err != nil {
		return nil // records are valid JSON: cannot happen
	}
	for n := 0; ; n++ {
		if err := t.limits.wait(ctx, len(payload)); err != nil {
			return err
		}
		err := t.publish(ctx, payload)
		if err == nil || errors.Is(err, agenterr.ErrRefused) {
			t.mu.Lock()
			t.queue = t.queue[len(b.Records):]
			t.stats.Queued = len(t.queue)
			if err == nil {
				t.stats.Sent += len(b.Records)
				t.stats.Batches++
			} else {
				t.stats.Refused++
			}
			t.mu.Unlock()
			if err != nil {
				t.a.event(StepTelemetry, fmt.Sprintf("batch %d of %d records dropped", b.Seq, len(b.Records)), err)
			}
			return nil
		}
		t.mu.Lock()
		t.stats.Retries++
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(Backoff(t.a.cfg.BackoffBase, t.a.cfg.BackoffMax, n)):
		}
	}
}

// StepTelemetry is the Event step of a dropped telemetry batch.
const StepTelemetry = "telemetry"

func (t *Telemetry) publish(ctx context.Context, payload []byte) error {
	t.a.mu.Lock()
	cm := t.a.cm
	t.a.mu.Unlock()
	if cm == nil {
		return errors.New("not connected yet")
	}
	pctx, cancel := context.WithTimeout(ctx, t.a.cfg.ConnectTimeout)
	defer cancel()
	pr, err := cm.Publish(pctx, &paho.Publish{Topic: t.topic, QoS: 1, Payload: payload})
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("%w: PUBACK for %s has reason 0x%02x", agenterr.ErrRefused, t.topic, pr.ReasonCode)
	}
	return err
}

// rateLimit is two token buckets: publishes and bytes per second.
type rateLimit struct {
	mu                     sync.Mutex
	pubRate, byteRate      float64
	pubs, bytes, byteBurst float64
	last                   time.Time
}

func newRateLimit(pubs, bytes, byteBurst float64) *rateLimit {
	return &rateLimit{pubRate: pubs, byteRate: bytes, pubs: 1, bytes: byteBurst, byteBurst: byteBurst, last: time.Now()}
}

// wait blocks until one publish of n bytes fits both buckets, then takes it.
func (l *rateLimit) wait(ctx context.Context, n int) error {
	for {
		l.mu.Lock()
		now := time.Now()
		dt := now.Sub(l.last).Seconds()
		l.last = now
		l.pubs = min(1, l.pubs+dt*l.pubRate)
		l.bytes = min(l.byteBurst, l.bytes+dt*l.byteRate)
		need := float64(n)
		if l.pubs >= 1 && l.bytes >= need {
			l.pubs--
			l.bytes -= need
			l.mu.Unlock()
			return nil
		}
		d := max((1-l.pubs)/l.pubRate, (need-l.bytes)/l.byteRate)
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(d*float64(time.Second)) + time.Millisecond):
		}
	}
}
