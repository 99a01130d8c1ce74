//go:build linux

package relay

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/proxyimage/config"
)

// session is one relayed connection: one allocation holding both
// directions and everything the closing log line needs, so an idle
// connection costs this struct, its two sockets and two poller entries.
type session struct {
	s                      *Server
	client, upstream       *net.TCPConn
	clientRaw, upstreamRaw syscall.RawConn
	dirs                   [2]halfPipe  // client→upstream, upstream→client
	last                   atomic.Int64 // unix nanoseconds of the last byte either way
	running                atomic.Int32 // directions not yet done
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
	arrival                arrival
}

// relay dials the route's upstream, sends it first (the ClientHello and
// whatever came behind it) and hands the connection to its two directions.
// It reports whether it took the connection: if not, it has refused it.
func (s *Server) relay(c *net.TCPConn, source netip.AddrPort, sni, upstream string, first []byte, accepted time.Time, how arrival) bool {
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
	rm := s.routes.metrics[sni]
	ss := &session{s: s, client: c, upstream: up, idle: s.cfg.IdleTimeout, route: rm,
		source: source, sni: sni, upstreamAddr: upstream, accepted: accepted, arrival: how}
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
	if late := s.sessions.add(ss); late {
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

// closeWith closes both sockets (once) and records the first reason given.
// A running direction notices the close on its next read or write; a
// parked one has no goroutine to notice, so it is ended here.
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
	for i := range ss.dirs {
		ss.dirs[i].endIfParked()
	}
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

// finish releases the session's slots, writes its log line and then moves
// its metrics, once both directions are done. The order is the contract
// observers rely on: whoever sees the closed counter or the active gauge move
// can already read the log line and open a new connection in the freed slot.
func (ss *session) finish() {
	s := ss.s
	s.sessions.remove(ss)
	s.admit.perSource.release(ss.source.Addr())
	s.admit.open.Add(-1)
	path := copySplice
	if ss.buffered || ss.fellBack.Load() {
		path = copyBuffered
	}
	ss.reasonMu.Lock()
	reason := ss.reason
	ss.reasonMu.Unlock()
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		attrs := append(ss.arrival.attrs(),
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
	ss.route.closedCounter(path, reason).Inc()
	s.handlers.Done()
}

// clientToUpstream and upstreamToClient exist so goroutine dumps say which
// way a blocked copy runs.
func (ss *session) clientToUpstream(h *halfPipe) { h.run() }

func (ss *session) upstreamToClient(h *halfPipe) { h.run() }

// sideError records which end of the connection an error came from; side
// is the close reason it gives (CloseClientError or CloseUpstreamError).
type sideError struct {
	side string
	err  error
}

func (e *sideError) Error() string { return e.side + ": " + e.err.Error() }
func (e *sideError) Unwrap() error { return e.err }
