// Package topics defines the MQTT topic layout that agents, IoT policies and
// the control-plane Lambdas share. It is the single source of truth: the
// identity construct renders policies from it, the publishers address
// messages with it and the reference agent subscribes with it.
//
// Layout:
//
//	<customer>/<thing>/up/<subject>    what one agent sends (telemetry, results, status)
//	<customer>/<thing>/down/<subject>  what is sent to one agent (commands)
//	<customer>/<thing>/config          its retained configuration (exact subscribe)
//	agentgate/releases/<channel>       retained agent-release announcements
//
// Retained messages reach only subscriptions whose filter equals the topic
// exactly, so agents subscribe to their config topic and release topic by
// name and to <customer>/<thing>/down/# for the rest; they publish only
// below <customer>/<thing>/up/ (docs/data-plane.md).
package topics

import (
	"fmt"
	"regexp"
	"strings"
)

// ConfigSubject is the last topic level of an agent's configuration topic.
const ConfigSubject = "config"

// ReleaseRoot is the topic prefix of release announcements. Its first level is
// a reserved customer ID so it can never collide with a tenant's topics.
const ReleaseRoot = "agentgate/releases"

// ReservedCustomerID cannot be used as a customer ID: it owns ReleaseRoot.
const ReservedCustomerID = "agentgate"

// DefaultReleaseChannel is the channel agents follow unless configured otherwise.
const DefaultReleaseChannel = "stable"

// MaxIDLen bounds customer IDs and release channels. Thing names are bounded
// by IoT itself at 128 characters.
const MaxIDLen = 64

// MaxThingNameLen is AWS IoT's limit on thing names.
const MaxThingNameLen = 128

// MaxMessageBytes is AWS IoT Core's limit on one message's payload, on any
// topic: the broker refuses a larger publish, so publishers refuse it first
// and agents refuse a larger message unread. The quota page
// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits,
// "Message size") says 128 KB without saying whether a KB is 1000 or 1024
// bytes; 1024 is assumed (unverified).
const MaxMessageBytes = 128 << 10

// idPattern is AWS IoT's thing-name character set minus ':' (ambiguous
// inside an ARN); customer IDs, thing names and channels must satisfy it. It excludes
// '/', '+', '#', '$' and '*', so an ID can never add a topic level, look like
// an MQTT wildcard, or act as an IAM wildcard.
var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ValidateCustomerID reports whether id can be a customer ID.
func ValidateCustomerID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("customer id is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("customer id %.20q… is %d characters; at most %d allowed", id, len(id), MaxIDLen)
	case !idPattern.MatchString(id):
		return fmt.Errorf("customer id %q has characters outside [a-zA-Z0-9_-]", id)
	case strings.EqualFold(id, ReservedCustomerID):
		return fmt.Errorf("customer id %q is reserved for release announcements", id)
	}
	return nil
}

// ValidateThingName reports whether name can be an agent's thing name.
func ValidateThingName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("thing name is empty")
	case len(name) > MaxThingNameLen:
		return fmt.Errorf("thing name %.20q… is %d characters; at most %d allowed", name, len(name), MaxThingNameLen)
	case !idPattern.MatchString(name):
		return fmt.Errorf("thing name %q has characters outside [a-zA-Z0-9_-]", name)
	}
	return nil
}

// ValidateChannel reports whether ch can be a release channel name.
func ValidateChannel(ch string) error {
	switch {
	case ch == "":
		return fmt.Errorf("release channel is empty")
	case len(ch) > MaxIDLen:
		return fmt.Errorf("release channel %.20q… is %d characters; at most %d allowed", ch, len(ch), MaxIDLen)
	case !idPattern.MatchString(ch):
		return fmt.Errorf("release channel %q has characters outside [a-zA-Z0-9_-]", ch)
	}
	return nil
}

// ThingPrefix is the topic prefix (without trailing slash) that belongs to one agent.
func ThingPrefix(customer, thing string) string { return customer + "/" + thing }

// ConfigTopic is the exact topic of one agent's retained configuration.
func ConfigTopic(customer, thing string) string {
	return ThingPrefix(customer, thing) + "/" + ConfigSubject
}

// ReleaseTopic is the exact topic of a release channel's retained announcement.
func ReleaseTopic(channel string) string { return ReleaseRoot + "/" + channel }

// UpLevel and DownLevel split an agent's topic space by direction: the agent
// publishes only under <customer>/<thing>/up/ and receives only from
// <customer>/<thing>/down/ (and its exact config topic), so it can never
// publish into its own command or configuration stream and never receives
// its own telemetry.
const (
	UpLevel   = "up"
	DownLevel = "down"
)

// UpPrefix is the prefix (without trailing slash) of what one agent sends.
func UpPrefix(customer, thing string) string { return ThingPrefix(customer, thing) + "/" + UpLevel }

// DownPrefix is the prefix (without trailing slash) of what one agent receives.
func DownPrefix(customer, thing string) string {
	return ThingPrefix(customer, thing) + "/" + DownLevel
}

// UpTopic is the topic on which one agent sends subject (for example
// "telemetry", "status", "release").
func UpTopic(customer, thing, subject string) string {
	return UpPrefix(customer, thing) + "/" + subject
}

// MaxSubjectLevels bounds the levels of a subject below up/ or down/. AWS
// IoT allows 7 forward slashes in a topic, i.e. 8 levels
// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits,
// "Maximum number of slashes in topic and topic filter"); customer, thing
// and direction take three. Basic Ingest's $aws/rules/<rule>/ prefix is
// said not to count toward it (unverified: not found on that page).
const MaxSubjectLevels = 5

// MaxSubjectLen bounds a subject's length in bytes.
const MaxSubjectLen = 128

// ValidateSubject reports whether subject can follow up/ or down/: one to
// MaxSubjectLevels non-empty levels of [a-zA-Z0-9_-] separated by '/', so it
// holds no wildcard and cannot climb out of its direction.
func ValidateSubject(subject string) error {
	if subject == "" {
		return fmt.Errorf("subject is empty")
	}
	if len(subject) > MaxSubjectLen {
		return fmt.Errorf("subject %.20q… is %d bytes; at most %d allowed", subject, len(subject), MaxSubjectLen)
	}
	levels := strings.Split(subject, "/")
	if len(levels) > MaxSubjectLevels {
		return fmt.Errorf("subject %q has %d levels; at most %d allowed", subject, len(levels), MaxSubjectLevels)
	}
	for _, l := range levels {
		if !idPattern.MatchString(l) {
			return fmt.Errorf("subject %q has an empty level or characters outside [a-zA-Z0-9_-]", subject)
		}
	}
	return nil
}

// DownTopic is the topic on which one agent receives subject (for example
// "command").
func DownTopic(customer, thing, subject string) string {
	return DownPrefix(customer, thing) + "/" + subject
}
