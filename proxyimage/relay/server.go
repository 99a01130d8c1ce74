//go:build linux

// Package relay is the agent-facing half of the relay: it accepts TCP
// connections, optionally reads a PROXY v2 header from a trusted load
// balancer, reads the TLS ClientHello (or an HTTP CONNECT request), and
// relays the raw bytes to the one upstream configured for that exact server
// name. It never terminates agent TLS and never dials an address taken from
// a client. The health server name is the one exception: it is answered
// locally with a self-signed certificate so health checks exercise the same
// IP:port path agents use.
package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/proxyimage/clienthello"
	"github.com/agentgate/agentgate/proxyimage/config"
	"github.com/agentgate/agentgate/proxyimage/proxyproto"
)

const (
	maxRateLimitEntries = 1 << 16
	// maxHTTPRequest caps an HTTP request read before routing (CONNECT, and
	// the health name's GET): request line and headers. Route 53's health
	// check request is a few hundred bytes.
	maxHTTPRequest = 8 << 10
	pipePoolSize   = 64
)

// Server relays agent connections. Create it with New, run Serve on a
// listener, and drive shutdown with SetDraining, CloseSpread and Wait.
type Server struct {
	cfg       *config.Config
	log       *slog.Logger
	m         *Metrics
	routes    map[string]string // normalised SNI → upstream
	upstreams []string
	routeM    map[string]*routeMetrics
	healthTLS *tls.Config
	dialer    *net.Dialer
	limiter   *sourceLimiter
	perSource *sourceConns
	pipes     *pipePool
	poller    *poller
	baseCtx   context.Context
	cancel    context.CancelFunc

	open     atomic.Int64 // accepted and not yet closed, for --max-conns
	opened   atomic.Int64 // sessions ever relayed, for releaseAfterStorms
	draining atomic.Bool
	handlers sync.WaitGroup

	mu         sync.Mutex
	upstreamUp map[string]bool
	probed     bool
	sessions   map[*session]struct{}
	closedAll  bool // CloseSpread finished: new sessions are closed at once
}

// New validates nothing (config did) and prepares a server; metrics are
// registered on reg.
func New(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	certs, err := healthCertificates(cfg.HealthSNI)
	if err != nil {
		return nil, fmt.Errorf("health certificate: %w", err)
	}
	names := make([]string, 0, len(cfg.Routes))
	s := &Server{
		cfg:    cfg,
		log:    log,
		routes: make(map[string]string, len(cfg.Routes)),
		routeM: make(map[string]*routeMetrics, len(cfg.Routes)),
		healthTLS: &tls.Config{
			Certificates: certs, // ECDSA first: crypto/tls serves the first one the client supports
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		// Keep-alive probes off: idle agents stay idle on the wire; the idle
		// timeout and MQTT keep-alives find dead peers.
		dialer:    &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: -1},
		limiter:   newSourceLimiter(cfg.SourceRate, cfg.SourceBurst, maxRateLimitEntries),
		perSource: newSourceConns(cfg.MaxConnsPerSource),
		pipes:     newPipePool(pipePoolSize),
		sessions:  make(map[*session]struct{}),
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	if s.poller, err = newPoller(log); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	go s.poller.run(s.baseCtx)
	go s.sweepIdle(s.baseCtx)
	go s.releaseAfterStorms(s.baseCtx, time.Second, stormSessions)
	for _, r := range cfg.Routes {
		s.routes[r.SNI] = r.Upstream
		s.upstreams = append(s.upstreams, r.Upstream)
		names = append(names, r.SNI)
	}
	s.m = NewMetrics(reg, names)
	reg.MustRegister(s.perSource.collectors()...)
	for _, n := range names {
		s.routeM[n] = &routeMetrics{
			bytes:  [2]prometheus.Counter{s.m.Bytes.WithLabelValues(n, "in"), s.m.Bytes.WithLabelValues(n, "out")},
			active: s.m.Active.WithLabelValues(n),
			opened: s.m.Opened.WithLabelValues(n),
		}
	}
	return s, nil
}

// StartProbes probes upstreams in the background until ctx ends.
func (s *Server) StartProbes(ctx context.Context) {
	go s.probeUpstreams(ctx, s.cfg.ProbeInterval)
}

// Ready reports readiness (see the pure Ready function).
func (s *Server) Ready() bool {
	s.mu.Lock()
	ups := make([]bool, 0, len(s.upstreamUp))
	if s.probed {
		for _, up := range s.upstreamUp {
			ups = append(ups, up)
		}
	}
	s.mu.Unlock()
	return Ready(s.draining.Load(), ups)
}

func (s *Server) updateReadyGauge() {
	v := 0.0
	if s.Ready() {
		v = 1
	}
	s.m.Ready.Set(v)
}

// SetDraining makes the relay report unready from now on (lame duck); it
// keeps accepting until the caller closes the listener.
func (s *Server) SetDraining() {
	s.draining.Store(true)
	s.m.DrainingGauge.Set(1)
	s.updateReadyGauge()
}

// ActiveSessions returns the number of relayed connections.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Serve accepts until ln is closed, retrying temporary Accept errors (such as
// running out of file descriptors) with a capped backoff.
func (s *Server) Serve(ln net.Listener) error {
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff.String())
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		tc, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		if s.open.Add(1) > int64(s.cfg.MaxConns) {
			s.open.Add(-1)
			s.reject(tc, ReasonOverCap, addrPort(tc.RemoteAddr()), nil)
			continue
		}
		s.handlers.Add(1)
		go s.handle(tc, time.Now())
	}
}

// Wait blocks until every connection handler has returned or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
		s.pipes.closeAll()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CloseSpread closes every relayed connection, evenly spaced over window, so
// agents reconnect elsewhere in a trickle instead of one storm. Connections
// that appear while it runs are closed at the end.
func (s *Server) CloseSpread(ctx context.Context, window time.Duration) {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	if n := len(list); n > 0 {
		step := window / time.Duration(n)
		start := time.Now()
		t := time.NewTimer(0)
		defer t.Stop()
		for i, ss := range list {
			if wait := time.Until(start.Add(time.Duration(i) * step)); wait > 0 {
				t.Reset(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
				}
			}
			ss.closeWith(CloseDrain)
		}
	}
	// Sessions handed off while we were closing (their hello was in flight
	// when the listener closed) are closed now; relay closes any later one.
	s.mu.Lock()
	s.closedAll = true
	rest := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		rest = append(rest, ss)
	}
	s.mu.Unlock()
	for _, ss := range rest {
		ss.closeWith(CloseDrain)
	}
	s.cancel()
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readPreamble applies --proxy-protocol to a new connection from peer (the
// agent port and the admin port alike): it returns the client's address, the
// bytes read that were not a header (to be replayed), and a reject reason
// when the connection must be refused. The caller has set the read deadline.
func (s *Server) readPreamble(c net.Conn, peer netip.AddrPort) (source netip.AddrPort, prefix []byte, reason string, err error) {
	if s.cfg.ProxyProtocol == config.ProxyOff {
		return peer, nil, "", nil
	}
	p, err := proxyproto.ReadPreamble(c, peer, s.trusted, s.cfg.ProxyProtocol == config.ProxyRequired)
	switch {
	case err == nil:
		return p.Source, p.Prefix, "", nil
	case errors.Is(err, proxyproto.ErrUntrusted):
		reason = ReasonUntrustedProxyHeader
	case errors.Is(err, proxyproto.ErrMissing):
		reason = ReasonMissingProxyHeader
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = ReasonPeekTimeout
	case errors.Is(err, proxyproto.ErrInvalid), errors.Is(err, proxyproto.ErrTooLong):
		reason = ReasonBadProxyHeader
	default:
		reason = readFailure(err, len(p.Prefix))
	}
	return p.Source, p.Prefix, reason, err
}

// rejectLevel is the level of a refusal's log line. Floods and load
// balancer probes are counted, not logged above debug. source_over_cap is
// logged: it is how an operator learns that a customer site is larger than
// --max-conns-per-source allows (the fleet's rejects metric and alarm count
// the relayspec.RejectLogMessage lines), and one source can log at most --source-rate of
// them a second, since the rate limit is applied first.
func rejectLevel(reason string) slog.Level {
	switch reason {
	case ReasonOverCap, ReasonRateLimited, ReasonClientClosed:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// reject refuses a connection on the agent port. The log line is written
// before the counter moves, so whoever sees the count can already read the
// line.
func (s *Server) reject(c net.Conn, reason string, source netip.AddrPort, err error) {
	s.rejectOn(ListenerAgent, c, reason, source, err)
}

// rejectOn is reject for either listener; the admin port's lines carry
// "listener":"admin".
func (s *Server) rejectOn(listener string, c net.Conn, reason string, source netip.AddrPort, err error) {
	level := rejectLevel(reason)
	if s.log.Enabled(context.Background(), level) {
		var attrs []slog.Attr
		if listener != ListenerAgent {
			attrs = append(attrs, slog.String(relayspec.LogKeyListener, listener))
		}
		attrs = append(attrs, slog.String(relayspec.LogKeyReason, reason), slog.String("source", source.String()))
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.log.LogAttrs(context.Background(), level, relayspec.RejectLogMessage, attrs...)
	}
	s.m.Rejected.WithLabelValues(listener, reason).Inc()
	c.Close()
}

// readFailure maps an error while reading the preamble to a reject reason.
func readFailure(err error, got int) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonPeekTimeout
	case errors.Is(err, clienthello.ErrNotTLS):
		return ReasonNotTLS
	case errors.Is(err, clienthello.ErrTooLong):
		return ReasonHelloTooLong
	case errors.Is(err, clienthello.ErrMalformed):
		return ReasonMalformedHello
	case errors.Is(err, io.ErrUnexpectedEOF) && got > 0:
		return ReasonNotTLS
	default:
		return ReasonClientClosed
	}
}

// handle reads the preamble and either refuses the connection or hands it
// to two pump goroutines; it returns as soon as it has done so, so its own
// (deeper) stack is not kept alive for the life of an idle connection.
func (s *Server) handle(c *net.TCPConn, accepted time.Time) {
	handedOff, holdsSourceSlot := false, false
	var source netip.AddrPort
	defer func() {
		if !handedOff {
			if holdsSourceSlot {
				s.perSource.release(source.Addr())
			}
			s.open.Add(-1)
			s.handlers.Done()
		}
	}()
	deadline := accepted.Add(s.cfg.PeekTimeout)
	source = addrPort(c.RemoteAddr())
	if err := c.SetReadDeadline(deadline); err != nil {
		c.Close()
		return
	}
	source, prefix, reason, err := s.readPreamble(c, source)
	if reason != "" {
		s.reject(c, reason, source, err)
		return
	}
	if !s.limiter.allow(source.Addr(), time.Now()) {
		s.reject(c, ReasonRateLimited, source, nil)
		return
	}
	if !s.perSource.acquire(source.Addr()) {
		s.reject(c, ReasonSourceOverCap, source, nil)
		return
	}
	holdsSourceSlot = true // released by the deferred func, or by finish once handed off
	if s.cfg.HTTPConnect {
		if len(prefix) == 0 {
			prefix = make([]byte, 1)
			if n, err := io.ReadFull(c, prefix); err != nil {
				s.reject(c, readFailure(err, n), source, err)
				return
			}
		}
		if prefix[0] == 'C' {
			handedOff = s.handleConnect(c, io.MultiReader(bytes.NewReader(prefix), c), source, accepted)
			return
		}
	}
	hello, first, err := readHello(prefix, c)
	if err != nil {
		s.reject(c, readFailure(err, len(hello.Raw)), source, err)
		return
	}
	s.m.PeekSeconds.Observe(time.Since(accepted).Seconds())
	if hello.ServerName == s.cfg.HealthSNI && !hello.ECH {
		s.serveHealth(c, first, deadline)
		return
	}
	sni, upstream, reason := s.lookup(hello)
	if reason != "" {
		s.reject(c, reason, source, fmt.Errorf("server name %q", hello.ServerName))
		return
	}
	attrs := []slog.Attr{slog.String("via", "tls")}
	if len(hello.ALPN) > 0 {
		attrs = append(attrs, slog.String("alpn", strings.Join(hello.ALPN, ",")))
	}
	handedOff = s.relay(c, source, sni, upstream, first, accepted, attrs)
}

// readHello reads the ClientHello from the bytes already read from c
// (buffered) and then c. first is what the upstream must get before the
// rest of c: the hello's own bytes and whatever the client sent behind it
// that was already read (pipelined after a CONNECT request, say).
func readHello(buffered []byte, c io.Reader) (hello *clienthello.Hello, first []byte, err error) {
	br := bytes.NewReader(buffered)
	hello, err = clienthello.Read(io.MultiReader(br, c))
	if err != nil || br.Len() == 0 {
		return hello, hello.Raw, err
	}
	return hello, append(hello.Raw, buffered[len(buffered)-br.Len():]...), nil
}

// lookup applies the allowlist to a ClientHello.
func (s *Server) lookup(h *clienthello.Hello) (sni, upstream, reason string) {
	if h.ECH {
		return "", "", ReasonECH
	}
	if upstream, reason = s.route(h.ServerName); reason != "" {
		return "", "", reason
	}
	return h.ServerName, upstream, ""
}

// route is the allowlist, for a normalised server name from an SNI or a
// CONNECT request: the only addresses the relay ever dials are the
// configured upstreams, found by exact name. Names are compared only once
// they hold nothing but ASCII letters, digits, '-' and '.'.
func (s *Server) route(name string) (upstream, reason string) {
	if name == "" {
		return "", ReasonNoSNI
	}
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return "", ReasonIPSNI
	}
	if !clienthello.ValidNameBytes(name) {
		return "", ReasonInvalidSNI
	}
	up, ok := s.routes[name]
	if !ok {
		return "", ReasonUnknownSNI
	}
	return up, ""
}

// handleConnect serves an HTTP CONNECT tunnel to a routed name on port 443;
// the target is looked up in the same allowlist and the configured upstream
// is dialled, never the requested address. After the 200 the tunnel is the
// TLS path: its ClientHello is read under the same byte cap and the same
// deadline (from accept), and must name the CONNECT host, so a tunnel opened
// for one name cannot carry a handshake for another.
func (s *Server) handleConnect(c *net.TCPConn, r io.Reader, source netip.AddrPort, accepted time.Time) bool {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHTTPRequest), 4096)
	req, err := http.ReadRequest(br)
	if err != nil {
		reason := ReasonConnectDenied
		if errors.Is(err, os.ErrDeadlineExceeded) {
			reason = ReasonPeekTimeout
		} else {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
		}
		s.reject(c, reason, source, err)
		return false
	}
	host, port, err := net.SplitHostPort(req.RequestURI)
	name := clienthello.NormalizeName(host)
	_, reason := s.route(name)
	if req.Method != http.MethodConnect || err != nil || port != "443" || reason != "" {
		if req.Method != http.MethodConnect || err != nil || reason != ReasonInvalidSNI {
			reason = ReasonConnectDenied
		}
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n")
		s.reject(c, reason, source, fmt.Errorf("%s %q", req.Method, req.RequestURI))
		return false
	}
	// A client may send its hello right behind the request.
	leftover, _ := br.Peek(br.Buffered())
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		s.reject(c, ReasonClientClosed, source, err)
		return false
	}
	hello, first, err := readHello(leftover, c)
	if err != nil {
		s.reject(c, readFailure(err, len(hello.Raw)), source, err)
		return false
	}
	s.m.PeekSeconds.Observe(time.Since(accepted).Seconds())
	upstream, reason := s.tunnelTarget(name, hello)
	if reason != "" {
		s.reject(c, reason, source, fmt.Errorf("CONNECT %q, tunnelled server name %q", name, hello.ServerName))
		return false
	}
	attrs := []slog.Attr{slog.String("via", "connect")}
	if len(hello.ALPN) > 0 {
		attrs = append(attrs, slog.String("alpn", strings.Join(hello.ALPN, ",")))
	}
	return s.relay(c, source, name, upstream, first, accepted, attrs)
}

// tunnelTarget applies the allowlist to the ClientHello sent through a
// CONNECT tunnel for connectName (normalised): the TLS path's rules, and the
// hello's server name must be connectName.
func (s *Server) tunnelTarget(connectName string, h *clienthello.Hello) (upstream, reason string) {
	sni, upstream, reason := s.lookup(h)
	switch {
	case reason != "":
		return "", reason
	case sni != connectName:
		return "", ReasonSNIMismatch
	}
	return upstream, ""
}

// routeMetrics are one route's collectors, looked up once at start so a
// connection does not hash label values.
type routeMetrics struct {
	bytes  [2]prometheus.Counter // in, out
	active prometheus.Gauge
	opened prometheus.Counter
}

// session is one relayed connection: one allocation holding both
// directions and everything the closing log line needs, so an idle
// connection costs this struct, its two sockets and two poller entries.
type session struct {
	s                      *Server
	client, upstream       *net.TCPConn
	clientRaw, upstreamRaw syscall.RawConn
	dirs                   [2]halfPipe  // client→upstream, upstream→client
	last                   atomic.Int64 // unix nanoseconds of the last byte either way
	running                atomic.Int32 // directions still pumping
	fellBack               atomic.Bool  // a direction left splice for the buffer
	buffered               bool         // both directions started buffered
	idle                   time.Duration
	closeOnce              sync.Once
	reasonMu               sync.Mutex
	reason                 string
	route                  *routeMetrics
	source                 netip.AddrPort
	sni, upstreamAddr      string
	accepted               time.Time
	attrs                  []slog.Attr // how it arrived (via, alpn)
}

func (ss *session) closeWith(reason string) {
	ss.reasonMu.Lock()
	if ss.reason == "" {
		ss.reason = reason
	}
	ss.reasonMu.Unlock()
	ss.closeOnce.Do(func() {
		ss.client.Close()
		ss.upstream.Close()
	})
	// Parked directions have no goroutine to notice the close: end them here.
	for i := range ss.dirs {
		h := &ss.dirs[i]
		if h.state.CompareAndSwap(stateParked, stateDone) {
			h.poller().remove(h)
			ss.pumped(nil)
		}
	}
}

func (s *Server) relay(c *net.TCPConn, source netip.AddrPort, sni, upstream string, first []byte, accepted time.Time, attrs []slog.Attr) bool {
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.DialTimeout)
	uc, err := s.dialer.DialContext(ctx, "tcp", upstream)
	cancel()
	if err != nil {
		if uc != nil {
			uc.Close()
		}
		s.reject(c, ReasonUpstreamUnreachable, source, err)
		return false
	}
	up := uc.(*net.TCPConn)
	rm := s.routeM[sni]
	ss := &session{s: s, client: c, upstream: up, idle: s.cfg.IdleTimeout, route: rm,
		source: source, sni: sni, upstreamAddr: upstream, accepted: accepted, attrs: attrs}
	ss.last.Store(time.Now().UnixNano())
	// The peek deadline must not outlive the preamble: bursts never wait on reads.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		up.Close()
		s.reject(c, ReasonClientClosed, source, err)
		return false
	}
	if len(first) > 0 {
		up.SetWriteDeadline(time.Now().Add(s.cfg.DialTimeout))
		if _, err := up.Write(first); err != nil {
			up.Close()
			s.reject(c, ReasonUpstreamUnreachable, source, err)
			return false
		}
		ss.dirs[0].bytes.Add(int64(len(first)))
	}
	rm.bytes[0].Add(float64(len(first)))
	rm.active.Inc()
	rm.opened.Inc()

	var err1, err2 error
	ss.clientRaw, err1 = c.SyscallConn()
	ss.upstreamRaw, err2 = up.SyscallConn()
	ss.buffered = s.cfg.CopyMode != config.CopySplice || err1 != nil || err2 != nil
	for i := range ss.dirs {
		ss.dirs[i].ss = ss
		ss.dirs[i].toUpstream = i == 0
		ss.dirs[i].buffered = ss.buffered
		s.poller.add(&ss.dirs[i])
	}
	ss.running.Store(2)
	s.opened.Add(1)
	// Visible to the idle sweep and the drain only once fully built.
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	late := s.closedAll
	s.mu.Unlock()
	if late {
		ss.closeWith(CloseDrain)
	}
	// Both directions start parked: the poller resumes one as soon as its
	// socket is readable (arming is level-triggered, so bytes already
	// queued, such as the client's next flight, fire at once), which saves
	// each a read that would find nothing.
	for i := range ss.dirs {
		ss.dirs[i].startParked()
	}
	return true
}

// finish releases the session's slots, writes its log line and then moves
// its metrics, once both directions are done. The order is the contract
// observers rely on: whoever sees the closed counter or the active gauge move
// can already read the log line and open a new connection in the freed slot.
func (ss *session) finish() {
	s := ss.s
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.perSource.release(ss.source.Addr())
	s.open.Add(-1)
	path := copySplice
	if ss.buffered || ss.fellBack.Load() {
		path = copyBuffered
	}
	ss.reasonMu.Lock()
	reason := ss.reason
	ss.reasonMu.Unlock()
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		attrs := append(ss.attrs,
			slog.String("source", ss.source.String()),
			slog.String("sni", ss.sni),
			slog.String("upstream", ss.upstreamAddr),
			slog.Int64("bytes_in", ss.dirs[0].bytes.Load()),
			slog.Int64("bytes_out", ss.dirs[1].bytes.Load()),
			slog.Float64("duration", time.Since(ss.accepted).Seconds()),
			slog.String("reason", reason),
			slog.String("copy", path),
		)
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "connection", attrs...)
	}
	ss.route.active.Dec()
	s.m.Closed.WithLabelValues(ss.sni, path, reason).Inc()
	s.handlers.Done()
}

// clientToUpstream and upstreamToClient exist so goroutine dumps say which
// way a blocked copy runs.
func (ss *session) clientToUpstream(h *halfPipe) { h.run() }

func (ss *session) upstreamToClient(h *halfPipe) { h.run() }

// sweepIdle closes sessions with no byte either way for the idle timeout.
// Parked directions have no goroutine and no deadline, so time is checked
// here, a few times per idle period.
func (s *Server) sweepIdle(ctx context.Context) {
	every := min(max(s.cfg.IdleTimeout/8, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle []*session
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cutoff := now.Add(-s.cfg.IdleTimeout).UnixNano()
			idle = idle[:0]
			s.mu.Lock()
			for ss := range s.sessions {
				if ss.last.Load() <= cutoff {
					idle = append(idle, ss)
				}
			}
			s.mu.Unlock()
			for _, ss := range idle {
				ss.closeWith(CloseIdle)
			}
		}
	}
}

// stormSessions is how many new sessions count as a connection storm (agents
// reconnecting after a relay restart or a network blip).
const stormSessions = 256

// releaseAfterStorms returns a connection storm's garbage to the operating
// system once the storm is over: when at least minSessions sessions were
// relayed since the last release and none in the last period, it runs
// debug.FreeOSMemory (one forced GC, then the freed pages go back). After a
// storm the relay holds thousands of idle connections for hours; without
// this, the set-up garbage (hello buffers, dial state, handler stacks) stays
// in RSS until the heap grows back to the GC's target, which an idle relay
// never does. A steady trickle of connections never triggers it, so the
// normal GC pacing applies there.
func (s *Server) releaseAfterStorms(ctx context.Context, period time.Duration, minSessions int64) {
	t := time.NewTicker(period)
	defer t.Stop()
	var seen, released int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.opened.Load()
		if stormOver(now, seen, released, minSessions) {
			debug.FreeOSMemory()
			released = now
			s.m.MemoryReleases.Inc()
		}
		seen = now
	}
}

// stormOver is releaseAfterStorms' rule: the count of sessions ever opened
// has not moved since the last tick (seen) and grew by at least minSessions
// since the last release.
func stormOver(opened, seen, released, minSessions int64) bool {
	return opened == seen && opened-released >= minSessions
}

// pumped ends one direction; the last one to end closes and reports.
func (ss *session) pumped(err error) {
	ss.directionDone(err)
	if ss.running.Add(-1) == 0 {
		ss.closeWith(CloseDone)
		ss.finish()
	}
}

func (ss *session) directionDone(err error) {
	if err == nil {
		return // FIN forwarded; the other direction may still be talking
	}
	reason := CloseClientError
	var se *sideError
	switch {
	case errors.Is(err, errIdle):
		reason = CloseIdle
	case errors.As(err, &se):
		reason = se.side
	}
	ss.closeWith(reason)
}

// sideError records which end of the connection an error came from.
type sideError struct {
	side string
	err  error
}

func (e *sideError) Error() string { return e.side + ": " + e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }
