//go:build linux

package relay

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// waitCounter polls until c reaches want (the deadline only bounds a hang;
// it is not a performance threshold).
func waitCounter(t *testing.T, c prometheus.Counter, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for counterValue(t, c) != want {
		if time.Now().After(deadline) {
			t.Fatalf("counter = %v, want %v", counterValue(t, c), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReleaseAfterStorms(t *testing.T) {
	s := &Server{m: NewMetrics(prometheus.NewRegistry(), nil)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const period = 20 * time.Millisecond
	go s.releaseAfterStorms(ctx, period, 100)

	// A storm of 150 sessions, then quiet: one release.
	s.opened.Add(150)
	waitCounter(t, s.m.MemoryReleases, 1)

	// Fewer sessions than a storm since the last release: none, however
	// long it stays quiet.
	s.opened.Add(99)
	time.Sleep(10 * period)
	if v := counterValue(t, s.m.MemoryReleases); v != 1 {
		t.Fatalf("released after %d sessions: %v", 99, v)
	}

	// Another storm, another release.
	s.opened.Add(1)
	waitCounter(t, s.m.MemoryReleases, 2)
}

func TestStormOver(t *testing.T) {
	for _, tc := range []struct {
		opened, seen, released int64
		want                   bool
	}{
		{opened: 300, seen: 300, released: 0, want: true},    // quiet after a storm
		{opened: 300, seen: 250, released: 0, want: false},   // still arriving
		{opened: 300, seen: 300, released: 200, want: false}, // only 100 since the last release
		{opened: 456, seen: 456, released: 200, want: true},  // exactly minSessions since
		{opened: 0, seen: 0, released: 0, want: false},       // nothing ever
	} {
		if got := stormOver(tc.opened, tc.seen, tc.released, 256); got != tc.want {
			t.Errorf("stormOver(%d, %d, %d, 256) = %v, want %v", tc.opened, tc.seen, tc.released, got, tc.want)
		}
	}
}
