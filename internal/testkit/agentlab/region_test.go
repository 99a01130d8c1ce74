package agentlab

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestSessionStoreDropsWhatExceedsIt pins the broker limit the lab's
// publishers are sized against: a client away from its persistent session
// gets at most SessionStore QoS 1 messages kept; the rest are dropped while
// Publish still returns nil, and only Dropped tells.
func TestSessionStoreDropsWhatExceedsIt(t *testing.T) {
	r, conn, ctx := brokerConn(t)
	const id = "away-client"
	c := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn})
	expiry := uint32(3600)
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "jobs/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}
	for {
		if cl, ok := r.Broker.Clients.Get(id); ok && cl.Closed() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the broker never saw the client leave")
		case <-time.After(10 * time.Millisecond):
		}
	}

	const extra = 5
	for i := range SessionStore + extra {
		if err := r.Broker.Publish("jobs/x", []byte(fmt.Sprint(i)), false, 1); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if got := r.Stored(id); got != SessionStore {
		t.Errorf("the broker keeps %d messages for the session, want SessionStore (%d)", got, SessionStore)
	}
	if got := r.Dropped(); got != extra {
		t.Errorf("the broker dropped %d messages, want the %d beyond SessionStore", got, extra)
	}
}

// brokerConn starts a lab broker of the test's own (no relays, no
// stand-ins) and dials its plain MQTT listener; ctx bounds the test.
func brokerConn(t *testing.T) (*AWSRegion, net.Conn, context.Context) {
	t.Helper()
	l := &Lab{}
	t.Cleanup(l.Close)
	r := &AWSRegion{}
	addr, err := r.startBroker(l)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return r, conn, ctx
}
