//go:build linux

package relay

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agentgate/agentgate/proxyimage/config"
)

func TestClosedCounterCachesChildrenOnFirstUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, []string{"a.test"})
	series := func() int { return len(closedSeries(t, reg)) }
	rt := newRouteTable([]config.Route{{SNI: "a.test", Upstream: "127.0.0.1:1"}}, m)
	rm := rt.metrics["a.test"]
	if n := series(); n != 0 {
		t.Fatalf("%d closed series before any close; want none", n)
	}
	for _, path := range []string{copySplice, copyBuffered} {
		for _, reason := range closeReasons {
			rm.closedCounter(path, reason).Inc()
			rm.closedCounter(path, reason).Inc()
			if got := closedSeries(t, reg)["a.test/"+path+"/"+reason]; got != 2 {
				t.Fatalf("%s/%s counted %v, want 2", path, reason, got)
			}
		}
	}
	if n, want := series(), 2*len(closeReasons); n != want {
		t.Fatalf("%d closed series, want %d", n, want)
	}
	if rm.closed[1][0].Load() == nil {
		t.Fatal("the buffered/done child was not cached")
	}
	// A label value outside the cached set still counts, under its own name.
	rm.closedCounter("other", "why").Inc()
	if got := closedSeries(t, reg)["a.test/other/why"]; got != 1 {
		t.Fatalf("uncached child counted %v, want 1", got)
	}
}

// closedSeries gathers reg's closed counter: route/copy/reason → value.
func closedSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "agentgate_relay_connections_closed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[label(m, "route")+"/"+label(m, "copy")+"/"+label(m, "reason")] = m.GetCounter().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
