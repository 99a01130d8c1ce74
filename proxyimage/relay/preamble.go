//go:build linux

package relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/agentgate/agentgate/proxyimage/clienthello"
	"github.com/agentgate/agentgate/proxyimage/config"
	"github.com/agentgate/agentgate/proxyimage/proxyproto"
)

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
func (s *Server) readPreamble(c net.Conn, peer netip.AddrPort) (source netip.AddrPort, prefix []byte, reason Reason, err error) {
	if s.cfg.ProxyProtocol == config.ProxyOff {
		return peer, nil, reasonNone, nil
	}
	p, err := proxyproto.ReadPreamble(c, peer, s.trusted, s.cfg.ProxyProtocol == config.ProxyRequired)
	switch {
	case err == nil:
		return p.Source, p.Prefix, reasonNone, nil
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

// readFailure maps an error while reading the preamble to a reject reason.
func readFailure(err error, got int) Reason {
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
				s.admit.perSource.release(source.Addr())
			}
			s.admit.open.Add(-1)
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
	if reason != reasonNone {
		s.reject(c, reason, source, err)
		return
	}
	if !s.admit.limiter.allow(source.Addr(), time.Now()) {
		s.reject(c, ReasonRateLimited, source, nil)
		return
	}
	if !s.admit.perSource.acquire(source.Addr()) {
		s.reject(c, ReasonSourceOverCap, source, nil)
		return
	}
	holdsSourceSlot = true // released by the deferred func, or by finish once handed off
	if len(prefix) == 0 {
		// One read for what the client has sent so far (usually the whole
		// hello): parsing straight from the socket costs two, a record
		// header and then its body.
		bp := preReadPool.Get().(*[]byte)
		defer preReadPool.Put(bp)
		n, err := c.Read(*bp)
		if n == 0 && err != nil {
			s.reject(c, readFailure(err, 0), source, err)
			return
		}
		prefix = (*bp)[:n]
	}
	if s.cfg.HTTPConnect && len(prefix) > 0 {
		if sniff(prefix[0]) == viaConnect {
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
	if reason != reasonNone {
		s.reject(c, reason, source, fmt.Errorf("server name %q", hello.ServerName))
		return
	}
	handedOff = s.relay(c, source, sni, upstream, first, accepted, arrivalOf(viaTLS, hello))
}

// preReadSize bounds the first read of a connection (preReadPool). It is
// at most the CONNECT path's request buffer (connectBufferSize), whose first
// fill then takes all of it, so the bytes behind the request are all in
// that buffer when the tunnel's hello is read.
const preReadSize = connectBufferSize

// connectBufferSize is the buffer a CONNECT request is read through.
const connectBufferSize = 4096

// preReadPool holds the buffers of first reads: what handle reads into one is
// copied out (into the hello, the health handshake or the CONNECT request's
// buffer) before handle returns it.
var preReadPool = sync.Pool{New: func() any { b := make([]byte, preReadSize); return &b }}

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

// handleConnect serves an HTTP CONNECT tunnel to a routed name on port 443;
// the target is looked up in the same allowlist and the configured upstream
// is dialled, never the requested address. After the 200 the tunnel is the
// TLS path: its ClientHello is read under the same byte cap and the same
// deadline (from accept), and must name the CONNECT host, so a tunnel opened
// for one name cannot carry a handshake for another.
func (s *Server) handleConnect(c *net.TCPConn, r io.Reader, source netip.AddrPort, accepted time.Time) bool {
	br := bufio.NewReaderSize(io.LimitReader(r, maxHTTPRequest), connectBufferSize)
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
	if req.Method != http.MethodConnect || err != nil || port != "443" || reason != reasonNone {
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
	if reason != reasonNone {
		s.reject(c, reason, source, fmt.Errorf("CONNECT %q, tunnelled server name %q", name, hello.ServerName))
		return false
	}
	return s.relay(c, source, name, upstream, first, accepted, arrivalOf(viaConnect, hello))
}
