//go:build linux

package relay

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentgate/agentgate/proxyimage/clienthello"
	"github.com/agentgate/agentgate/proxyimage/config"
)

// routeTable is the allowlist and each route's collectors, built once at
// start so a connection neither hashes label values nor sees a change.
type routeTable struct {
	upstream  map[string]string // normalised SNI → upstream
	upstreams []string          // in --route order, repeats kept
	metrics   map[string]*routeMetrics
}

// routeMetrics are one route's collectors.
type routeMetrics struct {
	bytes  [2]prometheus.Counter // in, out
	active prometheus.Gauge
	opened prometheus.Counter
	// closed caches the closed counter's children, by copy path and close
	// reason (closeReasons), made on first use so that a series appears
	// only once a connection closed that way, as with WithLabelValues.
	closed      [2][len(closeReasons)]atomic.Pointer[prometheus.Counter]
	closedVec   *prometheus.CounterVec
	closedRoute string
}

// closedCounter is the closed counter's child for path and reason: cached
// for the known ones, looked up for any other.
func (rm *routeMetrics) closedCounter(path, reason string) prometheus.Counter {
	p := 0
	if path == copyBuffered {
		p = 1
	} else if path != copySplice {
		return rm.closedVec.WithLabelValues(rm.closedRoute, path, reason)
	}
	for r, name := range closeReasons {
		if name != reason {
			continue
		}
		if c := rm.closed[p][r].Load(); c != nil {
			return *c
		}
		c := rm.closedVec.WithLabelValues(rm.closedRoute, path, reason)
		rm.closed[p][r].Store(&c)
		return c
	}
	return rm.closedVec.WithLabelValues(rm.closedRoute, path, reason)
}

func newRouteTable(routes []config.Route, m *Metrics) routeTable {
	t := routeTable{
		upstream: make(map[string]string, len(routes)),
		metrics:  make(map[string]*routeMetrics, len(routes)),
	}
	for _, r := range routes {
		t.upstream[r.SNI] = r.Upstream
		t.upstreams = append(t.upstreams, r.Upstream)
		t.metrics[r.SNI] = &routeMetrics{
			bytes:  [2]prometheus.Counter{m.Bytes.WithLabelValues(r.SNI, "in"), m.Bytes.WithLabelValues(r.SNI, "out")},
			active: m.Active.WithLabelValues(r.SNI),
			opened: m.Opened.WithLabelValues(r.SNI),

			closedVec:   m.Closed,
			closedRoute: r.SNI,
		}
	}
	return t
}

// protocol is how a client asked for its route. Code decides on this value;
// the connection's log line is rendered from it ("via").
type protocol uint8

const (
	viaTLS     protocol = iota + 1 // a ClientHello straight away
	viaConnect                     // an HTTP CONNECT request, then a ClientHello
)

func (p protocol) String() string {
	switch p {
	case viaTLS:
		return "tls"
	case viaConnect:
		return "connect"
	}
	return "unknown"
}

// sniff says which protocol a connection speaks from its first byte, when
// --http-connect lets it choose: a CONNECT request starts with 'C', a TLS
// record with 0x16.
func sniff(first byte) protocol {
	if first == 'C' {
		return viaConnect
	}
	return viaTLS
}

// arrival is how a relayed connection arrived, kept typed on its session
// and rendered into the closing log line.
type arrival struct {
	via  protocol
	alpn string // the ClientHello's ALPN names (at most clienthello.MaxALPN), comma-joined
}

// arrivalOf keeps the ALPN names as one string: an idle session holds it
// for hours, and one string is one allocation where the parsed list is one
// per name.
func arrivalOf(via protocol, h *clienthello.Hello) arrival {
	return arrival{via: via, alpn: strings.Join(h.ALPN, ",")}
}

// attrs renders the arrival for the log line.
func (a arrival) attrs() []slog.Attr {
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs, slog.String("via", a.via.String()))
	if a.alpn != "" {
		attrs = append(attrs, slog.String("alpn", a.alpn))
	}
	return attrs
}

// lookup applies the allowlist to a ClientHello.
func (s *Server) lookup(h *clienthello.Hello) (sni, upstream string, reason Reason) {
	if h.ECH {
		return "", "", ReasonECH
	}
	if upstream, reason = s.route(h.ServerName); reason != reasonNone {
		return "", "", reason
	}
	return h.ServerName, upstream, reasonNone
}

// route is the allowlist, for a normalised server name from an SNI or a
// CONNECT request: the only addresses the relay ever dials are the
// configured upstreams, found by exact name. Names are compared only once
// they hold nothing but ASCII letters, digits, '-' and '.'.
func (s *Server) route(name string) (upstream string, reason Reason) {
	if name == "" {
		return "", ReasonNoSNI
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return "", ReasonIPSNI
	}
	if !clienthello.ValidNameBytes(name) {
		return "", ReasonInvalidSNI
	}
	up, ok := s.routes.upstream[name]
	if !ok {
		return "", ReasonUnknownSNI
	}
	return up, reasonNone
}

// tunnelTarget applies the allowlist to the ClientHello sent through a
// CONNECT tunnel for connectName (normalised): the TLS path's rules, and the
// hello's server name must be connectName.
func (s *Server) tunnelTarget(connectName string, h *clienthello.Hello) (upstream string, reason Reason) {
	sni, upstream, reason := s.lookup(h)
	switch {
	case reason != reasonNone:
		return "", reason
	case sni != connectName:
		return "", ReasonSNIMismatch
	}
	return upstream, reasonNone
}
