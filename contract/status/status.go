// Package status is the contract of an agent's status message: what the
// agent announces about itself once per connection (its client version),
// the topic it announces it on, and the IoT rule that hands it to the
// presence Lambda. AWS IoT's lifecycle events carry no client version (the
// documented fields are clientId, thingName, timestamp, eventType,
// sessionIdentifier, principalIdentifier, ipAddress, versionNumber and, for
// disconnects, clientInitiatedDisconnect and disconnectReason:
// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html),
// so the agent says it itself. It imports nothing beyond the standard
// library and contract/topics.
//
//	agent ── <customer>/<thing>/up/status {"version","connectedAt"} (QoS 1, once per connection)
//	   └─▶ rule agentgate_presence_status (SQL: + customer, thing from the topic, receivedAt)
//	          └─▶ presence Lambda ─▶ presence table: clientVersion, clientVersionAt
package status

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/topics"
)

// Subject is the level below up/ the status is sent on.
const Subject = "status"

// RuleName is the IoT topic rule's name (rule names match ^[a-zA-Z0-9_]+$:
// https://docs.aws.amazon.com/iot/latest/apireference/API_TopicRule.html).
const RuleName = "agentgate_presence_status"

// SQL is the rule's statement (SQL version 2016-03-23). It names the two
// fields it takes from the payload instead of SELECT *, so whatever else an
// agent puts in its message (an "eventType", a "customer", a "clientId")
// never reaches the Lambda: the customer and thing come from the topic,
// which the policy ties to the agent's identity, and receivedAt is IoT's
// clock (timestamp(), ms since the epoch). The WHERE clause skips status
// messages without a version (a vendor's own status on the same subject,
// e.g. examples/vendoragent's) so they cost no Lambda invocation:
// isUndefined() is among the documented functions
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html)
// and a missing key is Undefined, which JSON output leaves out
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-data-types.html).
// That "version" needs no quoting in IoT SQL is unverified (the SQL
// reference pages read here list no reserved words); the Lambda refuses a
// record without a valid version either way.
const SQL = "SELECT version, connectedAt, topic(1) AS customer, topic(2) AS thing, timestamp() AS receivedAt FROM '+/+/" + topics.UpLevel + "/" + Subject + "' WHERE isUndefined(version) = false"

// MaxVersionLen bounds a client version.
const MaxVersionLen = 64

// MaxMessageBytes bounds a status message and the record the rule makes of
// it: the agent's is well under 200 bytes.
const MaxMessageBytes = 1024

// Topic is one agent's status topic.
func Topic(customer, thing string) string { return topics.UpTopic(customer, thing, Subject) }

// ValidateVersion reports whether v can be a client version: 1 to
// MaxVersionLen characters of [0-9A-Za-z._+~-], starting with a letter or
// digit (semantic versions, build metadata and most vendor schemes fit).
func ValidateVersion(v string) error {
	if v == "" {
		return errors.New("client version is empty")
	}
	if len(v) > MaxVersionLen {
		return fmt.Errorf("client version %.20q… is %d bytes; at most %d allowed", v, len(v), MaxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if alnum || (i > 0 && (c == '.' || c == '_' || c == '+' || c == '~' || c == '-')) {
			continue
		}
		return fmt.Errorf("client version %q: character %d is outside [0-9A-Za-z._+~-] (or a separator comes first)", v, i)
	}
	return nil
}

// Status is what the agent publishes on its status topic.
type Status struct {
	// Version is the agent's client version (ValidateVersion).
	Version string `json:"version"`
	// ConnectedAt is when the connection began by the agent's clock, ms
	// since the epoch; 0 if unknown. Informational only: the presence table
	// orders by IoT's receive time, not by the agent's clock.
	ConnectedAt int64 `json:"connectedAt"`
}

// Validate checks s.
func (s Status) Validate() error {
	if err := ValidateVersion(s.Version); err != nil {
		return err
	}
	if s.ConnectedAt < 0 {
		return errors.New("status connectedAt is negative")
	}
	return nil
}

// Marshal validates s and encodes it.
func (s Status) Marshal() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(s)
}

// Record is what the rule delivers for one status message.
type Record struct {
	Status
	// Customer and Thing are the topic's first two levels.
	Customer string `json:"customer"`
	Thing    string `json:"thing"`
	// ReceivedAt is when IoT received the message, ms since the epoch.
	ReceivedAt int64 `json:"receivedAt"`
}

// ParseRecord decodes and checks one record from the rule: at most
// MaxMessageBytes, exactly one JSON object with no fields beyond the SQL's,
// customer and thing valid IDs, a valid version, receivedAt positive.
func ParseRecord(b []byte) (Record, error) {
	if len(b) > MaxMessageBytes {
		return Record{}, fmt.Errorf("status record is %d bytes; at most %d expected", len(b), MaxMessageBytes)
	}
	var r Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("status record: %w", err)
	}
	if dec.More() {
		return Record{}, errors.New("status record has data after its JSON object")
	}
	if err := topics.ValidateCustomerID(r.Customer); err != nil {
		return Record{}, fmt.Errorf("status record: %w", err)
	}
	if err := topics.ValidateThingName(r.Thing); err != nil {
		return Record{}, fmt.Errorf("status record: %w", err)
	}
	if err := r.Status.Validate(); err != nil {
		return Record{}, fmt.Errorf("status record of %s/%s: %w", r.Customer, r.Thing, err)
	}
	if r.ReceivedAt <= 0 {
		return Record{}, fmt.Errorf("status record of %s/%s has no receivedAt", r.Customer, r.Thing)
	}
	return r, nil
}

// Route maps a topic to the customer and thing the rule's FROM clause
// would match it for: <customer>/<thing>/up/status with valid IDs.
func Route(topic string) (customer, thing string, ok bool) {
	levels := strings.Split(topic, "/")
	if len(levels) != 4 || levels[2] != topics.UpLevel || levels[3] != Subject {
		return "", "", false
	}
	if topics.ValidateCustomerID(levels[0]) != nil || topics.ValidateThingName(levels[1]) != nil {
		return "", "", false
	}
	return levels[0], levels[1], true
}

// Select is SQL applied to one message, for the lab and tests: the
// payload's version and connectedAt as they are (any JSON type; a missing
// one stays missing), customer and thing from the topic, receivedAt.
// matched is false when the WHERE clause drops the message (no version).
// A payload that is not one JSON object is an error (what IoT does with it
// is unverified; the Lambda would refuse the record either way).
func Select(payload []byte, customer, thing string, receivedAt time.Time) (record []byte, matched bool, err error) {
	if len(payload) > topics.MaxMessageBytes {
		return nil, false, fmt.Errorf("message is %d bytes; IoT Core carries at most %d", len(payload), topics.MaxMessageBytes)
	}
	var in map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&in); err != nil || in == nil || dec.More() {
		return nil, false, errors.New("status message is not one JSON object")
	}
	v, ok := in["version"]
	if !ok {
		return nil, false, nil
	}
	out := map[string]json.RawMessage{"version": v}
	if c, ok := in["connectedAt"]; ok {
		out["connectedAt"] = c
	}
	out["customer"], _ = json.Marshal(customer)
	out["thing"], _ = json.Marshal(thing)
	out["receivedAt"] = json.RawMessage(fmt.Sprint(receivedAt.UnixMilli()))
	record, err = json.Marshal(out)
	return record, true, err
}
