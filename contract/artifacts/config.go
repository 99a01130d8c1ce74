package artifacts

import (
	"fmt"
	"strings"

	"github.com/agentgate/agentgate/contract/topics"
)

// ConfigPrefix is the prefix of every configuration object.
const ConfigPrefix = "configs/"

// DefaultConfigName is the object name (without ConfigSuffix) of a
// customer's default. It is therefore not usable as an agent (thing) name.
const DefaultConfigName = "_default"

// ConfigSuffix ends every configuration object's key.
const ConfigSuffix = ".json"

// ConfigKey is a parsed configuration object key.
type ConfigKey struct {
	// Customer is the customer ID (the agents' thing type).
	Customer string
	// Agent is the agent ID (thing name); empty for a customer default.
	Agent string
}

// IsDefault reports whether k names a customer's default object.
func (k ConfigKey) IsDefault() bool { return k.Agent == "" }

// String returns the object key.
func (k ConfigKey) String() string {
	if k.IsDefault() {
		return DefaultConfigKey(k.Customer)
	}
	return AgentConfigKey(k.Customer, k.Agent)
}

// AgentConfigKey is the object key of one agent's own configuration.
func AgentConfigKey(customer, agent string) string {
	return ConfigPrefix + customer + "/" + agent + ConfigSuffix
}

// DefaultConfigKey is the object key of a customer's default configuration.
func DefaultConfigKey(customer string) string {
	return ConfigPrefix + customer + "/" + DefaultConfigName + ConfigSuffix
}

// ParseConfigKey parses a configuration object key (already URL-decoded).
func ParseConfigKey(key string) (ConfigKey, error) {
	rest, ok := strings.CutPrefix(key, ConfigPrefix)
	if !ok {
		return ConfigKey{}, fmt.Errorf("key %q is outside %s", key, ConfigPrefix)
	}
	name, ok := strings.CutSuffix(rest, ConfigSuffix)
	if !ok {
		return ConfigKey{}, fmt.Errorf("key %q does not end in %s", key, ConfigSuffix)
	}
	customer, agent, ok := strings.Cut(name, "/")
	if !ok || strings.Contains(agent, "/") {
		return ConfigKey{}, fmt.Errorf("key %q is not %s<customer>/<agent>%s", key, ConfigPrefix, ConfigSuffix)
	}
	if err := topics.ValidateCustomerID(customer); err != nil {
		return ConfigKey{}, fmt.Errorf("key %q: %w", key, err)
	}
	if agent == DefaultConfigName {
		return ConfigKey{Customer: customer}, nil
	}
	if err := topics.ValidateThingName(agent); err != nil {
		return ConfigKey{}, fmt.Errorf("key %q: %w", key, err)
	}
	return ConfigKey{Customer: customer, Agent: agent}, nil
}
