package presence

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// memStore is a Store in memory with the conditional write the contract
// describes.
type memStore struct {
	rows     map[string]Row
	counts   map[string]int
	versions map[string]Version
}

func newMemStore() *memStore {
	return &memStore{rows: map[string]Row{}, counts: map[string]int{}, versions: map[string]Version{}}
}

func (m *memStore) SetVersion(_ context.Context, v Version) (bool, error) {
	key := v.Customer + "/" + v.Thing
	if old, ok := m.versions[key]; ok && old.At >= v.At {
		return false, nil
	}
	m.versions[key] = v
	return true, nil
}

func (m *memStore) Apply(_ context.Context, r Row, _ string) (Outcome, int, error) {
	key := r.Customer + "/" + r.Thing
	old, ok := m.rows[key]
	if ok && !r.At.Newer(old.At) {
		return Ignored, 0, nil
	}
	if r.Connected && ok {
		r.LastDisconnectReason = old.LastDisconnectReason // a connect keeps the last reason
	}
	m.rows[key] = r
	if r.Connected == (ok && old.Connected) {
		return Written, 0, nil
	}
	if r.Connected {
		m.counts[r.Customer]++
	} else {
		m.counts[r.Customer]--
	}
	return Flipped, m.counts[r.Customer], nil
}

type thingTypes map[string]string

func (t thingTypes) ThingType(_ context.Context, thing string) (string, error) { return t[thing], nil }

func load(t *testing.T, name string) Event {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The events on the lifecycle page, in order, out of order and repeated.
func TestDocumentedEventsInAnyOrder(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	if disc.ClientInitiatedDisconnect == nil || !*disc.ClientInitiatedDisconnect || disc.DisconnectReason != "CLIENT_INITIATED_DISCONNECT" || conn.SessionIdentifier != disc.SessionIdentifier {
		t.Fatalf("parsed %+v / %+v", conn, disc)
	}
	later := conn
	later.Timestamp, later.SessionIdentifier = disc.Timestamp+5000, "b2"
	for name, c := range map[string]struct {
		events    []Event
		connected bool
		since     int64
		count     int
	}{
		"in order":                          {[]Event{conn, disc}, false, disc.Timestamp, 0},
		"disconnect first":                  {[]Event{disc, conn}, false, disc.Timestamp, 0},
		"connect twice":                     {[]Event{conn, conn}, true, conn.Timestamp, 1},
		"every event twice":                 {[]Event{conn, conn, disc, disc}, false, disc.Timestamp, 0},
		"reconnect, then a late disconnect": {[]Event{conn, later, disc}, true, later.Timestamp, 1},
		"reconnect out of order":            {[]Event{later, disc, conn}, true, later.Timestamp, 1},
	} {
		t.Run(name, func(t *testing.T) {
			st := newMemStore()
			gauge := map[string]int{}
			h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st, Gauge: func(c string, n int) { gauge[c] = n }}
			for _, e := range c.events {
				if _, err := h.Apply(context.Background(), e); err != nil {
					t.Fatal(err)
				}
			}
			r := st.rows["acme/186b5"]
			if r.Connected != c.connected || r.Since != c.since || st.counts["acme"] != c.count {
				t.Errorf("row %+v count %d; want connected=%v since %d count %d", r, st.counts["acme"], c.connected, c.since, c.count)
			}
			if st.counts["acme"] < 0 || st.counts["acme"] > 1 {
				t.Errorf("count %d for one agent", st.counts["acme"])
			}
			if n, ok := gauge["acme"]; ok && n != st.counts["acme"] {
				t.Errorf("gauge %d, count %d", n, st.counts["acme"])
			}
			if !c.connected && r.LastDisconnectReason != "CLIENT_INITIATED_DISCONNECT" {
				t.Errorf("disconnect reason %q", r.LastDisconnectReason)
			}
		})
	}
}

func TestOutcomes(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: newMemStore()}
	for i, c := range []struct {
		e    Event
		want Outcome
	}{{conn, Flipped}, {conn, Ignored}, {disc, Flipped}, {conn, Ignored}, {disc, Ignored}} {
		if got, err := h.Apply(context.Background(), c.e); err != nil || got != c.want {
			t.Errorf("event %d: %v, %v; want %v", i, got, err, c.want)
		}
	}
}

func TestPositionOrder(t *testing.T) {
	p := Position{Timestamp: 10, Version: 1}
	for _, c := range []struct {
		q     Position
		newer bool
	}{
		{Position{Timestamp: 9, Version: 5, Disconnect: true}, true},
		{Position{Timestamp: 11}, false},
		{Position{Timestamp: 10, Version: 0, Disconnect: true}, true},
		{Position{Timestamp: 10, Version: 2}, false},
		{Position{Timestamp: 10, Version: 1}, false}, // a repeat
		{Position{Timestamp: 10, Version: 1, Disconnect: true}, false},
	} {
		if got := p.Newer(c.q); got != c.newer {
			t.Errorf("%+v.Newer(%+v) = %v", p, c.q, got)
		}
	}
	d := Position{Timestamp: 10, Version: 1, Disconnect: true}
	if !d.Newer(p) || p.Newer(d) {
		t.Error("a disconnect at the same timestamp and version must follow its connect")
	}
}

func TestNotAnAgent(t *testing.T) {
	h := &Handler{Types: thingTypes{"186b5": ""}, Store: newMemStore()}
	if _, err := h.Apply(context.Background(), load(t, "connected.json")); !errors.Is(err, ErrNotAnAgent) {
		t.Errorf("untyped thing: %v", err)
	}
	h.Types = thingTypes{"186b5": "agentgate"}
	if _, err := h.Apply(context.Background(), load(t, "connected.json")); !errors.Is(err, ErrNotAnAgent) {
		t.Errorf("reserved type: %v", err)
	}
}

func TestParseEventRefusesHostileInput(t *testing.T) {
	base := `"timestamp":1573002230757,"eventType":"connected","sessionIdentifier":"s","principalIdentifier":"p","versionNumber":0`
	for name, in := range map[string]string{
		"empty":          ``,
		"array":          `[]`,
		"no client":      `{` + base + `}`,
		"wildcard id":    `{"clientId":"a#",` + base + `}`,
		"slash id":       `{"clientId":"acme/x",` + base + `}`,
		"long id":        `{"clientId":"` + strings.Repeat("a", 129) + `",` + base + `}`,
		"subscribed":     `{"clientId":"a","timestamp":1,"eventType":"subscribed"}`,
		"no timestamp":   `{"clientId":"a","eventType":"connected"}`,
		"negative":       `{"clientId":"a","timestamp":1,"eventType":"connected","versionNumber":-1}`,
		"trailing":       `{"clientId":"a",` + base + `} {}`,
		"oversize":       `{"clientId":"a",` + base + `,"x":"` + strings.Repeat("x", MaxEventBytes) + `"}`,
		"long reason":    `{"clientId":"a",` + base + `,"disconnectReason":"` + strings.Repeat("R", 65) + `"}`,
		"string version": `{"clientId":"a","timestamp":1,"eventType":"connected","versionNumber":"1"}`,
	} {
		if _, err := ParseEvent([]byte(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseEvent([]byte(`{"clientId":"a",` + base + `,"newField":{"x":1}}`)); err != nil {
		t.Errorf("an event with a field AWS may add later: %v", err)
	}
}

func FuzzParseEvent(f *testing.F) {
	for _, name := range []string{"connected.json", "disconnected.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"clientId":"a#","timestamp":1,"eventType":"connected"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEvent(b)
		if err != nil {
			return
		}
		if e.Timestamp <= 0 || (e.EventType != Connected && e.EventType != Disconnected) || strings.ContainsAny(e.ClientID, "/#+$") {
			t.Fatalf("accepted %+v", e)
		}
		if e.Position().Newer(e.Position()) {
			t.Fatal("an event is newer than itself")
		}
	})
}

// The token is a fixed-size digest of the whole write: the same event gives
// the same token; any field that changes the write changes it.
func TestEventToken(t *testing.T) {
	conn := load(t, "connected.json")
	tok := conn.Token("acme")
	if len(tok) != 32 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token %q: want 32 hex characters (DynamoDB takes at most 36)", tok)
	}
	if again := load(t, "connected.json").Token("acme"); again != tok {
		t.Errorf("the same event gave %q and %q", tok, again)
	}
	seen := map[string]string{tok: "original"}
	for name, e := range map[string]func(e *Event){
		"session":   func(e *Event) { e.SessionIdentifier += "x" },
		"timestamp": func(e *Event) { e.Timestamp++ },
		"version":   func(e *Event) { e.VersionNumber++ },
		"type":      func(e *Event) { e.EventType = Disconnected },
		"reason":    func(e *Event) { e.DisconnectReason = "X" },
		"client":    func(e *Event) { e.ClientID += "x" },
	} {
		c := conn
		e(&c)
		got := c.Token("acme")
		if prev, ok := seen[got]; ok {
			t.Errorf("changing the %s gives the token of %s", name, prev)
		}
		seen[got] = name
	}
	if conn.Token("acmf") == tok {
		t.Error("another customer gives the same token")
	}
	// Field boundaries matter: moving a character between fields changes it.
	a, b := conn, conn
	a.ClientID, a.SessionIdentifier = "ab", "c"
	b.ClientID, b.SessionIdentifier = "a", "bc"
	if a.Token("acme") == b.Token("acme") {
		t.Error("fields are not delimited in the digest")
	}
}
