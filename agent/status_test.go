//go:build linux

package agent_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// statusHook records what the broker receives on the agent's status topic.
type statusHook struct {
	mqtt.HookBase
	mu  sync.Mutex
	got []status.Status
	bad []string
}

func (h *statusHook) ID() string           { return "status-recorder" }
func (h *statusHook) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *statusHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.TopicName != status.Topic(agentlab.CustomerID, agentlab.ThingName) {
		return pk, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var s status.Status
	if err := json.Unmarshal(pk.Payload, &s); err != nil || s.Validate() != nil || pk.FixedHeader.Qos != 1 || pk.FixedHeader.Retain {
		h.bad = append(h.bad, string(pk.Payload))
	} else {
		h.got = append(h.got, s)
	}
	return pk, nil
}

func (h *statusHook) snapshot() ([]status.Status, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]status.Status(nil), h.got...), append([]string(nil), h.bad...)
}

// TestStatusOncePerConnection: the agent announces its client version once
// per connection — not again when its subscription is refused and retried
// on the same connection, and again after a reconnect whose session kept
// the subscriptions. Counted at the broker after the agent has stopped, so
// a late extra announcement cannot hide.
func TestStatusOncePerConnection(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	hook := &statusHook{}
	if err := l.Broker.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Broker.AddHook(&spoilSubscribe{thing: agentlab.ThingName, n: 2}, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	cfg.ClientVersion = "1.2.3-lab+7"
	_, stop := runAgent(t, cfg)
	announced := func(n int) func() bool {
		return func() bool {
			k := 0
			for _, e := range rec.events {
				if e.Step == agent.StepStatus && e.Err == nil {
					k++
				}
			}
			return k == n
		}
	}
	rec.wait(t, "the first announcement", announced(1))
	l.Relays[activeRelay(t, l)].Kill()
	rec.wait(t, "the announcement on the second connection", announced(2))
	stop()

	events, _, _ := rec.snapshot()
	connects, refused := 0, 0
	for _, e := range events {
		switch {
		case e.Step == agent.StepConnect && e.Err == nil:
			connects++
		case e.Step == agent.StepSubscribe && e.Err != nil:
			refused++
		case e.Step == agent.StepStatus && e.Err != nil:
			t.Errorf("announcement failed: %v", e.Err)
		}
	}
	got, bad := hook.snapshot()
	if len(bad) != 0 {
		t.Errorf("malformed status messages: %q", bad)
	}
	if connects != 2 || refused != 2 || len(got) != 2 {
		t.Fatalf("%d connections, %d refused subscriptions, %d status messages %+v; want 2, 2, 2; events:\n%s", connects, refused, len(got), got, formatEvents(events))
	}
	for _, s := range got {
		if s.Version != "1.2.3-lab+7" || s.ConnectedAt <= 0 {
			t.Errorf("status %+v", s)
		}
	}
	if got[1].ConnectedAt < got[0].ConnectedAt {
		t.Errorf("second connection's connectedAt %d before the first's %d", got[1].ConnectedAt, got[0].ConnectedAt)
	}
}

// A client version that is empty announces nothing; one that is too long,
// has spaces, control characters or starts with a separator is refused by New.
func TestClientVersionIsValidated(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ClientLeaf("t1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{CustomerID: "acme", ThingName: "t1", Transport: agent.TransportCertificate,
		IoTEndpoint: "x-ats.iot.eu-west-1.amazonaws.com", Certificate: cert}
	for _, v := range []string{"", "1.5.0", "2026.12.4-rc.1+g1a2b3c"} {
		cfg.ClientVersion = v
		if _, err := agent.New(cfg); err != nil {
			t.Errorf("ClientVersion %q: %v", v, err)
		}
	}
	for _, v := range []string{" 1", "1 2", "1\n", "-1", "1\x00", "ü", strings.Repeat("1", status.MaxVersionLen+1)} {
		cfg.ClientVersion = v
		if _, err := agent.New(cfg); err == nil {
			t.Errorf("ClientVersion %q accepted", v)
		}
	}
}
