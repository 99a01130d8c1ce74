package storm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestClientRefusesABadSpec: a client process named a missing, malformed
// or out-of-range spec stops with an error naming it.
func TestClientRefusesABadSpec(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.json"), "no such file"},
		{write("bad.json", "{not json"), "bad.json"},
		{write("zero.json", `{"Count":0}`), "count 0"},
		{write("huge.json", `{"Count":1000000}`), "count 1000000"},
		{write("noca.json", `{"Count":1}`), "not PEM"},
	} {
		err := runClient(tc.path, strings.NewReader(""), new(strings.Builder))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.path, err, tc.want)
		}
	}
}

// TestPublishHoldsOffATakeover: a publish to a client whose session the
// broker is taking over waits (publishTo says no) until the takeover ends;
// another client, in the same takeover stripe or not, is not held up.
func TestPublishHoldsOffATakeover(t *testing.T) {
	b := mqtt.New(&mqtt.Options{InlineClient: true})
	w := newBrokerWatch()
	taking := &mqtt.Client{ID: ThingName(1)}
	w.OnSessionEstablish(taking, packets.Packet{})
	var sameStripe string
	for i := 2; sameStripe == "" && i < 10000; i++ {
		if w.stripe(ThingName(i)) == w.stripe(taking.ID) {
			sameStripe = ThingName(i)
		}
	}
	for id, want := range map[string]bool{taking.ID: false, ThingName(0): true, sameStripe: true} {
		if ok, err := w.publishTo(b, id, "t/"+id, []byte("x")); ok != want || err != nil {
			t.Errorf("publishTo(%s) while %s is taken over: %v, %v; want %v", id, taking.ID, ok, err, want)
		}
	}
	w.OnSessionEstablished(taking, packets.Packet{})
	if ok, err := w.publishTo(b, taking.ID, "t/x", []byte("x")); !ok || err != nil {
		t.Errorf("publishTo after the takeover: %v, %v", ok, err)
	}
	if got := w.seen.snapshot(); len(got) == 0 {
		t.Errorf("no publish or CONNECT counted: %v", got)
	}
}
