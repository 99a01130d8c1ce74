// Package releasekit holds what the self-update end-to-end tests share:
// the lab thing's update reports as they arrive on the lab's broker.
package releasekit

import (
	"encoding/json"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent/update"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// SubscribeReports subscribes (QoS 1) to the lab thing's update reports on
// the lab's broker and returns the channel they arrive on, buffered for 32.
// A payload that is not a report is dropped. It fails t if the broker
// refuses the subscription.
func SubscribeReports(t testing.TB, l *agentlab.Lab) <-chan update.Report {
	t.Helper()
	reports := make(chan update.Report, 32)
	if err := l.Broker.Subscribe(topics.UpTopic(agentlab.CustomerID, agentlab.ThingName, update.ReportSubject), 1,
		func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			var r update.Report
			if json.Unmarshal(pk.Payload, &r) == nil {
				reports <- r
			}
		}); err != nil {
		t.Fatal(err)
	}
	return reports
}
