package command

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	wire "github.com/agentgate/agentgate/contract/command"
)

// fakeConn records publishes and, when answer is set, answers each one
// through the sender as an agent would.
type fakeConn struct {
	mu     sync.Mutex
	sent   []*paho.Publish
	answer func(*paho.Publish) *paho.Publish
	s      *Sender
	code   byte
}

func (f *fakeConn) Publish(_ context.Context, p *paho.Publish) (*paho.PublishResponse, error) {
	f.mu.Lock()
	f.sent = append(f.sent, p)
	f.mu.Unlock()
	if f.code >= 0x80 {
		return &paho.PublishResponse{ReasonCode: f.code}, errors.New("refused")
	}
	if f.answer != nil {
		if r := f.answer(p); r != nil {
			go f.s.Received(paho.PublishReceived{Packet: r})
		}
	}
	return &paho.PublishResponse{}, nil
}

func echoAgent(p *paho.Publish) *paho.Publish {
	req, err := wire.ParseRequest(p.Payload, time.Now())
	if err != nil {
		return nil
	}
	b, _ := wire.Result{ID: req.ID, Status: wire.StatusOK, Output: req.Args}.Marshal()
	return &paho.Publish{Topic: p.Properties.ResponseTopic, Payload: b, Properties: &paho.PublishProperties{CorrelationData: p.Properties.CorrelationData}}
}

func TestSendPublishesTheProtocol(t *testing.T) {
	f := &fakeConn{answer: echoAgent}
	s := NewSender(f)
	f.s = s
	res, err := s.Send(context.Background(), Target{"acme", "pc-1"}, Command{Name: "echo", Args: json.RawMessage(`7`), Deadline: time.Now().Add(time.Minute)})
	if err != nil || res.Status != StatusOK || string(res.Output) != "7" {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	p := f.sent[0]
	if p.Topic != "acme/pc-1/down/command" || p.QoS != 1 || p.Properties.ResponseTopic != "acme/pc-1/up/result" ||
		string(p.Properties.CorrelationData) != res.ID || p.Properties.MessageExpiry == nil || *p.Properties.MessageExpiry > 60 || *p.Properties.MessageExpiry < 1 {
		t.Errorf("published %+v with %+v", p, p.Properties)
	}
	if len(res.ID) != 32 {
		t.Errorf("random ID %q", res.ID)
	}
}

func TestSendRefusesBadInput(t *testing.T) {
	s := NewSender(&fakeConn{})
	for name, c := range map[string]struct {
		t Target
		c Command
	}{
		"wildcard customer": {Target{"+", "pc"}, Command{Name: "x"}},
		"slash thing":       {Target{"acme", "a/b"}, Command{Name: "x"}},
		"bad name":          {Target{"acme", "pc"}, Command{Name: "a b"}},
		"bad id":            {Target{"acme", "pc"}, Command{ID: "#", Name: "x"}},
		"past deadline":     {Target{"acme", "pc"}, Command{Name: "x", Deadline: time.Now().Add(-time.Second)}},
		"far deadline":      {Target{"acme", "pc"}, Command{Name: "x", Deadline: time.Now().Add(48 * time.Hour)}},
		"bad args":          {Target{"acme", "pc"}, Command{Name: "x", Args: json.RawMessage(`{`)}},
	} {
		if _, err := s.Send(context.Background(), c.t, c.c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	f := &fakeConn{code: 0x87}
	if _, err := NewSender(f).Send(context.Background(), Target{"acme", "pc"}, Command{Name: "x"}); err == nil || !strings.Contains(err.Error(), "0x87") {
		t.Errorf("refused PUBACK: %v", err)
	}
}

func TestSendTimesOutAtTheDeadline(t *testing.T) {
	s := NewSender(&fakeConn{})
	_, err := s.Send(context.Background(), Target{"acme", "pc"}, Command{Name: "x", Deadline: time.Now().Add(50 * time.Millisecond)})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Send = %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Send(ctx, Target{"acme", "pc"}, Command{Name: "x"}); errors.Is(err, ErrTimeout) || err == nil {
		t.Errorf("cancelled Send = %v, want the context's error", err)
	}
}

// Results are matched by customer, thing and ID: another agent's result
// with the same ID, malformed results and other topics never complete a Send.
func TestReceivedMatchesByAgentAndID(t *testing.T) {
	f := &fakeConn{}
	s := NewSender(f)
	f.s = s
	f.answer = func(p *paho.Publish) *paho.Publish {
		req, _ := wire.ParseRequest(p.Payload, time.Now())
		for _, hostile := range []*paho.Publish{
			{Topic: "acme/other/up/result", Payload: mustResult(req.ID, "from another agent")},
			{Topic: "acme/pc/up/result", Payload: []byte(`{"id":"` + req.ID + `","status":"pwned"}`)},
			{Topic: "acme/pc/up/result", Payload: []byte(`not json`)},
			{Topic: "acme/pc/up/result/x", Payload: mustResult(req.ID, "too deep")},
		} {
			if handled, _ := s.Received(paho.PublishReceived{Packet: hostile}); !handled && hostile.Topic != "acme/pc/up/result/x" {
				t.Errorf("result on %s not claimed", hostile.Topic)
			}
		}
		if handled, _ := s.Received(paho.PublishReceived{Packet: &paho.Publish{Topic: "acme/pc/down/command"}}); handled {
			t.Error("a non-result message was claimed")
		}
		return &paho.Publish{Topic: "acme/pc/up/result", Payload: mustResult(req.ID, "right")}
	}
	res, err := s.Send(context.Background(), Target{"acme", "pc"}, Command{Name: "x", Deadline: time.Now().Add(time.Minute)})
	if err != nil || res.Error != "right" {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if n := s.Unmatched(); n != 3 {
		t.Errorf("Unmatched = %d, want 3 (another agent's, bad status, not JSON)", n)
	}
}

func mustResult(id, msg string) []byte {
	b, err := wire.Result{ID: id, Status: wire.StatusFailed, Error: msg}.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func TestSendAll(t *testing.T) {
	f := &fakeConn{answer: echoAgent}
	s := NewSender(f)
	f.s = s
	out := s.SendAll(context.Background(), "acme", []string{"a", "b", "c", "bad/thing"}, Command{Name: "echo", Args: json.RawMessage(`1`)})
	for _, th := range []string{"a", "b", "c"} {
		if o := out[th]; o.Err != nil || o.Result.Status != StatusOK {
			t.Errorf("%s: %+v", th, o)
		}
	}
	if out["bad/thing"].Err == nil {
		t.Error("invalid thing accepted")
	}
	if out["a"].Result.ID != out["b"].Result.ID {
		t.Error("SendAll used different IDs")
	}
}

func TestResultFilter(t *testing.T) {
	if got := ResultFilter(""); got != "+/+/up/result" {
		t.Errorf("ResultFilter() = %q", got)
	}
	if got := ResultFilter("acme"); got != "acme/+/up/result" {
		t.Errorf("ResultFilter(acme) = %q", got)
	}
}
