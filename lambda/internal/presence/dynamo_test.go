package presence

import (
	"context"
	"strconv"
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

// Status records and lifecycle events through the DynamoDB store against
// the stand-in: the version write never disturbs the connected state, the
// lifecycle writes never remove the version, and an older or repeated
// status changes nothing.
func TestDynamoDBStoreKeepsTheNewestVersion(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	v1 := loadStatus(t)
	v2 := v1
	v2.Version, v2.ReceivedAt = "1.6.0", v1.ReceivedAt+1000
	ddb := awsstandin.StartDynamoDB()
	defer ddb.Close()
	ddb.CreateTableWithSortKey("presence", KeyCustomer, KeyThing)
	st := &DynamoDB{Table: "presence", Client: dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.URL) })}
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st}
	ctx := context.Background()
	steps := []struct {
		apply func() (Outcome, error)
		want  Outcome
	}{
		{func() (Outcome, error) { return h.ApplyStatus(ctx, v2) }, Written}, // before any lifecycle event: the row starts with the version
		{func() (Outcome, error) { return h.Apply(ctx, conn) }, Flipped},
		{func() (Outcome, error) { return h.ApplyStatus(ctx, v1) }, Ignored}, // older
		{func() (Outcome, error) { return h.ApplyStatus(ctx, v2) }, Ignored}, // repeat
		{func() (Outcome, error) { return h.Apply(ctx, disc) }, Flipped},
	}
	for i, s := range steps {
		if got, err := s.apply(); err != nil || got != s.want {
			t.Fatalf("step %d: %v, %v; want %v", i, got, err, s.want)
		}
	}
	row := ddb.Item("presence", "acme", "186b5")
	if row == nil || row[attrVersion].S == nil || *row[attrVersion].S != "1.6.0" || row[attrVersionAt].N == nil || *row[attrVersionAt].N != strconv.FormatInt(v2.ReceivedAt, 10) {
		t.Fatalf("row %v: want version 1.6.0 at %d", row, v2.ReceivedAt)
	}
	if row[attrConnected].BOOL == nil || *row[attrConnected].BOOL || row[attrReason].S == nil {
		t.Errorf("row %v: want disconnected with its reason", row)
	}
	if n := ddb.Item("presence", "acme", CountThing); n == nil || n[attrCount].N == nil || *n[attrCount].N != "0" {
		t.Errorf("count item %v, want 0", n)
	}
}
