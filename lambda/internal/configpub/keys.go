// Package configpub is the configuration publisher's logic: it turns
// changes to the configuration bucket into retained QoS 1 messages on each
// affected agent's exact config topic.
//
// Key layout of the configuration bucket (see docs/control-plane.md):
//
//	configs/<customer>/<agent>.json     one agent's own configuration (wins)
//	configs/<customer>/_default.json    the customer's default for every agent
//	                                    that has no object of its own
//
// <customer> is the agent's IoT thing type and <agent> its thing name; both
// follow package topics' ID rules.
package configpub

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/agentgate/agentgate/contract/topics"
)

// KeyPrefix is the prefix of every configuration object.
const KeyPrefix = "configs/"

// DefaultName is the object name (without .json) of a customer's default.
// It is therefore not usable as an agent (thing) name.
const DefaultName = "_default"

// KeySuffix ends every configuration object's key.
const KeySuffix = ".json"

// Key is a parsed configuration object key.
type Key struct {
	// Customer is the customer ID (the agents' thing type).
	Customer string
	// Agent is the agent ID (thing name); empty for a customer default.
	Agent string
}

// IsDefault reports whether k names a customer's default object.
func (k Key) IsDefault() bool { return k.Agent == "" }

// String returns the object key.
func (k Key) String() string {
	if k.IsDefault() {
		return DefaultKey(k.Customer)
	}
	return AgentKey(k.Customer, k.Agent)
}

// AgentKey is the object key of one agent's own configuration.
func AgentKey(customer, agent string) string {
	return KeyPrefix + customer + "/" + agent + KeySuffix
}

// DefaultKey is the object key of a customer's default configuration.
func DefaultKey(customer string) string {
	return KeyPrefix + customer + "/" + DefaultName + KeySuffix
}

// ParseKey parses an object key (already URL-decoded) of the layout above.
func ParseKey(key string) (Key, error) {
	rest, ok := strings.CutPrefix(key, KeyPrefix)
	if !ok {
		return Key{}, fmt.Errorf("key %q is outside %s", key, KeyPrefix)
	}
	name, ok := strings.CutSuffix(rest, KeySuffix)
	if !ok {
		return Key{}, fmt.Errorf("key %q does not end in %s", key, KeySuffix)
	}
	customer, agent, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(agent, "/") {
		return Key{}, fmt.Errorf("key %q is not %s<customer>/<agent>%s", key, KeyPrefix, KeySuffix)
	}
	if err := topics.ValidateCustomerID(customer); err != nil {
		return Key{}, fmt.Errorf("key %q: %w", key, err)
	}
	if agent == DefaultName {
		return Key{Customer: customer}, nil
	}
	if err := topics.ValidateThingName(agent); err != nil {
		return Key{}, fmt.Errorf("key %q: %w", key, err)
	}
	return Key{Customer: customer, Agent: agent}, nil
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
