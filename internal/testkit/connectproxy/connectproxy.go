// Package connectproxy is a customer site's explicit HTTP proxy for the lab:
// it answers CONNECT (RFC 9110 section 9.3.6: a 2xx answer turns the
// connection into a tunnel; 407 asks for Proxy-Authorization, RFC 9110
// section 15.5.8) and splices the tunnel to the target, which it
// resolves with the lab's DNS. It can require Basic credentials, deny
// every tunnel, intercept TLS with its own CA (as TLS-inspecting proxies
// do), or answer with hostile heads (oversize, never-ending, not HTTP).
//
// It is test support: only tests import it.
package connectproxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// Mode is how the proxy answers a CONNECT it admits (after credentials).
type Mode int

// Modes.
const (
	// Open splices the tunnel to the target.
	Open Mode = iota
	// Deny answers 403 Forbidden.
	Deny
	// Intercept answers 200 and then terminates TLS itself with a leaf for
	// the client's server name signed by its own CA (Proxy.CA).
	Intercept
	// Oversize answers a 200 status line followed by header lines without
	// end (until the client hangs up).
	Oversize
	// Endless answers a status line and then nothing, holding the
	// connection open until the client hangs up.
	Endless
	// Garbage answers with a line that is not HTTP.
	Garbage
)

// Options configure a proxy.
type Options struct {
	Mode Mode
	// User and Password, when User is set, are the only Basic credentials
	// admitted; other or missing ones get 407.
	User, Password string
	// Resolver resolves CONNECT targets; nil is the system resolver.
	Resolver *net.Resolver
}

// Request is one CONNECT the proxy received.
type Request struct {
	Target string
	// Status is what the proxy answered (200 also for Intercept and the
	// hostile modes that start with it; 0 for Garbage).
	Status int
}

// Proxy is a running proxy.
type Proxy struct {
	// Addr is the proxy's host:port on loopback.
	Addr string
	// CA signs the intercepting mode's certificates.
	CA *testpki.CA

	opts Options
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	reqs []Request
	seen chan Request
	// ctx is cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc
}

// Start starts a proxy on 127.0.0.1.
func Start(opts Options) (*Proxy, error) {
	ca, err := testpki.NewCA()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Addr: ln.Addr().String(), CA: ca, opts: opts, ln: ln, seen: make(chan Request, 64)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// URL is the proxy's URL with the given userinfo ("" for none, else
// "user:password").
func (p *Proxy) URL(userinfo string) string {
	if userinfo == "" {
		return "http://" + p.Addr
	}
	return "http://" + userinfo + "@" + p.Addr
}

// Requests returns the CONNECTs answered so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Seen delivers each CONNECT as it is answered (buffered; extra ones are
// dropped from the channel but kept in Requests).
func (p *Proxy) Seen() <-chan Request { return p.seen }

// Close stops the proxy and every tunnel.
func (p *Proxy) Close() {
	p.cancel()
	p.ln.Close()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			stop := context.AfterFunc(p.ctx, func() { c.Close() })
			defer stop()
			p.handle(c)
		}()
	}
}

func (p *Proxy) record(target string, status int) {
	r := Request{Target: target, Status: status}
	p.mu.Lock()
	p.reqs = append(p.reqs, r)
	p.mu.Unlock()
	select {
	case p.seen <- r:
	default:
	}
}

func (p *Proxy) handle(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	target := req.Host
	if req.Method != http.MethodConnect {
		p.record(target, 405)
		io.WriteString(c, "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
		return
	}
	if p.opts.User != "" && !p.authorized(req.Header.Get("Proxy-Authorization")) {
		p.record(target, 407)
		io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n")
		return
	}
	switch p.opts.Mode {
	case Deny:
		p.record(target, 403)
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
	case Garbage:
		p.record(target, 0)
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
	case Endless:
		p.record(target, 200)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n")
		io.Copy(io.Discard, c) // until the client hangs up
	case Oversize:
		p.record(target, 200)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n")
		line := []byte("X-Padding: " + strings.Repeat("a", 1000) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	case Intercept:
		p.record(target, 200)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		tc := tls.Server(c, &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			leaf, err := p.CA.Leaf(h.ServerName)
			return &leaf, err
		}, NextProtos: []string{"x-amzn-mqtt-ca", "http/1.1"}})
		tc.Handshake()
		tc.Close()
	default:
		p.splice(c, br, target)
	}
}

func (p *Proxy) authorized(h string) bool {
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	return err == nil && string(b) == p.opts.User+":"+p.opts.Password
}

func (p *Proxy) splice(c net.Conn, br *bufio.Reader, target string) {
	d := net.Dialer{Timeout: 5 * time.Second, Resolver: p.opts.Resolver}
	up, err := d.DialContext(p.ctx, "tcp", target)
	if err != nil {
		p.record(target, 502)
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	p.record(target, 200)
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, br) // what the client sent after the head, then the rest
		up.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(c, up)
		c.(*net.TCPConn).CloseWrite()
		done <- struct{}{}
	}()
	<-done
	<-done
}
