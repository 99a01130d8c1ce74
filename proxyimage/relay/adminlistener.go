//go:build linux

package relay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/agentgate/agentgate/proxyimage/config"
)

// AdminListener wraps the admin port's listener so it honours
// --proxy-protocol exactly as the agent port does: a header only from a
// --trusted-cidr peer, LOCAL accepted, a header from anyone else refused,
// and under "required" a connection without one refused. Behind an NLB this
// is not optional: with proxy protocol enabled on a target group, the NLB
// also puts a PROXY v2 header, without client addresses, on its own
// health-check connections (Elastic Load Balancing, Network Load Balancers
// user guide, "Edit target group attributes" → "Proxy protocol" → "Health
// check connections"); an admin port that answered plain HTTP only would
// fail every target health check. Refusals are counted and logged like the
// agent port's, under listener="admin" in
// agentgate_relay_rejected_connections_total and with "listener":"admin" in
// their log line. With --proxy-protocol off, ln is returned as it is.
//
// Each connection's header is read in its own goroutine under
// --peek-timeout, so a slow peer never holds up Accept; at most
// MaxAdminPreambles are read at once, and a connection over that is closed
// at once and counted as over_cap. What Accept returns replays any bytes
// read that were not a header and reports the header's client as its
// RemoteAddr.
func (s *Server) AdminListener(ln net.Listener) net.Listener {
	if s.cfg.ProxyProtocol == config.ProxyOff {
		return ln
	}
	l := &adminListener{Listener: ln, s: s, conns: make(chan net.Conn), done: make(chan struct{}),
		preambles: make(chan struct{}, MaxAdminPreambles)}
	go l.acceptLoop()
	return l
}

// MaxAdminPreambles caps the admin connections whose PROXY header is being
// read at once. The admin port's legitimate peers are the load balancer's
// health checkers (a few per zone, one connection each per interval) and a
// metrics scraper; 64 leaves them ample room while a flood of silent
// connections costs at most 64 goroutines until --peek-timeout.
const MaxAdminPreambles = 64

type adminListener struct {
	net.Listener
	s         *Server
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	preambles chan struct{} // one token per connection whose header is being read
}

// Accept returns the next connection whose preamble passed.
func (l *adminListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections still reading their header are closed.
func (l *adminListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

func (l *adminListener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				l.closeOnce.Do(func() { close(l.done) })
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.s.log.Warn("admin accept failed; retrying", "err", err, "backoff", backoff.String())
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		select {
		case l.preambles <- struct{}{}:
			go l.preamble(c, time.Now())
		default:
			l.s.rejectOn(ListenerAdmin, c, ReasonOverCap, addrPort(c.RemoteAddr()), nil)
		}
	}
}

// preamble reads one connection's PROXY header (bounded in bytes by
// proxyproto, in time by --peek-timeout) and hands the connection to Accept.
func (l *adminListener) preamble(c net.Conn, accepted time.Time) {
	defer func() { <-l.preambles }()
	peer := addrPort(c.RemoteAddr())
	if err := c.SetReadDeadline(accepted.Add(l.s.cfg.PeekTimeout)); err != nil {
		c.Close()
		return
	}
	source, prefix, reason, err := l.s.readPreamble(c, peer)
	if reason != reasonNone {
		l.s.rejectOn(ListenerAdmin, c, reason, source, err)
		return
	}
	// The HTTP server sets its own deadlines from here on.
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		c.Close()
		return
	}
	pc := &preambleConn{Conn: c, prefix: prefix, source: source}
	select {
	case l.conns <- pc:
	case <-l.done:
		c.Close()
	}
}

// preambleConn is an accepted admin connection after its PROXY header: it
// replays the bytes read that were not a header, and its RemoteAddr is the
// client the header named (the peer for LOCAL).
type preambleConn struct {
	net.Conn
	prefix []byte
	source netip.AddrPort
}

func (c *preambleConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *preambleConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.source) }

// CloseWrite lets net/http half-close after its answer, as on a plain
// TCP connection.
func (c *preambleConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
