//go:build linux

package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Listeners: the "listener" label of agentgate_relay_rejected_connections_total.
const (
	// ListenerAgent is the agent port (--listen).
	ListenerAgent = "agent"
	// ListenerAdmin is the admin port (--admin) when it reads PROXY headers.
	ListenerAdmin = "admin"
)

// Reason is why the relay refused a connection: code decides on this
// value, and the refusal's log line and the "reason" label of
// agentgate_relay_rejected_connections_total are rendered from it.
type Reason string

// reasonNone means "not refused".
const reasonNone Reason = ""

// Reject reasons: the fixed "reason" label set of agentgate_relay_rejected_connections_total.
const (
	ReasonNoSNI Reason = "no_sni"
	ReasonIPSNI Reason = "ip_sni"
	// ReasonInvalidSNI: a server name (SNI or CONNECT host) holding a byte
	// other than an ASCII letter, digit, '-' or '.'.
	ReasonInvalidSNI Reason = "invalid_sni"
	ReasonUnknownSNI Reason = "unknown_sni"
	// ReasonSNIMismatch: the ClientHello sent through a CONNECT tunnel names
	// another server than the CONNECT request did.
	ReasonSNIMismatch    Reason = "sni_mismatch"
	ReasonECH            Reason = "ech"
	ReasonNotTLS         Reason = "not_tls"
	ReasonMalformedHello Reason = "malformed_hello"
	ReasonHelloTooLong   Reason = "hello_too_long"
	ReasonPeekTimeout    Reason = "peek_timeout"
	ReasonClientClosed   Reason = "client_closed"
	ReasonOverCap        Reason = "over_cap"
	ReasonRateLimited    Reason = "rate_limited"
	// ReasonSourceOverCap: the source already holds --max-conns-per-source connections.
	ReasonSourceOverCap        Reason = "source_over_cap"
	ReasonUntrustedProxyHeader Reason = "untrusted_proxy_header"
	ReasonMissingProxyHeader   Reason = "missing_proxy_header"
	ReasonBadProxyHeader       Reason = "bad_proxy_header"
	ReasonConnectDenied        Reason = "connect_denied"
	ReasonUpstreamUnreachable  Reason = "upstream_unreachable"
	ReasonHealthHandshake      Reason = "health_handshake_failed"
	// ReasonHealthBadRequest: a request to the health name that is malformed
	// or longer than the cap on requests read before routing.
	ReasonHealthBadRequest Reason = "health_bad_request"
)

// RejectReasons lists every reject reason, so each series exists from start (at 0).
var RejectReasons = []Reason{
	ReasonNoSNI, ReasonIPSNI, ReasonInvalidSNI, ReasonUnknownSNI, ReasonSNIMismatch, ReasonECH, ReasonNotTLS, ReasonMalformedHello,
	ReasonHelloTooLong, ReasonPeekTimeout, ReasonClientClosed, ReasonOverCap, ReasonRateLimited, ReasonSourceOverCap,
	ReasonUntrustedProxyHeader, ReasonMissingProxyHeader, ReasonBadProxyHeader,
	ReasonConnectDenied, ReasonUpstreamUnreachable, ReasonHealthHandshake, ReasonHealthBadRequest,
}

// AdminRejectReasons lists the reasons the admin port refuses a connection
// for: only its PROXY header is read before net/http takes over, and only
// MaxAdminPreambles headers at once.
var AdminRejectReasons = []Reason{
	ReasonOverCap, ReasonPeekTimeout, ReasonClientClosed, ReasonNotTLS,
	ReasonUntrustedProxyHeader, ReasonMissingProxyHeader, ReasonBadProxyHeader,
}

// Close reasons of relayed connections (label "reason" of the closed counter).
const (
	CloseDone          = "done" // both sides finished (FIN both ways)
	CloseIdle          = "idle_timeout"
	CloseDrain         = "drain"
	CloseClientError   = "client_error"
	CloseUpstreamError = "upstream_error"
)

// closeReasons are the close reasons above, in the order routeMetrics
// caches their counters.
var closeReasons = [...]string{CloseDone, CloseIdle, CloseDrain, CloseClientError, CloseUpstreamError}

// Metrics are the relay's Prometheus collectors, registered on a registry
// the caller owns (never the global one).
type Metrics struct {
	Active        *prometheus.GaugeVec
	Opened        *prometheus.CounterVec
	Closed        *prometheus.CounterVec
	Rejected      *prometheus.CounterVec
	Bytes         *prometheus.CounterVec
	PeekSeconds   prometheus.Histogram
	HealthChecks  *prometheus.CounterVec
	UpstreamUp    *prometheus.GaugeVec
	Ready         prometheus.Gauge
	DrainingGauge prometheus.Gauge
	// MemoryReleases counts returns of a connection storm's garbage to the OS.
	MemoryReleases prometheus.Counter
}

// NewMetrics creates the collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer, routes []string) *Metrics {
	m := &Metrics{
		Active: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agentgate_relay_connections_active",
			Help: "Relayed connections currently open, by route (configured server name).",
		}, []string{"route"}),
		Opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_relay_connections_total",
			Help: "Relayed connections opened, by route.",
		}, []string{"route"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_relay_connections_closed_total",
			Help: "Relayed connections closed, by route, copy path (splice or buffered) and close reason.",
		}, []string{"route", "copy", "reason"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_relay_rejected_connections_total",
			Help: "Connections refused before relaying (agent port) or before HTTP (admin port), by listener and reason.",
		}, []string{"listener", "reason"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_relay_transferred_bytes_total",
			Help: "Bytes relayed, by route and direction (in: agent to upstream, out: upstream to agent).",
		}, []string{"route", "direction"}),
		PeekSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "agentgate_relay_clienthello_peek_seconds",
			Help:    "Time from accept to a complete ClientHello (PROXY header included).",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		HealthChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "agentgate_relay_health_checks_total",
			Help: "Health checks answered on the listen port through the health server name, by result.",
		}, []string{"result"}),
		UpstreamUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "agentgate_relay_upstream_up",
			Help: "1 if the last TCP dial probe of the route's upstream succeeded.",
		}, []string{"route"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentgate_relay_ready",
			Help: "1 when the relay reports ready (not draining, an upstream reachable).",
		}),
		DrainingGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "agentgate_relay_draining",
			Help: "1 once SIGTERM started the drain.",
		}),
		MemoryReleases: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "agentgate_relay_memory_releases_total",
			Help: "Times the relay returned a connection storm's garbage to the OS once the storm was over.",
		}),
	}
	reg.MustRegister(m.Active, m.Opened, m.Closed, m.Rejected, m.Bytes, m.PeekSeconds,
		m.HealthChecks, m.UpstreamUp, m.Ready, m.DrainingGauge, m.MemoryReleases)
	for _, r := range RejectReasons {
		m.Rejected.WithLabelValues(ListenerAgent, string(r))
	}
	for _, r := range AdminRejectReasons {
		m.Rejected.WithLabelValues(ListenerAdmin, string(r))
	}
	for _, r := range routes {
		m.Active.WithLabelValues(r)
		m.Opened.WithLabelValues(r)
		m.Bytes.WithLabelValues(r, "in")
		m.Bytes.WithLabelValues(r, "out")
	}
	return m
}

// RegisterBuildInfo registers agentgate_relay_build_info, a constant 1 whose
// labels carry the version.
func RegisterBuildInfo(reg prometheus.Registerer, version, revision, goVersion string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agentgate_relay_build_info",
		Help: "Build of the running relay; always 1.",
	}, []string{"version", "revision", "goversion"})
	reg.MustRegister(g)
	g.WithLabelValues(version, revision, goVersion).Set(1)
}
