package agentlab

import (
	"encoding/json"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/contract/telemetry"
)

// TestTelemetryRuleMapsRefusesAndDeadLetters: the lab's rule puts a
// telemetry message on the stream with the topic's customer and thing,
// refuses one for another thing or customer (as the agent policy does),
// leaves other topics alone, and sends what it cannot enrich to its dead
// letters.
func TestTelemetryRuleMapsRefusesAndDeadLetters(t *testing.T) {
	r, conn, ctx := brokerConn(t)
	c := paho.NewClient(paho.ClientConfig{ClientID: ThingName, Conn: conn})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: ThingName, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	publish := func(topic, payload string) byte {
		pr, _ := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
		if pr == nil {
			t.Fatalf("no PUBACK for %s", topic)
		}
		return pr.ReasonCode
	}
	if rc := publish(telemetry.BasicIngestTopic(CustomerID, ThingName), `{"seq":1,"boot":"b","records":[{"t":1}]}`); rc != 0 {
		t.Fatalf("own telemetry: PUBACK 0x%02x", rc)
	}
	for _, topic := range []string{telemetry.BasicIngestTopic(CustomerID, "someone-else"), telemetry.Topic("other-customer", ThingName)} {
		if rc := publish(topic, `{"seq":1}`); rc != 0x87 {
			t.Errorf("%s: PUBACK 0x%02x, want 0x87 (not authorized)", topic, rc)
		}
	}
	if rc := publish(telemetry.Topic(CustomerID, ThingName), `not json`); rc != 0 {
		t.Errorf("non-JSON telemetry: PUBACK 0x%02x", rc)
	}
	if rc := publish(CustomerID+"/"+ThingName+"/up/status", `{"ok":true}`); rc != 0 {
		t.Errorf("status: PUBACK 0x%02x", rc)
	}
	recs := r.Telemetry.Stream.Records()
	if len(recs) != 1 || recs[0].PartitionKey != CustomerID+"/"+ThingName {
		t.Fatalf("stream holds %+v, want the one telemetry record", recs)
	}
	var rec telemetry.Record
	if err := json.Unmarshal(recs[0].Data, &rec); err != nil || rec.Customer != CustomerID || rec.Thing != ThingName || rec.Seq != 1 || rec.ReceivedAt == 0 {
		t.Errorf("record %s (%v)", recs[0].Data, err)
	}
	if n := r.Telemetry.Refused(); n != 2 {
		t.Errorf("refused %d, want 2", n)
	}
	if dl := r.Telemetry.DeadLetters(); len(dl) != 1 || string(dl[0]) != "not json" {
		t.Errorf("dead letters %q", dl)
	}
}
