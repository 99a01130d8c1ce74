// Package presence is the presence Lambda's logic: it turns AWS IoT
// lifecycle events ($aws/events/presence/connected|disconnected/<clientId>,
// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html)
// into one row per agent — customer, thing, connected or not, since when,
// the last disconnect reason — and a count of connected agents per
// customer, published as a metric.
//
// Lifecycle messages "might be sent out of order" and "you might receive
// duplicate messages" (same page). An event therefore changes a row only
// when it is newer than the event the row was last written from (Newer:
// timestamp, then versionNumber, then disconnected after connected); the
// store applies that as a conditional write, so an older or repeated event
// changes nothing, and the per-customer count moves only when a row's
// connected state flips, in the same transaction as the row.
//
// Lifecycle events carry no client version, so each agent announces its
// own on <customer>/<thing>/up/status (contract/status) and a second rule
// hands that to the same Lambda (ParseInput tells the two apart,
// ApplyStatus stores it). docs/data-plane.md, Presence.
package presence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/agentgate/agentgate/contract/topics"
)

// Event types of connect/disconnect lifecycle events.
const (
	Connected    = "connected"
	Disconnected = "disconnected"
)

// MaxEventBytes bounds one event: the documented ones are a few hundred bytes.
const MaxEventBytes = 4096

// Event is a connect or disconnect lifecycle event, as documented.
type Event struct {
	ClientID                  string `json:"clientId"`
	ThingName                 string `json:"thingName,omitempty"`
	Timestamp                 int64  `json:"timestamp"`
	EventType                 string `json:"eventType"`
	SessionIdentifier         string `json:"sessionIdentifier"`
	PrincipalIdentifier       string `json:"principalIdentifier"`
	IPAddress                 string `json:"ipAddress,omitempty"`
	VersionNumber             int64  `json:"versionNumber"`
	ClientInitiatedDisconnect *bool  `json:"clientInitiatedDisconnect,omitempty"`
	DisconnectReason          string `json:"disconnectReason,omitempty"`
}

// ParseEvent decodes and checks one event. Unknown fields are allowed
// (AWS may add some); the client ID must be a valid thing name (agents
// connect with their thing name), the type connected or disconnected, the
// timestamp positive.
func ParseEvent(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, fmt.Errorf("lifecycle event is %d bytes; at most %d expected", len(b), MaxEventBytes)
	}
	var e Event
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("lifecycle event is not a JSON object: %w", err)
	}
	if dec.More() {
		return Event{}, errors.New("lifecycle event has data after its JSON object")
	}
	if err := topics.ValidateThingName(e.ClientID); err != nil {
		return Event{}, fmt.Errorf("lifecycle event client id: %w", err)
	}
	switch {
	case e.EventType != Connected && e.EventType != Disconnected:
		return Event{}, fmt.Errorf("lifecycle event type %.20q is neither connected nor disconnected", e.EventType)
	case e.Timestamp <= 0:
		return Event{}, errors.New("lifecycle event has no timestamp")
	case e.VersionNumber < 0:
		return Event{}, errors.New("lifecycle event has a negative version number")
	case len(e.DisconnectReason) > 64:
		return Event{}, errors.New("lifecycle event disconnect reason is too long")
	}
	return e, nil
}

// Position orders the events of one client: timestamp (milliseconds), then
// versionNumber, then disconnected after connected.
type Position struct {
	Timestamp, Version int64
	Disconnect         bool
}

// Position is e's place in its client's order.
func (e Event) Position() Position {
	return Position{Timestamp: e.Timestamp, Version: e.VersionNumber, Disconnect: e.EventType == Disconnected}
}

// Newer reports whether p comes after q; equal positions (a repeat) are not newer.
func (p Position) Newer(q Position) bool {
	if p.Timestamp != q.Timestamp {
		return p.Timestamp > q.Timestamp
	}
	if p.Version != q.Version {
		return p.Version > q.Version
	}
	return p.Disconnect && !q.Disconnect
}

// Row is one agent's presence.
type Row struct {
	Customer, Thing string
	Connected       bool
	// Since is when the current state began (the event's timestamp, ms).
	Since int64
	// LastDisconnectReason is the reason of the latest disconnect seen.
	LastDisconnectReason string
	// At is the position of the event the row was written from.
	At Position
}

// Store keeps rows. Apply writes row only if no row exists for its
// customer and thing or the stored row's At is older than row.At (a
// conditional write) and leaves the client version alone. When the write
// flips the row's connected state it moves the customer's connected count
// by one in the same atomic write, so a failure can never leave one done
// without the other; token names the event (Event.Token) so that a retried
// write already done is not done twice. It returns Ignored (older or a
// repeat), Written or Flipped, and with Flipped the customer's count after
// the write. SetVersion writes v's version and time on its row (creating
// the row if there is none) only if the row holds no version received at
// or after v.At, and leaves the connected state alone.
type Store interface {
	Apply(ctx context.Context, row Row, token string) (out Outcome, count int, err error)
	SetVersion(ctx context.Context, v Version) (written bool, err error)
}

// ThingTypes finds an agent's customer: its thing type (identity.md).
type ThingTypes interface {
	ThingType(ctx context.Context, thing string) (string, error)
}

// ErrNotAnAgent means the client is not a thing with a valid customer type:
// its event is ignored.
var ErrNotAnAgent = errors.New("client is not an agent")

// Handler applies events.
type Handler struct {
	Types ThingTypes
	Store Store
	// Gauge receives each customer's connected count after it changed.
	Gauge func(customer string, connected int)
}

// Outcome says what Apply did with an event.
type Outcome int

// Outcomes.
const (
	// Ignored: older than or a repeat of what the row holds.
	Ignored Outcome = iota
	// Written: the row changed; the count stayed.
	Written
	// Flipped: the row changed from connected to not or back; the count
	// moved. Also a repeat of such an event that the store recognised by
	// its token as already done (nothing changes again).
	Flipped
)

// Apply applies one event.
func (h *Handler) Apply(ctx context.Context, e Event) (Outcome, error) {
	customer, err := h.Types.ThingType(ctx, e.ClientID)
	if err != nil {
		return Ignored, err
	}
	if topics.ValidateCustomerID(customer) != nil {
		return Ignored, fmt.Errorf("%w: %s has thing type %q", ErrNotAnAgent, e.ClientID, customer)
	}
	row := Row{Customer: customer, Thing: e.ClientID, Connected: e.EventType == Connected, Since: e.Timestamp, At: e.Position()}
	if !row.Connected {
		row.LastDisconnectReason = e.DisconnectReason
	}
	out, n, err := h.Store.Apply(ctx, row, e.Token(customer))
	if err != nil {
		return Ignored, err
	}
	if out == Flipped && h.Gauge != nil {
		h.Gauge(customer, n)
	}
	return out, nil
}

// Token names the write of e for customer: a digest of everything the
// write depends on (customer, client, session, timestamp, version, type,
// disconnect reason), 32 hex characters, so the same event always gives the
// same token and a different write a different one. DynamoDB's
// ClientRequestToken takes 1 to 36 characters
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
func (e Event) Token(customer string) string {
	h := sha256.New()
	for _, f := range []string{customer, e.ClientID, e.SessionIdentifier, strconv.FormatInt(e.Timestamp, 10),
		strconv.FormatInt(e.VersionNumber, 10), e.EventType, e.DisconnectReason} {
		// Length-prefixed, so no two field lists give the same bytes.
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}
