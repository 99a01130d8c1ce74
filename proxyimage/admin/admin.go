// Package admin serves the relay's admin endpoints on their own listener
// (inside the VPC only): liveness, readiness and Prometheus metrics, from
// one mux, in the manner of cloudflared's metrics server.
package admin

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// Handler returns the admin mux. /healthz answers 200 while the process can
// serve HTTP at all (liveness: restarting it would not help otherwise);
// /readyz answers 200 only when ready() does; /metrics exposes gatherer.
func Handler(gatherer prometheus.Gatherer, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+relayspec.HealthPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+relayspec.ReadyPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !ready() {
			http.Error(w, "unready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET "+relayspec.MetricsPath, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}
