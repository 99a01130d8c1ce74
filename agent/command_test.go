package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/command"
	wire "github.com/agentgate/agentgate/contract/command"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// backend is a SaaS backend connected straight to the lab's broker (as a
// backend reaches IoT Core directly), sending with package command.
type backend struct {
	client *paho.Client
	sender *command.Sender
}

func startBackend(t *testing.T, l *agentlab.Lab) *backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.Regions[0].BrokerAddr)
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{}
	b.client = paho.NewClient(paho.ClientConfig{ClientID: "saas-backend", Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { return b.sender.Received(pr) },
		}})
	b.sender = command.NewSender(b.client)
	if _, err := b.client.Connect(ctx, &paho.Connect{ClientID: "saas-backend", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: command.ResultFilter(agentlab.CustomerID), QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.client.Disconnect(&paho.Disconnect{}) })
	return b
}

var target = command.Target{Customer: agentlab.CustomerID, Thing: agentlab.ThingName}

// activeRelay is the index of the relay holding the agent's IoT connection.
func activeRelay(t *testing.T, l *agentlab.Lab) int {
	t.Helper()
	for i, r := range l.Relays {
		if metric(t, r, "agentgate_relay_connections_active", "route="+agentlab.IoTHost) == 1 {
			return i
		}
	}
	t.Fatal("no relay holds the agent's IoT connection")
	return -1
}

// TestCommandSurvivesItsRelayKilledMidCommand: a command reaches the
// agent through one relay; while the handler runs that relay is killed;
// the agent reconnects through the other and the result arrives. The
// handler ran exactly once, and resending the same command ID returns the
// remembered result without running it again.
func TestCommandSurvivesItsRelayKilledMidCommand(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	a, err := agent.New(labConfig(l, rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	started, release := make(chan json.RawMessage, 1), make(chan struct{})
	if err := a.HandleCommand("restart", func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		started <- args
		select {
		case <-release:
			return json.RawMessage(`{"restarted":"spooler"}`), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	rec.wait(t, "connected", func() bool { return len(rec.applied) == 1 && hasEvent(rec.events, agent.StepSubscribe, "") })
	subscribed, _ := a.Subscribed()

	be := startBackend(t, l)
	cmd := command.Command{ID: "cmd-0001", Name: "restart", Args: json.RawMessage(`{"service":"spooler"}`), Deadline: time.Now().Add(2 * time.Minute)}
	type outcome struct {
		res command.Result
		err error
	}
	got := make(chan outcome, 1)
	go func() {
		res, err := be.sender.Send(context.Background(), target, cmd)
		got <- outcome{res, err}
	}()
	select {
	case args := <-started:
		if string(args) != `{"service":"spooler"}` {
			t.Errorf("handler got args %s", args)
		}
	case <-time.After(60 * time.Second): // deadlock guard
		t.Fatal("the command never reached the handler")
	}
	killed := activeRelay(t, l)
	l.Relays[killed].Kill()
	t.Log("killed relay", killed)
	rec.wait(t, "the disconnect", func() bool { return hasEvent(rec.events, agent.StepDisconnect, "") })
	close(release) // the handler finishes while the agent is away or reconnecting
	select {
	case <-subscribed:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent did not reconnect through the other relay")
	}
	var o outcome
	select {
	case o = <-got:
	case <-time.After(90 * time.Second):
		t.Fatal("Send did not return")
	}
	if o.err != nil || o.res.Status != command.StatusOK || string(o.res.Output) != `{"restarted":"spooler"}` || o.res.ID != cmd.ID || o.res.Repeat {
		t.Fatalf("Send = %+v, %v; want ok with the handler's output", o.res, o.err)
	}
	if n := metric(t, l.Relays[1-killed], "agentgate_relay_connections_total", "route="+agentlab.IoTHost); n < 1 {
		t.Errorf("the other relay relayed %v IoT connections", n)
	}

	// The same ID again (a backend retrying after a timeout): answered from
	// memory, never run twice.
	res, err := be.sender.Send(context.Background(), target, cmd)
	if err != nil || res.Status != command.StatusOK || !res.Repeat || string(res.Output) != `{"restarted":"spooler"}` {
		t.Errorf("resent command = %+v, %v; want the remembered result marked repeat", res, err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times, want exactly once", n)
	}
}

// TestCommandStatuses: unknown names, failing and panicking handlers, a
// deadline already passed on the agent's clock, and a request naming
// someone else's topic as its Response Topic: each gets its status, and
// every result comes back on the agent's own up/result.
func TestCommandStatuses(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	var skew atomic.Int64 // the agent's clock runs this far ahead
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	_ = a.HandleCommand("fail", func(context.Context, json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		return nil, errors.New("disk full")
	})
	_ = a.HandleCommand("panic", func(context.Context, json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		panic("boom")
	})
	_ = a.HandleCommand("echo", func(_ context.Context, args json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		return args, nil
	})
	_ = a.HandleCommand("bad-output", func(context.Context, json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		return json.RawMessage(`{`), nil
	})
	if err := a.HandleCommand("a/b", func(context.Context, json.RawMessage) (json.RawMessage, error) { return nil, nil }); err == nil {
		t.Error("a handler name with '/' was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	rec.wait(t, "connected", func() bool { return len(rec.applied) == 1 && hasEvent(rec.events, agent.StepSubscribe, "") })
	be := startBackend(t, l)
	send := func(name string, args string) command.Result {
		t.Helper()
		c := command.Command{Name: name, Deadline: time.Now().Add(time.Minute)}
		if args != "" {
			c.Args = json.RawMessage(args)
		}
		res, err := be.sender.Send(context.Background(), target, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	if r := send("nope", ""); r.Status != command.StatusUnknown {
		t.Errorf("unknown command: %+v", r)
	}
	if r := send("fail", ""); r.Status != command.StatusFailed || r.Error != "disk full" {
		t.Errorf("failing handler: %+v", r)
	}
	if r := send("panic", ""); r.Status != command.StatusFailed || !strings.Contains(r.Error, "boom") {
		t.Errorf("panicking handler: %+v", r)
	}
	if r := send("bad-output", ""); r.Status != command.StatusFailed {
		t.Errorf("handler with invalid JSON output: %+v", r)
	}
	if r := send("echo", `[1,2,3]`); r.Status != command.StatusOK || string(r.Output) != `[1,2,3]` {
		t.Errorf("echo: %+v", r)
	}
	before := runs.Load()
	skew.Store(int64(2 * time.Minute))
	if r := send("echo", `1`); r.Status != command.StatusExpired {
		t.Errorf("command past its deadline on the agent's clock: %+v", r)
	}
	if runs.Load() != before {
		t.Error("an expired command ran")
	}
	skew.Store(0)

	// A hostile request: Response Topic names another agent's down/ topic.
	// The agent answers on its own up/result all the same.
	hostile := wire.Request{ID: "hostile-1", Name: "echo", Args: json.RawMessage(`2`), Deadline: time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)}
	payload, err := hostile.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan *paho.Publish, 4)
	if _, err := be.client.Subscribe(context.Background(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: agentlab.CustomerID + "/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	be.client.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		if string(pr.Packet.Payload) != "" && strings.Contains(string(pr.Packet.Payload), "hostile-1") {
			res <- pr.Packet
		}
		return true, nil
	})
	other := wire.RequestTopic(agentlab.CustomerID, "victim")
	if _, err := be.client.Publish(context.Background(), &paho.Publish{Topic: wire.RequestTopic(agentlab.CustomerID, agentlab.ThingName), QoS: 1, Payload: payload,
		Properties: &paho.PublishProperties{ResponseTopic: other, CorrelationData: []byte("hostile-1")}}); err != nil {
		t.Fatal(err)
	}
	for {
		var p *paho.Publish
		select {
		case p = <-res:
		case <-time.After(60 * time.Second):
			t.Fatal("no result for the hostile request")
		}
		if p.Topic == wire.RequestTopic(agentlab.CustomerID, agentlab.ThingName) {
			continue // the request itself, seen by the backend's wide subscription
		}
		if p.Topic != wire.ResultTopic(agentlab.CustomerID, agentlab.ThingName) {
			t.Fatalf("result published on %s, want the agent's own result topic", p.Topic)
		}
		if p.Properties == nil || string(p.Properties.CorrelationData) != "hostile-1" {
			t.Errorf("result correlation data = %v", p.Properties)
		}
		break
	}
	rec.wait(t, "the ignored response topic", func() bool { return hasEvent(rec.events, agent.StepCommand, "response topic") })
}

// TestCommandForAnOfflineAgentWaitsInItsSession: an agent with a
// persistent session is away when the command is sent; the broker keeps
// the command (QoS 1) and the agent runs it when it returns, before the
// deadline, and the result reaches the waiting Send.
func TestCommandForAnOfflineAgentWaitsInItsSession(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	_, stop := runAgent(t, labConfig(l, rec, ""))
	rec.wait(t, "connected", func() bool { return len(rec.applied) == 1 && hasEvent(rec.events, agent.StepSubscribe, "") })
	stop() // clean disconnect; the session stays for SessionExpiry

	be := startBackend(t, l)
	got := make(chan error, 1)
	var res command.Result
	go func() {
		var err error
		res, err = be.sender.Send(context.Background(), target, command.Command{ID: "while-away", Name: "echo", Args: json.RawMessage(`"hi"`), Deadline: time.Now().Add(2 * time.Minute)})
		got <- err
	}()
	// Wait for the broker to hold the command in the away agent's session.
	home := l.Regions[0]
	guard := time.After(60 * time.Second)
	for home.Stored(agentlab.ThingName) == 0 {
		select {
		case err := <-got:
			t.Fatalf("Send returned while the agent was away: %v", err)
		case <-guard:
			t.Fatal("the broker never queued the command for the away agent")
		case <-time.After(20 * time.Millisecond):
		}
	}
	rec2 := newRecorder()
	a, err := agent.New(labConfig(l, rec2, ""))
	if err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	_ = a.HandleCommand("echo", func(_ context.Context, args json.RawMessage) (json.RawMessage, error) {
		runs.Add(1)
		return args, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case err := <-got:
		if err != nil || res.Status != command.StatusOK || string(res.Output) != `"hi"` {
			t.Fatalf("Send = %+v, %v", res, err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the returning agent's result never arrived")
	}
	if runs.Load() != 1 {
		t.Errorf("ran %d times", runs.Load())
	}
}

// TestCommandToAnAgentThatNeverComesBackTimesOut: Send returns ErrTimeout
// at the deadline.
func TestCommandToAnAgentThatNeverComesBackTimesOut(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	be := startBackend(t, l)
	_, err := be.sender.Send(context.Background(), command.Target{Customer: agentlab.CustomerID, Thing: "never-online"},
		command.Command{Name: "echo", Deadline: time.Now().Add(time.Second)})
	if !errors.Is(err, command.ErrTimeout) {
		t.Fatalf("Send = %v, want ErrTimeout", err)
	}
}
