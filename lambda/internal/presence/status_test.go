package presence

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/status"
)

func loadStatus(t *testing.T) status.Record {
	t.Helper()
	b, err := os.ReadFile("testdata/status.json")
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInput(b)
	if err != nil || in.Status == nil || in.Event != nil {
		t.Fatalf("ParseInput(status.json) = %+v, %v", in, err)
	}
	return *in.Status
}

// The documented lifecycle events parse as events, the rule's status
// record as a status; anything else is refused.
func TestParseInputTellsTheKindsApart(t *testing.T) {
	for _, name := range []string{"connected.json", "disconnected.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		in, err := ParseInput(b)
		if err != nil || in.Event == nil || in.Status != nil || in.Event.ClientID != "186b5" {
			t.Errorf("%s: %+v, %v", name, in, err)
		}
	}
	if r := loadStatus(t); r.Version != "1.5.0" || r.Customer != "acme" || r.Thing != "186b5" || r.ReceivedAt != 1573002230900 {
		t.Errorf("status %+v", r)
	}
	rest := `"customer":"acme","thing":"186b5","receivedAt":5`
	for name, in := range map[string]string{
		"empty":     ``,
		"null":      `null`,
		"array":     `[{"eventType":"connected"}]`,
		"neither":   `{"version":"1","customer":"acme","thing":"186b5"}`,
		"oversize":  `{"version":"1",` + rest + `,"x":"` + strings.Repeat("x", MaxInputBytes) + `"}`,
		"hostile":   `{"version":"1;DROP","customer":"acme","thing":"186b5","receivedAt":5}`,
		"long":      `{"version":"` + strings.Repeat("1", status.MaxVersionLen+1) + `",` + rest + `}`,
		"other":     `{"version":"1","customer":"acme","thing":"../x","receivedAt":5}`,
		"extra":     `{"version":"1","clientId":"someone-else",` + rest + `}`,
		"bad event": `{"eventType":"connected","clientId":"a#","timestamp":1,"receivedAt":5}`,
		"not json":  `version=1`,
	} {
		if got, err := ParseInput([]byte(in)); err == nil {
			t.Errorf("%s: accepted %+v", name, got)
		}
	}
}

// Status records in order, out of order, repeated and mixed with the
// documented lifecycle events: the newest received version stays, and the
// connected state and count follow the lifecycle events alone.
func TestStatusInAnyOrder(t *testing.T) {
	conn, disc := load(t, "connected.json"), load(t, "disconnected.json")
	v1 := loadStatus(t)
	v2 := v1
	v2.Version, v2.ReceivedAt = "1.6.0", disc.Timestamp+6000
	type step struct {
		e *Event
		s *status.Record
	}
	for name, c := range map[string]struct {
		steps     []step
		version   string
		at        int64
		connected bool
		count     int
	}{
		"in order":                  {[]step{{e: &conn}, {s: &v1}, {e: &disc}, {s: &v2}}, "1.6.0", v2.ReceivedAt, false, 0},
		"newer status first":        {[]step{{s: &v2}, {s: &v1}, {e: &conn}}, "1.6.0", v2.ReceivedAt, true, 1},
		"every status twice":        {[]step{{s: &v1}, {s: &v1}, {e: &conn}, {s: &v2}, {s: &v2}, {e: &disc}}, "1.6.0", v2.ReceivedAt, false, 0},
		"status before any connect": {[]step{{s: &v1}, {e: &conn}}, "1.5.0", v1.ReceivedAt, true, 1},
		"status between repeats":    {[]step{{e: &conn}, {s: &v1}, {e: &conn}, {e: &disc}, {s: &v1}, {e: &disc}}, "1.5.0", v1.ReceivedAt, false, 0},
	} {
		t.Run(name, func(t *testing.T) {
			st := newMemStore()
			h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: st}
			for _, s := range c.steps {
				var err error
				if s.e != nil {
					_, err = h.Apply(context.Background(), *s.e)
				} else {
					_, err = h.ApplyStatus(context.Background(), *s.s)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			v := st.versions["acme/186b5"]
			if v.Version != c.version || v.At != c.at {
				t.Errorf("version %+v, want %s at %d", v, c.version, c.at)
			}
			if r := st.rows["acme/186b5"]; r.Connected != c.connected || st.counts["acme"] != c.count {
				t.Errorf("row %+v count %d; want connected=%v count %d", r, st.counts["acme"], c.connected, c.count)
			}
		})
	}
}

func TestStatusOutcomes(t *testing.T) {
	v1 := loadStatus(t)
	older := v1
	older.Version, older.ReceivedAt = "9.9.9", v1.ReceivedAt-1
	h := &Handler{Types: thingTypes{"186b5": "acme"}, Store: newMemStore()}
	for i, c := range []struct {
		r    status.Record
		want Outcome
	}{{v1, Written}, {v1, Ignored}, {older, Ignored}} {
		if got, err := h.ApplyStatus(context.Background(), c.r); err != nil || got != c.want {
			t.Errorf("status %d: %v, %v; want %v", i, got, err, c.want)
		}
	}
}

// A status on a topic whose customer is not the thing's type (a policy
// that let it through, or a thing of another customer) writes nothing.
func TestStatusOfAnotherCustomersThingIsRefused(t *testing.T) {
	st := newMemStore()
	r := loadStatus(t)
	for name, types := range map[string]thingTypes{"other customer": {"186b5": "globex"}, "untyped": {"186b5": ""}, "no thing": {}} {
		h := &Handler{Types: types, Store: st}
		if _, err := h.ApplyStatus(context.Background(), r); !errors.Is(err, ErrNotAnAgent) {
			t.Errorf("%s: %v, want ErrNotAnAgent", name, err)
		}
	}
	if len(st.versions) != 0 || len(st.rows) != 0 {
		t.Errorf("wrote %v %v", st.versions, st.rows)
	}
}

func FuzzParseInput(f *testing.F) {
	for _, name := range []string{"connected.json", "disconnected.json", "status.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"eventType":"connected","receivedAt":5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := ParseInput(b)
		if err != nil {
			return
		}
		if (in.Event == nil) == (in.Status == nil) {
			t.Fatalf("ParseInput(%q) = %+v: want exactly one kind", b, in)
		}
		if in.Status != nil && (status.ValidateVersion(in.Status.Version) != nil || in.Status.ReceivedAt <= 0 || strings.ContainsAny(in.Status.Customer+in.Status.Thing, "/#+$")) {
			t.Fatalf("accepted %+v", in.Status)
		}
	})
}
