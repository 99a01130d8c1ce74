package netpath

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
)

// Bounds on one CONNECT exchange with a proxy.
const (
	// DefaultProxyHeaderTimeout bounds the CONNECT request and the proxy's
	// whole answer head (status line and headers).
	DefaultProxyHeaderTimeout = 10 * time.Second
	// MaxConnectResponseBytes bounds the proxy's answer head; a longer one
	// is refused (ErrProxyProtocol).
	MaxConnectResponseBytes = 16 << 10
	// maxProxyURLBytes bounds a proxy URL from a flag or the environment.
	maxProxyURLBytes = 2048
)

// Proxy is an explicit HTTP proxy that the agent's connections tunnel
// through with CONNECT (RFC 9110 §9.3.6). TLS stays end to end between
// the agent and AWS (through the relay): the proxy only sees the target
// host and port. Only http:// proxy URLs are accepted (the hop to the
// proxy is plain TCP); Basic credentials come from the URL's userinfo.
// A Proxy must not be changed once used.
type Proxy struct {
	// URL is the proxy, as returned by ParseProxyURL.
	URL *url.URL
	// NoProxy lists the hosts dialled directly (NO_PROXY syntax): comma
	// separated entries, each a host name (matching it and its
	// subdomains; a leading "." or "*." matches only subdomains), an IP,
	// a CIDR, or "*" for every host; a name or IP may end in ":port" to
	// match that port only. Case is ignored.
	NoProxy string
	// HeaderTimeout bounds one CONNECT exchange; 0 means
	// DefaultProxyHeaderTimeout.
	HeaderTimeout time.Duration
}

// NewProxy validates rawURL (ParseProxyURL) and returns the proxy with
// noProxy as its bypass list.
func NewProxy(rawURL, noProxy string) (*Proxy, error) {
	u, err := ParseProxyURL(rawURL)
	if err != nil {
		return nil, err
	}
	if len(noProxy) > 64<<10 {
		return nil, fmt.Errorf("no-proxy list is %d bytes, more than %d", len(noProxy), 64<<10)
	}
	return &Proxy{URL: u, NoProxy: noProxy}, nil
}

// ProxyFromEnv returns the proxy the environment names: HTTPS_PROXY (or
// https_proxy) and NoProxyFromEnv, upper case first as Go's net/http reads
// them. HTTP_PROXY is not read: every connection of the agent is TLS. It
// returns nil and no error when no proxy is set. A nil getenv reads the
// process environment.
func ProxyFromEnv(getenv func(string) (string, bool)) (*Proxy, error) {
	name, raw := firstEnv(getenv, "HTTPS_PROXY", "https_proxy")
	if raw == "" {
		return nil, nil
	}
	p, err := NewProxy(raw, NoProxyFromEnv(getenv))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// NoProxyFromEnv returns NO_PROXY, or no_proxy when that is empty. A nil
// getenv reads the process environment.
func NoProxyFromEnv(getenv func(string) (string, bool)) string {
	_, v := firstEnv(getenv, "NO_PROXY", "no_proxy")
	return v
}

func firstEnv(getenv func(string) (string, bool), names ...string) (string, string) {
	if getenv == nil {
		getenv = os.LookupEnv
	}
	for _, n := range names {
		if v, ok := getenv(n); ok && v != "" {
			return n, v
		}
	}
	return "", ""
}

// ParseProxyURL validates a proxy URL: http://[user:password@]host[:port]
// (port 80 when absent); "host:port" alone means http. Other schemes are
// refused with what to use instead. The error never repeats the URL, which
// may hold a password.
func ParseProxyURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("proxy URL is empty")
	}
	if len(raw) > maxProxyURLBytes {
		return nil, fmt.Errorf("proxy URL is %d bytes, more than %d", len(raw), maxProxyURLBytes)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("proxy URL does not parse: want http://[user:password@]host:port")
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
	case "https":
		return nil, errors.New("proxy URL scheme https (TLS to the proxy) is not supported: use http://host:port; the tunnel through it carries TLS end to end")
	default:
		return nil, fmt.Errorf("proxy URL scheme %q is not supported: want http://host:port (an HTTP proxy that allows CONNECT)", u.Scheme)
	}
	u.Scheme = "http"
	if u.Hostname() == "" {
		return nil, errors.New("proxy URL has no host: want http://host:port")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("proxy URL has a path, query or fragment: want http://host:port")
	}
	u.Path = ""
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("proxy URL port %q: want 1..65535", port)
	}
	u.Host = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil && u.User.Username() == "" {
		return nil, errors.New("proxy URL has credentials without a user name")
	}
	return u, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.URL.Host }

// String is the proxy URL with any password masked.
func (p *Proxy) String() string { return p.URL.Redacted() }

// Applies reports whether a connection to host:port goes through the
// proxy: false for a nil Proxy and for hosts NoProxy lists.
func (p *Proxy) Applies(host, port string) bool {
	return p != nil && !noProxyMatch(p.NoProxy, host, port)
}

// noProxyMatch reports whether list (Proxy.NoProxy) names host:port.
func noProxyMatch(list, host, port string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	ip, ipErr := netip.ParseAddr(strings.Trim(host, "[]"))
	for _, e := range strings.Split(list, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch {
		case e == "":
			continue
		case e == "*":
			return true
		}
		if pfx, err := netip.ParsePrefix(e); err == nil {
			if ipErr == nil && pfx.Contains(ip.Unmap()) {
				return true
			}
			continue
		}
		name := e
		if h, p, err := net.SplitHostPort(e); err == nil {
			if p != port {
				continue
			}
			name = h
		}
		name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
		if a, err := netip.ParseAddr(name); err == nil {
			if ipErr == nil && a.Unmap() == ip.Unmap() {
				return true
			}
			continue
		}
		if sub, ok := strings.CutPrefix(name, "*."); ok {
			name = "." + sub
		}
		switch {
		case name == "" || name == ".":
		case strings.HasPrefix(name, "."):
			if strings.HasSuffix(host, name) {
				return true
			}
		case host == name || strings.HasSuffix(host, "."+name):
			return true
		}
	}
	return false
}

func (p *Proxy) headerTimeout() time.Duration {
	if p.HeaderTimeout > 0 {
		return p.HeaderTimeout
	}
	return DefaultProxyHeaderTimeout
}

// Dial connects to the proxy and opens a tunnel to target (host:port).
// Errors wrap agenterr.ErrProxyUnreachable, ErrProxyAuth, ErrProxyDenied or
// ErrProxyProtocol.
func (p *Proxy) Dial(ctx context.Context, timeout time.Duration, target string) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	nd := net.Dialer{Timeout: timeout}
	c, err := nd.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: the proxy %s did not accept a connection (%s): check the proxy URL (--proxy, HTTPS_PROXY) and that this host may reach it",
			agenterr.ErrProxyUnreachable, p.Addr(), strings.TrimPrefix(fmtDialErr("", err), ": "))
	}
	tc, err := p.Connect(ctx, c, target)
	if err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// Connect sends CONNECT target over c, a fresh connection to the proxy,
// and reads the answer head, bounded by MaxConnectResponseBytes and the
// header timeout (or ctx, if sooner). On a 2xx answer it returns the
// tunnel; otherwise the error says what the proxy answered.
func (p *Proxy) Connect(ctx context.Context, c net.Conn, target string) (net.Conn, error) {
	if _, _, err := net.SplitHostPort(target); err != nil || strings.ContainsAny(target, " \t\r\n") {
		return nil, fmt.Errorf("CONNECT target %q: want host:port", printable(target))
	}
	deadline := time.Now().Add(p.headerTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var req strings.Builder
	fmt.Fprintf(&req, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if u := p.URL.User; u != nil {
		pw, _ := u.Password()
		fmt.Fprintf(&req, "Proxy-Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	req.WriteString("\r\n")
	if _, err := c.Write([]byte(req.String())); err != nil {
		return nil, p.readErr(ctx, target, err)
	}
	head, rest, err := readHead(c, MaxConnectResponseBytes)
	if err != nil {
		return nil, p.readErr(ctx, target, err)
	}
	resp, err := parseConnectResponse(head)
	if err != nil {
		return nil, fmt.Errorf("%w: the proxy %s answered CONNECT %s with something that is not HTTP (%v): is %s an HTTP proxy?",
			agenterr.ErrProxyProtocol, p.Addr(), target, err, p.Addr())
	}
	if err := p.statusErr(resp, target); err != nil {
		return nil, err
	}
	// Stop the cancel hook before clearing the deadline: if it has run
	// (or is running), the context ended and the tunnel is not handed out
	// with a deadline in the past.
	if !stop() {
		return nil, context.Cause(ctx)
	}
	c.SetDeadline(time.Time{})
	return &tunnelConn{Conn: c, pending: rest}, nil
}

// errHeadTooLong is readHead's error for a head over the bound.
var errHeadTooLong = errors.New("answer head too long")

func (p *Proxy) readErr(ctx context.Context, target string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ne net.Error
	switch {
	case errors.Is(err, errHeadTooLong):
		return fmt.Errorf("%w: the proxy %s answered CONNECT %s with more than %d bytes of headers", agenterr.ErrProxyProtocol, p.Addr(), target, MaxConnectResponseBytes)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: the proxy %s did not complete its answer to CONNECT %s within %s", agenterr.ErrProxyProtocol, p.Addr(), target, p.headerTimeout())
	}
	return fmt.Errorf("%w: the proxy %s closed the connection during CONNECT %s (%v)", agenterr.ErrProxyProtocol, p.Addr(), target, err)
}

func (p *Proxy) statusErr(resp connectResponse, target string) error {
	switch {
	case resp.status >= 200 && resp.status <= 299:
		return nil
	case resp.status == 407:
		offered := resp.proxyAuthenticate
		if offered == "" {
			offered = "none named"
		}
		if p.URL.User == nil {
			return fmt.Errorf("%w: the proxy %s requires authentication (%q, schemes offered: %s): put the user and password in the proxy URL (http://user:password@host:port; Basic only)",
				agenterr.ErrProxyAuth, p.Addr(), resp.statusLine, offered)
		}
		if !strings.Contains(strings.ToLower(resp.proxyAuthenticate), "basic") && resp.proxyAuthenticate != "" {
			return fmt.Errorf("%w: the proxy %s refused Basic authentication for user %q (%q) and offers only %s, which this agent does not speak: ask the site for Basic credentials or an exemption",
				agenterr.ErrProxyAuth, p.Addr(), p.URL.User.Username(), resp.statusLine, offered)
		}
		return fmt.Errorf("%w: the proxy %s refused the credentials of user %q (%q): check the user and password in the proxy URL",
			agenterr.ErrProxyAuth, p.Addr(), p.URL.User.Username(), resp.statusLine)
	}
	if resp.status == 502 || resp.status == 503 || resp.status == 504 {
		return fmt.Errorf("%w: the proxy %s could not open CONNECT %s (%q): check the relay's name (--relay) and that the proxy can resolve and reach it",
			agenterr.ErrProxyDenied, p.Addr(), target, resp.statusLine)
	}
	return fmt.Errorf("%w: the proxy %s refused CONNECT %s (%q): ask the site to allow CONNECT to it (the relay's name and static IPs, port %s; agentgate-agent doctor lists them)",
		agenterr.ErrProxyDenied, p.Addr(), target, resp.statusLine, portOf(target))
}

func portOf(hostport string) string {
	if _, port, err := net.SplitHostPort(hostport); err == nil {
		return port
	}
	return "443"
}

// readHead reads from c until the end of an HTTP head (an empty line),
// at most max bytes. rest is what followed the head in the last read: the
// first bytes of the tunnel.
func readHead(c net.Conn, max int) (head, rest []byte, err error) {
	buf := make([]byte, max)
	n := 0
	for {
		if n == len(buf) {
			return nil, nil, errHeadTooLong
		}
		m, rerr := c.Read(buf[n:])
		from := maxInt(0, n-3)
		n += m
		if i := headEnd(buf[from:n]); i >= 0 {
			return buf[:from+i], buf[from+i : n], nil
		}
		if rerr != nil {
			return nil, nil, rerr
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// headEnd returns the index just past the first blank line ("\r\n\r\n" or
// "\n\n") in b, or -1.
func headEnd(b []byte) int {
	crlf, lf := bytes.Index(b, []byte("\r\n\r\n")), bytes.Index(b, []byte("\n\n"))
	switch {
	case crlf >= 0 && (lf < 0 || crlf < lf):
		return crlf + 4
	case lf >= 0:
		return lf + 2
	}
	return -1
}

// connectResponse is what the agent needs of a proxy's answer to CONNECT.
type connectResponse struct {
	status            int
	statusLine        string // printable, at most maxShownBytes
	proxyAuthenticate string // every Proxy-Authenticate value, joined, printable
}

// maxShownBytes bounds proxy-supplied text repeated in an error.
const maxShownBytes = 200

// parseConnectResponse parses an HTTP/1.x answer head: the status line and
// header fields, ending with the blank line.
func parseConnectResponse(head []byte) (connectResponse, error) {
	var r connectResponse
	lines := strings.Split(strings.TrimRight(string(head), "\r\n"), "\n")
	status := strings.TrimSuffix(lines[0], "\r")
	r.statusLine = printable(status)
	proto, rest, _ := strings.Cut(status, " ")
	if proto != "HTTP/1.0" && proto != "HTTP/1.1" {
		return r, fmt.Errorf("status line %q", r.statusLine)
	}
	code, _, _ := strings.Cut(rest, " ") // the reason phrase is only shown
	n, err := strconv.Atoi(code)
	if len(code) != 3 || err != nil || n < 100 {
		return r, fmt.Errorf("status line %q", r.statusLine)
	}
	r.status = n
	var auth []string
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		name, value, ok := strings.Cut(l, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return r, fmt.Errorf("header line %q", printable(l))
		}
		if strings.EqualFold(name, "Proxy-Authenticate") {
			auth = append(auth, strings.TrimSpace(value))
		}
	}
	r.proxyAuthenticate = printable(strings.Join(auth, ", "))
	return r, nil
}

// printable keeps printable ASCII of s (others become '?'), at most
// maxShownBytes: proxy-supplied text ends up in logs and terminals.
func printable(s string) string {
	cut := len(s) > maxShownBytes
	if cut {
		s = s[:maxShownBytes]
	}
	out := []byte(s)
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '?'
		}
	}
	if cut {
		return string(out) + "..."
	}
	return string(out)
}

// tunnelConn is the connection to the proxy after a successful CONNECT;
// pending holds tunnel bytes read with the answer head.
type tunnelConn struct {
	net.Conn
	pending []byte
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
