package presence

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// The documented events, in several orders and repeated, through the
// DynamoDB store with the real SDK client against the stand-in: the
// conditional writes keep the newest state and the count exact.
func TestDynamoDBStoreWithTheDocumentedEvents(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	later := conn
	later.Timestamp = disc.Timestamp + 5000
	for name, c := range map[string]struct {
		events    []Event
		connected bool
		count     string
	}{
		"in order":               {[]Event{conn, disc}, false, "0"},
		"disconnect first":       {[]Event{disc, conn}, false, "0"},
		"every event twice":      {[]Event{conn, conn, disc, disc, conn}, false, "0"},
		"reconnect out of order": {[]Event{later, disc, conn, later}, true, "1"},
		"reconnect in order":     {[]Event{conn, disc, later}, true, "1"},
	} {
		t.Run(name, func(t *testing.T) {
			ddb := awsstandin.StartDynamoDB()
			defer ddb.Close()
			ddb.CreateTableWithSortKey("presence", KeyCustomer, KeyThing) // as constructs/dataplane creates it
			st := &DynamoDB{Table: "presence", Client: dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.URL) })}
			var gauge []int
			h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st, Gauge: func(_ string, n int) { gauge = append(gauge, n) }}
			for _, e := range c.events {
				if _, err := h.Apply(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			row := ddb.Item("presence", "acme", "186b5")
			if row == nil || row[attrConnected].BOOL == nil || *row[attrConnected].BOOL != c.connected {
				t.Fatalf("row %v, want connected=%v", row, c.connected)
			}
			count := "0" // no item: the count never moved
			if n := ddb.Item("presence", "acme", CountThing); n != nil {
				if n[attrCount].N == nil {
					t.Fatalf("count item without %s: %v", attrCount, n)
				}
				count = *n[attrCount].N
			}
			if count != c.count {
				t.Errorf("count %s, want %s", count, c.count)
			}
			if r := row[attrReason].S; !c.connected && (r == nil || *r != "CLIENT_INITIATED_DISCONNECT") {
				t.Errorf("reason %v", row[attrReason])
			}
			for _, g := range gauge {
				if g < 0 || g > 1 {
					t.Errorf("gauge went to %d for one agent", g)
				}
			}
		})
	}
}
