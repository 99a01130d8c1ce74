package configpub

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
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

type s3Event struct {
	Records []struct {
		EventSource string    `json:"eventSource"`
		EventName   string    `json:"eventName"`
		EventTime   time.Time `json:"eventTime"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				VersionID string `json:"versionId"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
	Event string `json:"Event"`
	Kind  string `json:"kind"`
}

// ParseMessage parses an SQS message body. Errors are RejectErrors: a body
// that does not parse will never parse.
func ParseMessage(body string) (Message, error) {
	var ev s3Event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return Message{}, reject(ReasonBadEvent, "message body is not JSON: %v", err)
	}
	switch {
	case ev.Kind == FanoutKind:
		var f FanoutMessage
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return Message{}, reject(ReasonBadEvent, "fan-out message: %v", err)
		}
		if err := topics.ValidateCustomerID(f.Customer); err != nil {
			return Message{}, reject(ReasonBadEvent, "fan-out message: %v", err)
		}
		if err := topics.ValidateThingName(f.Agent); err != nil || f.Agent == artifacts.DefaultConfigName {
			return Message{}, reject(ReasonBadEvent, "fan-out message: agent %q is not a valid agent ID", f.Agent)
		}
		return Message{Fanout: &f}, nil
	case ev.Event == "s3:TestEvent":
		return Message{Test: true}, nil
	case len(ev.Records) == 0:
		return Message{}, reject(ReasonBadEvent, "message is neither an S3 event with Records nor a fan-out message")
	}
	var m Message
	for i, r := range ev.Records {
		if r.EventSource != "aws:s3" {
			return Message{}, reject(ReasonBadEvent, "record %d: eventSource %q is not aws:s3", i, r.EventSource)
		}
		raw, err := DecodeEventKey(r.S3.Object.Key)
		if err != nil {
			return Message{}, reject(ReasonBadKey, "record %d: %v", i, err)
		}
		k, err := artifacts.ParseConfigKey(raw)
		if err != nil {
			return Message{}, reject(ReasonBadKey, "record %d: %v", i, err)
		}
		var removed bool
		switch {
		case strings.HasPrefix(r.EventName, "ObjectCreated:"):
		case strings.HasPrefix(r.EventName, "ObjectRemoved:"):
			removed = true
		default:
			return Message{}, reject(ReasonBadEvent, "record %d: event %q is neither ObjectCreated nor ObjectRemoved", i, r.EventName)
		}
		m.Changes = append(m.Changes, Change{Bucket: r.S3.Bucket.Name, Key: k, Removed: removed, VersionID: r.S3.Object.VersionID, EventTime: r.EventTime})
	}
	return m, nil
}

// DecodeEventKey undoes the URL encoding S3 applies to object keys in event
// notifications ('+' for space, %XX for the rest).
func DecodeEventKey(raw string) (string, error) {
	k, err := url.QueryUnescape(raw)
	if err != nil {
		return "", fmt.Errorf("event object key %q is not URL-encoded: %w", raw, err)
	}
	return k, nil
}
