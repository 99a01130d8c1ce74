package presence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agentgate/agentgate/contract/status"
)

// MaxInputBytes bounds anything the Lambda is invoked with: the larger of
// a lifecycle event and a status record.
const MaxInputBytes = max(MaxEventBytes, status.MaxMessageBytes)

// Input is one invocation's payload: a lifecycle event (from the rule on
// $aws/events/presence/+/+) or a status record (from the rule on
// +/+/up/status, contract/status.SQL). Exactly one is set.
type Input struct {
	Event  *Event
	Status *status.Record
}

// ParseInput tells the two apart and parses the one it is. A lifecycle
// event has an eventType; a status record has the receivedAt its rule adds
// and nothing else of the agent's but version and connectedAt (the rule
// selects those by name), so an agent cannot make its status look like a
// lifecycle event, nor name another customer or thing.
func ParseInput(b []byte) (Input, error) {
	if len(b) > MaxInputBytes {
		return Input{}, fmt.Errorf("presence input is %d bytes; at most %d expected", len(b), MaxInputBytes)
	}
	var keys map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&keys); err != nil || keys == nil {
		return Input{}, errors.New("presence input is not a JSON object")
	}
	if _, ok := keys["eventType"]; ok {
		e, err := ParseEvent(b)
		if err != nil {
			return Input{}, err
		}
		return Input{Event: &e}, nil
	}
	if _, ok := keys["receivedAt"]; ok {
		r, err := status.ParseRecord(b)
		if err != nil {
			return Input{}, err
		}
		return Input{Status: &r}, nil
	}
	return Input{}, errors.New("presence input is neither a lifecycle event (eventType) nor a status record (receivedAt)")
}

// ApplyStatus records an agent's announced client version. The thing's
// type must be the customer its topic named (the policy already ties the
// topic to the identity; this keeps a misconfigured policy or a thing
// that is no agent from creating rows). The store writes only if no
// status received later is stored, so a repeated or late status changes
// nothing, and it never touches the connected state or its ordering.
func (h *Handler) ApplyStatus(ctx context.Context, r status.Record) (Outcome, error) {
	customer, err := h.Types.ThingType(ctx, r.Thing)
	if err != nil {
		return Ignored, err
	}
	if customer != r.Customer {
		return Ignored, fmt.Errorf("%w: %s has thing type %q, but its status came on customer %s's topic", ErrNotAnAgent, r.Thing, customer, r.Customer)
	}
	written, err := h.Store.SetVersion(ctx, Version{Customer: r.Customer, Thing: r.Thing, Version: r.Version, At: r.ReceivedAt})
	if err != nil || !written {
		return Ignored, err
	}
	return Written, nil
}

// Version is an agent's announced client version and when IoT received
// the announcement (ms since the epoch).
type Version struct {
	Customer, Thing, Version string
	At                       int64
}
