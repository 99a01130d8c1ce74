// Package telemetry is the telemetry path's contract: the topic an agent
// sends telemetry on, the IoT rule that delivers it to the backend's stream
// (its name and SQL), and what the rule makes of a message. The dataplane
// construct renders the rule from it, the reference agent publishes with it
// and the lab's broker hook applies the very same mapping, so all three
// agree. It imports nothing beyond the standard library and contract/topics.
//
//	agent ── $aws/rules/agentgate_telemetry/<customer>/<thing>/up/telemetry (Basic Ingest)
//	      or <customer>/<thing>/up/telemetry (through the broker)
//	        └─▶ rule agentgate_telemetry ─▶ Kinesis Data Streams, partition key <customer>/<thing>
//	                                     └─ error action ─▶ SQS dead-letter queue (+ alarm)
package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/topics"
)

// Subject is the level below up/ telemetry is sent on.
const Subject = "telemetry"

// RuleName is the IoT topic rule's name. Rule names match ^[a-zA-Z0-9_]+$
// (no '-'): https://docs.aws.amazon.com/iot/latest/apireference/API_TopicRule.html.
const RuleName = "agentgate_telemetry"

// BasicIngestPrefix is the topic prefix that hands a message straight to
// the rule without the broker's publish/subscribe (and without its
// messaging charge): https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html.
const BasicIngestPrefix = "$aws/rules/" + RuleName + "/"

// Topic is one agent's telemetry topic.
func Topic(customer, thing string) string { return topics.UpTopic(customer, thing, Subject) }

// BasicIngestTopic is one agent's telemetry topic through Basic Ingest.
func BasicIngestTopic(customer, thing string) string {
	return BasicIngestPrefix + Topic(customer, thing)
}

// SQL is the rule's statement (SQL version 2016-03-23): the batch's own
// fields by name (Batch: seq, boot, records) with the customer and thing
// taken from the topic and the time IoT received it (timestamp(),
// milliseconds since the epoch). It names the fields rather than SELECT *
// so that nothing the agent writes can stand beside or in place of the
// topic's identity on the shared stream; a field the message lacks is
// Undefined and left out
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-data-types.html).
// A message sent through Basic Ingest is matched without its
// $aws/rules/<rule>/ prefix (the Basic Ingest page's example); that
// topic() then also counts levels without the prefix is unverified.
const SQL = "SELECT seq, boot, records, topic(1) AS customer, topic(2) AS thing, timestamp() AS receivedAt FROM '+/+/" + topics.UpLevel + "/" + Subject + "'"

// selected are the message's fields SQL passes on.
var selected = []string{"seq", "boot", "records"}

// SQLVersion is the rules engine SQL version the statement is written for.
const SQLVersion = "2016-03-23"

// PartitionKey is the Kinesis partition key template: one agent's records
// share a shard and so keep their order.
const PartitionKey = "${topic(1)}/${topic(2)}"

// Route maps a topic to the customer and thing the rule would deliver it
// for, the way the rule's FROM clause matches: <customer>/<thing>/up/telemetry,
// directly or behind the Basic Ingest prefix. ok is false for any other topic.
func Route(topic string) (customer, thing string, ok bool) {
	topic = strings.TrimPrefix(topic, BasicIngestPrefix)
	levels := strings.Split(topic, "/")
	if len(levels) != 4 || levels[2] != topics.UpLevel || levels[3] != Subject {
		return "", "", false
	}
	if topics.ValidateCustomerID(levels[0]) != nil || topics.ValidateThingName(levels[1]) != nil {
		return "", "", false
	}
	return levels[0], levels[1], true
}

// Batch is what the reference agent sends: records in the order they were
// produced, numbered so a reader sees gaps, reordering and repeats.
type Batch struct {
	// Seq counts the agent's batches from 1 since its process started.
	Seq uint64 `json:"seq"`
	// Boot identifies the agent process, so a restart's Seq 1 is not taken
	// for a repeat.
	Boot string `json:"boot"`
	// Records are the telemetry records, JSON values.
	Records []json.RawMessage `json:"records"`
}

// Record is what the rule delivers for one message: the agent's object
// with the three fields the SQL adds.
type Record struct {
	Batch
	Customer   string `json:"customer"`
	Thing      string `json:"thing"`
	ReceivedAt int64  `json:"receivedAt"`
}

// Enrich is the rule's SELECT applied to payload: the message must be one
// JSON object (the rule selects fields of objects only); its seq, boot and
// records pass on, every other field is dropped, and customer, thing and
// receivedAt are set from the topic and the receive time.
func Enrich(payload []byte, customer, thing string, receivedAt time.Time) ([]byte, error) {
	if len(payload) > topics.MaxMessageBytes {
		return nil, fmt.Errorf("message is %d bytes; IoT Core carries at most %d", len(payload), topics.MaxMessageBytes)
	}
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, errors.New("telemetry message is not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("telemetry message has data after its JSON object")
	}
	out := make(map[string]json.RawMessage, len(selected)+3)
	for _, k := range selected {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	c, _ := json.Marshal(customer)
	t, _ := json.Marshal(thing)
	out["customer"], out["thing"] = c, t
	out["receivedAt"] = json.RawMessage(fmt.Sprint(receivedAt.UnixMilli()))
	return json.Marshal(out)
}
