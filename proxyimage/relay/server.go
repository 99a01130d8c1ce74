//go:build linux

// Package relay is the agent-facing half of the relay: it accepts TCP
// connections, optionally reads a PROXY v2 header from a trusted load
// balancer, reads the TLS ClientHello (or an HTTP CONNECT request), and
// relays the raw bytes to the one upstream configured for that exact server
// name. It never terminates agent TLS and never dials an address taken from
// a client. The health server name is the one exception: it is answered
// locally with a self-signed certificate so health checks exercise the same
// IP:port path agents use.
//
// Files by job: server.go (lifecycle: New, Serve, Wait), drain.go (the
// shutdown sequence), preamble.go (PROXY header, ClientHello or CONNECT),
// route.go (the allowlist decision), reject.go (refusals), session.go (one
// relayed connection), direction.go (who owns a direction), copy.go and
// splice.go (moving bytes), poller.go (parked directions), housekeeping.go
// (idle sweep, probes, gauges), health.go (the health name).
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentgate/agentgate/proxyimage/config"
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
// listener, and shut down with Drain (or SetDraining, CloseSpread and Wait).
type Server struct {
	cfg       *config.Config
	log       *slog.Logger
	m         *Metrics
	routes    routeTable
	healthTLS *tls.Config
	dialer    *net.Dialer
	admit     admission
	pipes     *pipePool
	poller    *poller
	sessions  registry
	readiness readiness
	baseCtx   context.Context
	cancel    context.CancelFunc
	opened    atomic.Int64   // sessions ever relayed, for releaseAfterStorms
	handlers  sync.WaitGroup // connection handlers, for Wait
	serving   sync.WaitGroup // Serve calls, for Drain
}

// admission is what a new connection must pass before its preamble is
// routed: the process-wide cap, the per-source rate and the per-source cap.
type admission struct {
	open      atomic.Int64 // accepted and not yet closed, for --max-conns
	limiter   *sourceLimiter
	perSource *sourceConns
}

// New validates nothing (config did) and prepares a server; metrics are
// registered on reg.
func New(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	certs, err := healthCertificates(cfg.HealthSNI)
	if err != nil {
		return nil, fmt.Errorf("health certificate: %w", err)
	}
	s := &Server{
		cfg: cfg,
		log: log,
		healthTLS: &tls.Config{
			Certificates: certs, // ECDSA first: crypto/tls serves the first one the client supports
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		},
		// Keep-alive probes off: idle agents stay idle on the wire; the idle
		// timeout and MQTT keep-alives find dead peers.
		dialer: &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: -1},
		admit: admission{
			limiter:   newSourceLimiter(cfg.SourceRate, cfg.SourceBurst, maxRateLimitEntries),
			perSource: newSourceConns(cfg.MaxConnsPerSource),
		},
		pipes:    newPipePool(pipePoolSize),
		sessions: registry{set: make(map[*session]struct{})},
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	if s.poller, err = newPoller(log); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	go s.poller.run(s.baseCtx)
	go s.sweepIdle(s.baseCtx)
	go s.releaseAfterStorms(s.baseCtx, time.Second, stormSessions)
	names := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names = append(names, r.SNI)
	}
	s.m = NewMetrics(reg, names)
	reg.MustRegister(s.admit.perSource.collectors()...)
	s.routes = newRouteTable(cfg.Routes, s.m)
	return s, nil
}

// ActiveSessions returns the number of relayed connections.
func (s *Server) ActiveSessions() int { return s.sessions.len() }

// Serve accepts until ln is closed, retrying temporary Accept errors (such as
// running out of file descriptors) with a capped backoff.
func (s *Server) Serve(ln net.Listener) error {
	s.serving.Add(1)
	defer s.serving.Done()
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
		if s.admit.open.Add(1) > int64(s.cfg.MaxConns) {
			s.admit.open.Add(-1)
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

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	return netip.AddrPort{}
}
