//go:build linux

package agent_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// spoilSubscribe spoils the agent's first n SUBSCRIBEs at the broker: each
// filter is replaced by an invalid one, so the broker stores nothing and
// answers 0x8F (topic filter invalid), and before that onSpoil runs (e.g.
// kills the relay, so the SUBACK never reaches the agent).
type spoilSubscribe struct {
	mqtt.HookBase
	thing   string
	mu      sync.Mutex
	n       int
	onSpoil func()
}

func (h *spoilSubscribe) ID() string           { return "spoil-subscribe" }
func (h *spoilSubscribe) Provides(b byte) bool { return b == mqtt.OnSubscribe }
func (h *spoilSubscribe) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cl.ID != h.thing || h.n == 0 {
		return pk
	}
	h.n--
	filters := make(packets.Subscriptions, len(pk.Filters))
	for i, f := range pk.Filters {
		f.Filter = "spoiled/#/invalid"
		filters[i] = f
	}
	pk.Filters = filters
	if h.onSpoil != nil {
		h.onSpoil()
	}
	return pk
}

// TestReconnectAfterLostSubscribeSubscribesAgain: the connection dies
// while the first SUBSCRIBE is with the broker (the relay is killed and
// nothing was subscribed). The reconnect's CONNACK says "session present"
// (the broker kept the session, without subscriptions), and the agent must
// subscribe again rather than trust it: a newer retained config published
// after the reconnect arrives.
func TestReconnectAfterLostSubscribeSubscribesAgain(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	hook := &spoilSubscribe{thing: agentlab.ThingName, n: 1, onSpoil: l.Relays[0].Kill}
	if err := l.Broker.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAgent(t, labConfig(l, rec, ""))
	rec.wait(t, "a reconnect with the session present", func() bool {
		n := 0
		for _, e := range rec.events {
			if e.Step == agent.StepConnect && e.Err == nil {
				n++
				if n == 2 && e.Detail != "session present=true" {
					t.Errorf("second CONNACK: %s, want the session kept", e.Detail)
				}
			}
		}
		return n >= 2
	})
	v2 := publishConfig(t, l, 1764406900000, `{"interval":30}`)
	rec.wait(t, "the newer config after the reconnect", func() bool {
		for _, e := range rec.applied {
			if e.Version == v2.Version {
				return true
			}
		}
		return false
	})
}

// TestRefusedSubackIsErrRefusedAndRetried: a SUBACK with a failure code is
// reported as agenterr.ErrRefused, and the agent subscribes again (after a
// backoff) on the same connection until it succeeds.
func TestRefusedSubackIsErrRefusedAndRetried(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	hook := &spoilSubscribe{thing: agentlab.ThingName, n: 2}
	if err := l.Broker.AddHook(hook, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	runAgent(t, labConfig(l, rec, ""))
	rec.wait(t, "the retained config after two refused SUBACKs", func() bool { return len(rec.applied) == 1 })
	events, _, _ := rec.snapshot()
	var refused []error
	connects := 0
	for _, e := range events {
		if e.Step == agent.StepSubscribe && e.Err != nil {
			refused = append(refused, e.Err)
		}
		if e.Step == agent.StepConnect && e.Err == nil {
			connects++
		}
	}
	if len(refused) != 2 {
		t.Fatalf("%d failed subscriptions, want 2; events:\n%s", len(refused), formatEvents(events))
	}
	for _, err := range refused {
		if !errors.Is(err, agenterr.ErrRefused) || !strings.Contains(err.Error(), "SUBACK refused "+agentlab.CustomerID+"/"+agentlab.ThingName+"/config with reason 0x8f") {
			t.Errorf("refused SUBACK reported as %v", err)
		}
	}
	if connects != 1 {
		t.Errorf("%d connections; the retry belongs on the same connection", connects)
	}
}

// TestFailedOnConfigIsRetried: when OnConfig fails (here three times), the agent subscribes to
// the exact config topic again after a backoff, the broker resends the
// retained config, and OnConfig gets it again until it succeeds.
func TestFailedOnConfigIsRetried(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	v1 := publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	var mu sync.Mutex
	calls := 0
	cfg.OnConfig = func(e envelope.Envelope) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n <= 3 {
			return errors.New("disk full")
		}
		return rec.config(e)
	}
	a, _ := runAgent(t, cfg)
	// The fourth offer can only come from a second re-subscription; its
	// event may be reported just after the config it brought.
	rec.wait(t, "the config applied after three failures", func() bool {
		return len(rec.applied) == 1 && strings.Contains(formatEvents(rec.events), "again after a failed OnConfig (retry 2)")
	})
	// The agent makes the config current only after OnConfig returned.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		cur, ok := a.Current()
		if ok && cur.Version == v1.Version {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("current %+v", cur)
		}
	}
	events, _, _ := rec.snapshot()
	failed, resubscribed := 0, 0
	for _, e := range events {
		if e.Step == agent.StepConfig && e.Err != nil && strings.Contains(e.Err.Error(), "disk full") {
			failed++
		}
		if e.Step == agent.StepSubscribe && e.Err == nil && strings.Contains(e.Detail, "again after a failed OnConfig") {
			resubscribed++
		}
	}
	// The first SUBSCRIBE offers the retained config twice (it matches
	// both filters); each re-subscription of the exact topic offers it once.
	if failed != 3 || resubscribed < 2 {
		t.Errorf("%d failed applications, %d re-subscriptions; want 3 and at least 2; events:\n%s", failed, resubscribed, formatEvents(events))
	}
	// Once applied, no more retries: the same retained config is not offered again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Publish(ctx, "telemetry", []byte("ok")); err != nil {
		t.Fatal(err)
	}
}

// refusePublish answers the agent's QoS 1 publishes to one topic with a
// PUBACK carrying 0x87 (not authorized), as IoT does for a topic the
// policy does not allow.
type refusePublish struct {
	mqtt.HookBase
	topic string
}

func (h *refusePublish) ID() string           { return "refuse-publish" }
func (h *refusePublish) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *refusePublish) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.ID == agentlab.ThingName && pk.TopicName == h.topic {
		return pk, packets.ErrNotAuthorized
	}
	return pk, nil
}

// TestRefusedPubackIsErrRefused: Publish reports a PUBACK failure code as
// agenterr.ErrRefused with the topic and the code.
func TestRefusedPubackIsErrRefused(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	topic := topics.UpTopic(agentlab.CustomerID, agentlab.ThingName, "forbidden")
	if err := l.Broker.AddHook(&refusePublish{topic: topic}, nil); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	a, _ := runAgent(t, labConfig(l, rec, ""))
	rec.wait(t, "connected", func() bool { return len(rec.applied) == 1 && hasEvent(rec.events, agent.StepSubscribe, "") })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Publish(ctx, "forbidden", []byte("x"))
	if !errors.Is(err, agenterr.ErrRefused) || !strings.Contains(err.Error(), "PUBACK for "+topic+" has reason 0x87") {
		t.Fatalf("Publish to a refused topic: %v", err)
	}
	if err := a.Publish(ctx, "telemetry", []byte("x")); err != nil {
		t.Fatalf("Publish to an allowed topic: %v", err)
	}
}

// TestPublishStaysBelowUp: a subject that could leave <customer>/<thing>/up/
// (wildcards, empty levels, "..", too many levels) or a message IoT would
// refuse is rejected before anything is sent.
func TestPublishStaysBelowUp(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.ClientLeaf("t1")
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{CustomerID: "acme", ThingName: "t1", Transport: agent.TransportCertificate,
		IoTEndpoint: "x-ats.iot.eu-west-1.amazonaws.com", Certificate: cert})
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"", "#", "+/x", "../down/command", "a//b", "/config", "a/b/c/d/e/f", "$aws/rules/x"} {
		if err := a.Publish(context.Background(), subject, []byte("x")); err == nil || errors.Is(err, agenterr.ErrRefused) {
			t.Errorf("Publish(%q) = %v, want a validation error", subject, err)
		}
	}
	if err := a.Publish(context.Background(), "telemetry", make([]byte, agent.MaxMessageBytes+1)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversize Publish = %v", err)
	}
}
