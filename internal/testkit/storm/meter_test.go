package storm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPeakRates: the peak is the busiest one-second window of the samples,
// not the average, and totals are last minus first.
func TestPeakRates(t *testing.T) {
	t0 := time.Unix(0, 0)
	var s []sample
	connects := int64(0)
	for i := range 50 { // 5 s at 100 ms
		if i >= 20 && i < 30 { // one second with 30 connects per sample: 300/s
			connects += 30
		} else {
			connects++
		}
		s = append(s, sample{at: t0.Add(time.Duration(i) * 100 * time.Millisecond), connects: connects, filters: 2 * connects})
	}
	r := peakRates(s, time.Second)
	if r.PeakConnects != 300 || r.PeakSubscriptions != 600 {
		t.Errorf("peak connects %v subscriptions %v, want 300 and 600", r.PeakConnects, r.PeakSubscriptions)
	}
	if want := connects - s[0].connects; r.Connects != want || r.Subscriptions != 2*want {
		t.Errorf("totals %d %d, want %d %d", r.Connects, r.Subscriptions, want, 2*want)
	}
	if r.PeakCredentials != 0 || r.Credentials != 0 {
		t.Errorf("credentials %v %d, want 0", r.PeakCredentials, r.Credentials)
	}
	// Shorter than a window: the average over a window.
	short := peakRates([]sample{{at: t0}, {at: t0.Add(500 * time.Millisecond), connects: 10}}, time.Second)
	if short.PeakConnects != 10 {
		t.Errorf("short storm peak %v, want 10", short.PeakConnects)
	}
	if z := peakRates(nil, time.Second); z != (Rates{}) {
		t.Errorf("no samples: %+v", z)
	}
}

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
