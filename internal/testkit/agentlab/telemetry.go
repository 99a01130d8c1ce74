package agentlab

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// TelemetryStream is the name of the lab's telemetry stream.
const TelemetryStream = "agentgate-telemetry"

// TelemetryRule is the lab's IoT telemetry rule: a mochi hook that applies
// contract/telemetry's topic-to-destination mapping to every publish, as the
// rule agentgate_telemetry does (directly or through Basic Ingest), adds
// customer, thing and the receive time, and puts the record on a Kinesis
// stand-in with the real SDK client, partition key <customer>/<thing>.
// What cannot be delivered goes to DeadLetters (the rule's error action).
// A publish for another thing than the client's own is refused as the
// agent policy refuses it.
type TelemetryRule struct {
	mqtt.HookBase
	// Stream is the Kinesis stand-in the rule delivers to.
	Stream *awsstandin.Kinesis
	// Customer is the customer of every lab agent (their thing type).
	Customer string

	client      *kinesis.Client
	mu          sync.Mutex
	deadLetters [][]byte
	refused     int
}

// newTelemetryRule starts the stream stand-in and the rule for customer.
func newTelemetryRule(customer string) *TelemetryRule {
	k := awsstandin.StartKinesis(TelemetryStream)
	return &TelemetryRule{Stream: k, Customer: customer,
		client: kinesis.NewFromConfig(awsstandin.Config(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(k.URL) })}
}

// ID names the hook.
func (h *TelemetryRule) ID() string { return "telemetry-rule" }

// Provides says the hook handles publishes.
func (h *TelemetryRule) Provides(b byte) bool { return b == mqtt.OnPublish }

// OnPublish runs the rule on one publish, before the broker acknowledges
// it: a QoS 1 message that reached the rule is on the stream or in
// DeadLetters before its PUBACK leaves.
func (h *TelemetryRule) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	customer, thing, ok := telemetry.Route(pk.TopicName)
	if !ok {
		return pk, nil
	}
	if !cl.Net.Inline && (thing != cl.ID || customer != h.Customer) {
		h.mu.Lock()
		h.refused++
		h.mu.Unlock()
		return pk, packets.ErrNotAuthorized
	}
	rec, err := telemetry.Enrich(pk.Payload, customer, thing, time.Now())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = h.client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(TelemetryStream),
			PartitionKey: aws.String(customer + "/" + thing), Data: rec})
		cancel()
	}
	if err != nil {
		h.mu.Lock()
		h.deadLetters = append(h.deadLetters, append([]byte(nil), pk.Payload...))
		h.mu.Unlock()
	}
	return pk, nil
}

// DeadLetters returns what the rule's error action received.
func (h *TelemetryRule) DeadLetters() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.deadLetters...)
}

// Refused counts publishes refused for naming another thing or customer.
func (h *TelemetryRule) Refused() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused
}
