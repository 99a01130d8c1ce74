package presence

import (
	"context"
	"errors"
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
			ddb, st := presenceTable(t, true)
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
	ddb, st := presenceTable(t, true)
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

// faultOnce fails the next request of op (before or after applying it).
func faultOnce(ddb *awsstandin.DynamoDB, op string, f awsstandin.DynamoDBFault) {
	done := false
	ddb.SetFault(func(o string) awsstandin.DynamoDBFault {
		if o != op || done {
			return awsstandin.DynamoDBFault{}
		}
		done = true
		return f
	})
}

// A failed write followed by the retried event (the Lambda retries an
// invocation that returned an error) leaves the row and the count agreeing,
// whether the transaction failed before it was applied, its answer was lost
// after it was applied (the token makes the retry a success without a second
// count), or the count read for the metric failed.
func TestDynamoDBStoreRetryAfterAFaultKeepsRowAndCountConsistent(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	for name, c := range map[string]struct {
		op        string
		fault     awsstandin.DynamoDBFault
		rowBefore bool // the failed attempt already wrote the row (and the count)
	}{
		"transaction throttled":     {"TransactWriteItems", awsstandin.DynamoDBFault{Code: "ThrottlingException"}, false},
		"answer lost after commit":  {"TransactWriteItems", awsstandin.DynamoDBFault{Code: "InternalServerError", Status: 500, AfterApply: true}, true},
		"count read for the metric": {"GetItem", awsstandin.DynamoDBFault{Code: "ProvisionedThroughputExceededException"}, true},
	} {
		t.Run(name, func(t *testing.T) {
			ddb, st := presenceTable(t, false)
			var gauge []int
			h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st, Gauge: func(_ string, n int) { gauge = append(gauge, n) }}
			ctx := context.Background()
			check := func(step string, connected *bool, count string) {
				t.Helper()
				row := ddb.Item("presence", "acme", "186b5")
				switch {
				case connected == nil && row != nil:
					t.Fatalf("%s: row %v, want none", step, row)
				case connected != nil && (row == nil || row[attrConnected].BOOL == nil || *row[attrConnected].BOOL != *connected):
					t.Fatalf("%s: row %v, want connected=%v", step, row, *connected)
				}
				got := "absent"
				if n := ddb.Item("presence", "acme", CountThing); n != nil && n[attrCount].N != nil {
					got = *n[attrCount].N
				}
				if got != count {
					t.Fatalf("%s: count %s, want %s", step, got, count)
				}
			}
			yes, no := true, false
			faultOnce(ddb, c.op, c.fault)
			if _, err := h.Apply(ctx, conn); err == nil {
				t.Fatal("the fault did not reach the handler")
			}
			if c.rowBefore {
				check("after the fault", &yes, "1")
			} else {
				check("after the fault", nil, "absent")
			}
			// The retried invocation: the same event.
			if out, err := h.Apply(ctx, conn); err != nil || out != Flipped {
				t.Fatalf("retry: %v, %v; want Flipped", out, err)
			}
			check("after the retry", &yes, "1")
			// Another repeat after DynamoDB forgot the token: the ordering
			// condition refuses it.
			ddb.ForgetTokens()
			if out, err := h.Apply(ctx, conn); err != nil || out != Ignored {
				t.Fatalf("late repeat: %v, %v; want Ignored", out, err)
			}
			check("after the late repeat", &yes, "1")
			if out, err := h.Apply(ctx, disc); err != nil || out != Flipped {
				t.Fatalf("disconnect: %v, %v; want Flipped", out, err)
			}
			check("after the disconnect", &no, "0")
			if len(gauge) != 2 || gauge[0] != 1 || gauge[1] != 0 {
				t.Errorf("gauge %v, want [1 0]", gauge)
			}
		})
	}
}

// A newer event in the state the row already holds (a reconnect seen
// without its disconnect) rewrites the row and leaves the count.
func TestDynamoDBStoreNewerSameStateLeavesTheCount(t *testing.T) {
	conn := load(t, "connected.json")
	again := conn
	again.Timestamp, again.SessionIdentifier = conn.Timestamp+1000, "b2"
	ddb, st := presenceTable(t, true)
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st}
	ctx := context.Background()
	for i, s := range []struct {
		e    Event
		want Outcome
	}{
		{conn, Flipped},
		{again, Written},
		// A repeat of the first event within DynamoDB's 10 minutes: its
		// token answers success without applying it again.
		{conn, Flipped},
		{again, Ignored},
	} {
		if out, err := h.Apply(ctx, s.e); err != nil || out != s.want {
			t.Fatalf("step %d: %v, %v; want %v", i, out, err, s.want)
		}
	}
	ddb.ForgetTokens()
	if out, err := h.Apply(ctx, conn); err != nil || out != Ignored {
		t.Fatalf("late repeat: %v, %v; want Ignored", out, err)
	}
	row := ddb.Item("presence", "acme", "186b5")
	if row[attrSince].N == nil || *row[attrSince].N != strconv.FormatInt(again.Timestamp, 10) {
		t.Errorf("row %v, want since %d", row, again.Timestamp)
	}
	if n := ddb.Item("presence", "acme", CountThing); n == nil || n[attrCount].N == nil || *n[attrCount].N != "1" {
		t.Errorf("count item %v, want 1", n)
	}
}

// When the row changes between the cancelled transaction and the plain
// write (seen here as that write's condition failing), Apply decides again;
// if it keeps changing, it gives up with an error (the invocation is
// retried) after maxApplyRounds, having changed nothing.
func TestDynamoDBStoreRedecidesWhenTheRowChanges(t *testing.T) {
	conn := load(t, "connected.json")
	again := conn
	again.Timestamp, again.SessionIdentifier = conn.Timestamp+1000, "b2"
	ddb, st := presenceTable(t, true)
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st}
	ctx := context.Background()
	if out, err := h.Apply(ctx, conn); err != nil || out != Flipped {
		t.Fatalf("connect: %v, %v", out, err)
	}
	ccf := awsstandin.DynamoDBFault{Code: "ConditionalCheckFailedException"}
	ddb.SetFault(func(op string) awsstandin.DynamoDBFault {
		if op == "UpdateItem" {
			return ccf
		}
		return awsstandin.DynamoDBFault{}
	})
	before := ddb.Count("TransactWriteItems")
	if _, err := h.Apply(ctx, again); err == nil {
		t.Fatal("a row that changes on every attempt was reported written")
	}
	if n := ddb.Count("TransactWriteItems") - before; n != maxApplyRounds {
		t.Errorf("%d transactions, want one per round (%d)", n, maxApplyRounds)
	}
	if row := ddb.Item("presence", "acme", "186b5"); *row[attrSince].N != strconv.FormatInt(conn.Timestamp, 10) {
		t.Errorf("row %v changed", row)
	}
	faultOnce(ddb, "UpdateItem", ccf)
	if out, err := h.Apply(ctx, again); err != nil || out != Written {
		t.Fatalf("changed once: %v, %v; want Written", out, err)
	}
	row := ddb.Item("presence", "acme", "186b5")
	if *row[attrSince].N != strconv.FormatInt(again.Timestamp, 10) || !*row[attrConnected].BOOL {
		t.Errorf("row %v, want connected since %d", row, again.Timestamp)
	}
	if n := ddb.Item("presence", "acme", CountThing); *n[attrCount].N != "1" {
		t.Errorf("count %v, want 1", n)
	}
}

// A transaction cancelled for a conflict (another transaction on the row or
// the customer's count row) is decided again after a short wait: the event
// is applied once, and a conflict in every round is an error the
// invocation's retry sees.
func TestDynamoDBStoreRetriesATransactionConflict(t *testing.T) {
	conn := load(t, "connected.json")
	ddb, st := presenceTable(t, false)
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st}
	conflict := awsstandin.DynamoDBFault{Code: "TransactionCanceledException", Reasons: []string{"None", "TransactionConflict"}}
	faultOnce(ddb, "TransactWriteItems", conflict)
	if out, err := h.Apply(context.Background(), conn); err != nil || out != Flipped {
		t.Fatalf("after one conflict: %v, %v; want Flipped", out, err)
	}
	if n := ddb.Item("presence", "acme", CountThing); n == nil || n[attrCount].N == nil || *n[attrCount].N != "1" {
		t.Errorf("count item %v, want 1", n)
	}
	later := conn
	later.Timestamp, later.EventType, later.SessionIdentifier = conn.Timestamp+1000, "disconnected", "b2"
	ddb.SetFault(func(op string) awsstandin.DynamoDBFault {
		if op == "TransactWriteItems" {
			return conflict
		}
		return awsstandin.DynamoDBFault{}
	})
	if _, err := h.Apply(context.Background(), later); err == nil || !errors.Is(err, errTransactionConflict) {
		t.Fatalf("conflict in every round: %v, want errTransactionConflict", err)
	}
	ddb.SetFault(nil)
	if row := ddb.Item("presence", "acme", "186b5"); row == nil || row[attrConnected].BOOL == nil || !*row[attrConnected].BOOL {
		t.Errorf("row %v changed by a cancelled transaction", row)
	}
}

// presenceTable starts a DynamoDB stand-in with the presence table as
// constructs/dataplane creates it (partition customer, sort thing) and a
// store on it; without sdkRetries a fault reaches the handler at once, as
// when the SDK's retries run out.
func presenceTable(t *testing.T, sdkRetries bool) (*awsstandin.DynamoDB, *DynamoDB) {
	t.Helper()
	ddb := awsstandin.StartDynamoDB()
	t.Cleanup(ddb.Close)
	ddb.CreateTableWithSortKey("presence", KeyCustomer, KeyThing)
	client := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ddb.URL)
		if !sdkRetries {
			o.RetryMaxAttempts = 1
		}
	})
	return ddb, &DynamoDB{Table: "presence", Client: client}
}
