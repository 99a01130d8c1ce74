package configpub

import (
	"encoding/json"
	"time"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// Change is one configuration object change taken from an S3 event record.
type Change struct {
	// Bucket is the bucket the event came from.
	Bucket string
	// Key is the parsed object key.
	Key artifacts.ConfigKey
	// Removed is true for ObjectRemoved events (delete or delete marker).
	Removed bool
	// VersionID is the object version the event is about (may be empty).
	VersionID string
	// EventTime is when S3 processed the request.
	EventTime time.Time
}

// FanoutMessage is the SQS message body that asks for one agent's
// configuration to be republished from its customer's default.
type FanoutMessage struct {
	// Kind is always "fanout".
	Kind string `json:"kind"`
	// Customer is the customer ID.
	Customer string `json:"customer"`
	// Agent is the agent ID.
	Agent string `json:"agent"`
}

// FanoutKind is FanoutMessage.Kind.
const FanoutKind = "fanout"

// Message is one parsed SQS message body: exactly one of Changes (an S3
// event notification, possibly with several records; none for the S3 test
// event) or Fanout is set.
type Message struct {
	Changes []Change
	Fanout  *FanoutMessage
	// Test is true for the s3:TestEvent S3 sends when notifications are set up.
	Test bool
}

// ParseMessage parses an SQS message body: a fan-out message or an S3 event
// notification (lambdakit.ParseS3Event). Errors are RejectErrors: a body
// that does not parse will never parse.
func ParseMessage(body string) (Message, error) {
	var kind struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal([]byte(body), &kind); err != nil {
		return Message{}, lambdakit.Reject(ReasonBadEvent, "message body is not JSON: %v", err)
	}
	if kind.Kind == FanoutKind {
		var f FanoutMessage
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return Message{}, lambdakit.Reject(ReasonBadEvent, "fan-out message: %v", err)
		}
		if err := topics.ValidateCustomerID(f.Customer); err != nil {
			return Message{}, lambdakit.Reject(ReasonBadEvent, "fan-out message: %v", err)
		}
		if err := topics.ValidateThingName(f.Agent); err != nil || f.Agent == artifacts.DefaultConfigName {
			return Message{}, lambdakit.Reject(ReasonBadEvent, "fan-out message: agent %q is not a valid agent ID", f.Agent)
		}
		return Message{Fanout: &f}, nil
	}
	n, err := lambdakit.ParseS3Event(body)
	if err != nil {
		return Message{}, err
	}
	m := Message{Test: n.Test}
	for i, c := range n.Changes {
		k, err := artifacts.ParseConfigKey(c.Key)
		if err != nil {
			return Message{}, lambdakit.Reject(ReasonBadKey, "record %d: %v", i, err)
		}
		m.Changes = append(m.Changes, Change{Bucket: c.Bucket, Key: k, Removed: c.Removed, VersionID: c.VersionID, EventTime: c.EventTime})
	}
	return m, nil
}
