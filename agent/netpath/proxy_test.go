package netpath

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/connectproxy"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

func TestParseProxyURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://u:secret@proxy.example:3128": "http://u:secret@proxy.example:3128",
		"proxy.example:3128":                 "http://proxy.example:3128",
		"HTTP://proxy.example":               "http://proxy.example:80",
		" http://10.0.0.1:8080/ ":            "http://10.0.0.1:8080",
		"http://[2001:db8::1]:3128":          "http://[2001:db8::1]:3128",
	} {
		u, err := ParseProxyURL(in)
		if err != nil || u.String() != want {
			t.Errorf("%q: %v %v, want %s", in, u, err, want)
		}
	}
	for in, want := range map[string]string{
		"":                                    "empty",
		"https://proxy.example:443":           "scheme https (TLS to the proxy) is not supported",
		"socks5://proxy.example:1080":         `scheme "socks5" is not supported`,
		"http://":                             "no host",
		"http://proxy.example:0":              "port",
		"http://proxy.example:99999":          "port",
		"http://proxy.example:3128/path":      "path",
		"http://proxy.example:3128/?q=1":      "path, query",
		"http://:secret@proxy.example:3128":   "without a user name",
		"http://u:secret@prox y:3128":         "does not parse",
		"http://" + strings.Repeat("a", 3000): "bytes, more than",
	} {
		_, err := ParseProxyURL(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: the error repeats the password: %v", in, err)
		}
	}
}

func TestNoProxyMatch(t *testing.T) {
	for _, c := range []struct {
		list, host, port string
		want             bool
	}{
		{"", "agents.example.com", "443", false},
		{"*", "agents.example.com", "443", true},
		{"example.com", "agents.example.com", "443", true},
		{"example.com", "example.com", "443", true},
		{"Example.COM.", "agents.example.com.", "443", true},
		{"ample.com", "agents.example.com", "443", false},
		{".example.com", "example.com", "443", false},
		{".example.com", "agents.example.com", "443", true},
		{"*.example.com", "agents.example.com", "443", true},
		{"example.com:8443", "agents.example.com", "443", false},
		{"example.com:443", "agents.example.com", "443", true},
		{" other.test , example.com ", "agents.example.com", "443", true},
		{"10.0.0.0/8", "10.1.2.3", "443", true},
		{"10.0.0.0/8", "11.1.2.3", "443", false},
		{"10.0.0.0/8", "ten.example", "443", false},
		{"192.0.2.7", "192.0.2.7", "443", true},
		{"192.0.2.7:443", "192.0.2.7", "443", true},
		{"[2001:db8::1]:443", "2001:db8::1", "443", true},
		{".", "agents.example.com", "443", false},
		{",,,", "agents.example.com", "443", false},
	} {
		if got := noProxyMatch(c.list, c.host, c.port); got != c.want {
			t.Errorf("NO_PROXY=%q host %s:%s: %v, want %v", c.list, c.host, c.port, got, c.want)
		}
	}
}

func TestProxyFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	if p, err := ProxyFromEnv(env("HTTP_PROXY", "http://p:1")); p != nil || err != nil {
		t.Fatalf("HTTP_PROXY alone: %v %v", p, err)
	}
	p, err := ProxyFromEnv(env("HTTPS_PROXY", "http://upper:1", "https_proxy", "http://lower:1", "no_proxy", "lower.test"))
	if err != nil || p.Addr() != "upper:1" || p.NoProxy != "lower.test" {
		t.Fatalf("%v %v", p, err)
	}
	p, err = ProxyFromEnv(env("HTTPS_PROXY", "", "https_proxy", "lower:3128", "NO_PROXY", "a", "no_proxy", "b"))
	if err != nil || p.Addr() != "lower:3128" || p.NoProxy != "a" {
		t.Fatalf("%v %v", p, err)
	}
	if _, err := ProxyFromEnv(env("https_proxy", "socks5://u:secret@h:1")); err == nil || !strings.HasPrefix(err.Error(), "https_proxy: ") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad scheme: %v", err)
	}
}

// tlsEcho serves TLS for host with a fresh CA and echoes one line.
func tlsEcho(t *testing.T, host string) (addr string, ca *testpki.CA) {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 5)
				if _, err := io.ReadFull(c, b); err == nil {
					c.Write(b)
				}
			}()
		}
	}()
	return ln.Addr().String(), ca
}

func startProxy(t *testing.T, opts connectproxy.Options) *connectproxy.Proxy {
	t.Helper()
	p, err := connectproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// relayDialer sends requests for any host to the relay at addr (an IP
// literal) through the proxy at proxyURL.
func relayDialer(t *testing.T, addr, proxyURL, noProxy string) *Dialer {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, err := NewProxy(proxyURL, noProxy)
	if err != nil {
		t.Fatal(err)
	}
	p.HeaderTimeout = 5 * time.Second
	return &Dialer{RelayName: host, RelayPort: port, Proxy: p}
}

// roundTrip dials through d, handshakes TLS for host and echoes.
func roundTrip(d *Dialer, host string, ca *testpki.CA) error {
	ctx := context.Background()
	c, err := d.DialContext(ctx, "tcp", host+":443")
	if err != nil {
		return err
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{ServerName: host, RootCAs: ca.Pool})
	if err := tc.HandshakeContext(ctx); err != nil {
		return d.ClassifyTLS(host, err, false)
	}
	if _, err := tc.Write([]byte("hello")); err != nil {
		return err
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(tc, b); err != nil || string(b) != "hello" {
		return errors.New("no echo: " + string(b))
	}
	return nil
}

const awsHost = "abc-ats.iot.eu-west-1.amazonaws.com"

// TestTunnelsThroughTheProxy: the connection reaches the relay through a
// CONNECT to the relay's address, and TLS is end to end.
func TestTunnelsThroughTheProxy(t *testing.T) {
	relay, ca := tlsEcho(t, awsHost)
	px := startProxy(t, connectproxy.Options{User: "agent", Password: "s3cret"})
	d := relayDialer(t, relay, px.URL("agent:s3cret"), "")
	var dialed []string
	d.OnDial = func(addr string, err error) { dialed = append(dialed, addr) }
	addrs, err := d.Resolve(context.Background(), awsHost, "443")
	if err != nil || len(addrs) != 1 || addrs[0] != relay {
		t.Fatalf("resolve through the proxy: %v %v", addrs, err)
	}
	if err := roundTrip(d, awsHost, ca); err != nil {
		t.Fatal(err)
	}
	reqs := px.Requests()
	if len(reqs) != 1 || reqs[0].Target != relay || reqs[0].Status != 200 {
		t.Fatalf("proxy saw %+v", reqs)
	}
	if len(dialed) != 1 || dialed[0] != relay+" via proxy "+px.Addr {
		t.Fatalf("OnDial saw %v", dialed)
	}
}

func TestProxyErrors(t *testing.T) {
	relay, ca := tlsEcho(t, awsHost)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, c := range []struct {
		name     string
		opts     connectproxy.Options
		userinfo string
		want     error
		text     string
	}{
		{"missing credentials", connectproxy.Options{User: "agent", Password: "s3cret"}, "", agenterr.ErrProxyAuth,
			`requires authentication ("HTTP/1.1 407 Proxy Authentication Required", schemes offered: Basic realm="lab")`},
		{"wrong credentials", connectproxy.Options{User: "agent", Password: "s3cret"}, "agent:wrong", agenterr.ErrProxyAuth,
			`refused the credentials of user "agent"`},
		{"denied", connectproxy.Options{Mode: connectproxy.Deny}, "", agenterr.ErrProxyDenied,
			`refused CONNECT ` + relay + ` ("HTTP/1.1 403 Forbidden")`},
		{"intercepting", connectproxy.Options{Mode: connectproxy.Intercept}, "", agenterr.ErrProxyIntercepts,
			"intercepts TLS: " + awsHost + " presented a certificate issued by"},
		{"oversize head", connectproxy.Options{Mode: connectproxy.Oversize}, "", agenterr.ErrProxyProtocol,
			"more than 16384 bytes of headers"},
		{"not HTTP", connectproxy.Options{Mode: connectproxy.Garbage}, "", agenterr.ErrProxyProtocol,
			`something that is not HTTP (status line "SSH-2.0-OpenSSH_9.6")`},
	} {
		t.Run(c.name, func(t *testing.T) {
			px := startProxy(t, c.opts)
			err := roundTrip(relayDialer(t, relay, px.URL(c.userinfo), ""), awsHost, ca)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), px.Addr) {
				t.Fatalf("got %v\nwant %v containing %q and the proxy's address", err, c.want, c.text)
			}
			if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error repeats the password: %v", err)
			}
		})
	}

	t.Run("never-ending head", func(t *testing.T) {
		px := startProxy(t, connectproxy.Options{Mode: connectproxy.Endless})
		d := relayDialer(t, relay, px.URL(""), "")
		d.Proxy.HeaderTimeout = 100 * time.Millisecond
		err := roundTrip(d, awsHost, ca)
		if !errors.Is(err, agenterr.ErrProxyProtocol) || !strings.Contains(err.Error(), "did not complete its answer to CONNECT "+relay+" within 100ms") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		err := roundTrip(relayDialer(t, relay, "http://"+closedAddr, ""), awsHost, ca)
		if !errors.Is(err, agenterr.ErrProxyUnreachable) || !strings.Contains(err.Error(), "the proxy "+closedAddr+" did not accept a connection (connect: connection refused)") {
			t.Fatalf("%v", err)
		}
	})
}

// TestNoProxyBypasses: a relay the bypass list names is dialled directly;
// the proxy (denying everything) sees nothing.
func TestNoProxyBypasses(t *testing.T) {
	relay, ca := tlsEcho(t, awsHost)
	px := startProxy(t, connectproxy.Options{Mode: connectproxy.Deny})
	d := relayDialer(t, relay, px.URL(""), "127.0.0.0/8")
	if err := roundTrip(d, awsHost, ca); err != nil {
		t.Fatal(err)
	}
	if got := px.Requests(); len(got) != 0 {
		t.Fatalf("the proxy saw %v", got)
	}
	if _, ok := d.Proxied(awsHost, "443"); ok {
		t.Fatal("Proxied says yes")
	}
}

// TestTunnelKeepsBytesAfterTheHead: bytes the proxy sends with the head
// belong to the tunnel.
func TestTunnelKeepsBytesAfterTheHead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		b := make([]byte, 512)
		n, _ := server.Read(b)
		if !strings.HasPrefix(string(b[:n]), "CONNECT relay.test:443 HTTP/1.1\r\nHost: relay.test:443\r\n") {
			return
		}
		server.Write([]byte("HTTP/1.0 200 OK\nVia: lab\n\nEXTRA"))
	}()
	p, err := NewProxy("http://proxy.test:3128", "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Connect(context.Background(), client, "relay.test:443")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if string(b) != "EXTRA" {
		t.Fatalf("tunnel read %q", b)
	}
}

// TestConnectRefusesInjectedTargets: a target cannot smuggle header lines
// to the proxy.
func TestConnectRefusesInjectedTargets(t *testing.T) {
	p, _ := NewProxy("http://proxy.test:3128", "")
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	for _, target := range []string{"relay.test:443\r\nX-Evil: 1", "relay.test", "relay test:443"} {
		if _, err := p.Connect(context.Background(), client, target); err == nil || !strings.Contains(err.Error(), "want host:port") {
			t.Errorf("%q: %v", target, err)
		}
	}
}

func TestParseConnectResponse(t *testing.T) {
	r, err := parseConnectResponse([]byte("HTTP/1.1 407 Auth\r\nProxy-Authenticate: Negotiate\r\nproxy-authenticate: NTLM\r\n\r\n"))
	if err != nil || r.status != 407 || r.statusLine != "HTTP/1.1 407 Auth" || r.proxyAuthenticate != "Negotiate, NTLM" {
		t.Fatalf("%+v %v", r, err)
	}
	for _, bad := range []string{"", "\r\n\r\n", "HTTP/2 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 abc\r\n\r\n",
		"HTTP/1.1 099 x\r\n\r\n", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"} {
		if _, err := parseConnectResponse([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	r, _ = parseConnectResponse([]byte("HTTP/1.1 403 \x1b[31mred" + strings.Repeat("x", 500) + "\r\n\r\n"))
	if strings.ContainsRune(r.statusLine, 0x1b) || len(r.statusLine) > maxShownBytes+3 {
		t.Fatalf("status line shown as %q", r.statusLine)
	}
}

// TestProxyAuthSchemes: a 407 offering only schemes other than Basic says
// so when credentials were sent; a gateway error says the proxy could not
// reach the target; any 2xx opens the tunnel.
func TestProxyAuthSchemes(t *testing.T) {
	p, _ := NewProxy("http://agent:pw@proxy.test:3128", "")
	err := p.statusErr(connectResponse{status: 407, statusLine: "HTTP/1.1 407 x", proxyAuthenticate: "Negotiate, NTLM"}, "relay.test:443")
	if !errors.Is(err, agenterr.ErrProxyAuth) || !strings.Contains(err.Error(), "offers only Negotiate, NTLM") {
		t.Fatalf("%v", err)
	}
	err = p.statusErr(connectResponse{status: 504, statusLine: "HTTP/1.1 504 Gateway Timeout"}, "relay.test:443")
	if !errors.Is(err, agenterr.ErrProxyDenied) || !strings.Contains(err.Error(), `could not open CONNECT relay.test:443 ("HTTP/1.1 504 Gateway Timeout")`) {
		t.Fatalf("%v", err)
	}
	for _, code := range []int{200, 204, 299} {
		if err := p.statusErr(connectResponse{status: code}, "relay.test:443"); err != nil {
			t.Fatalf("%d: %v", code, err)
		}
	}
}

func FuzzParseConnectResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n"))
	f.Add([]byte("SSH-2.0-OpenSSH_9.6\r\n\r\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		r, err := parseConnectResponse(head)
		if len(r.statusLine) > maxShownBytes+3 || len(r.proxyAuthenticate) > maxShownBytes+3 {
			t.Fatalf("unbounded text: %d %d", len(r.statusLine), len(r.proxyAuthenticate))
		}
		for _, s := range []string{r.statusLine, r.proxyAuthenticate} {
			for _, c := range []byte(s) {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("unprintable byte %#x in %q", c, s)
				}
			}
		}
		if err == nil && (r.status < 100 || r.status > 999) {
			t.Fatalf("status %d accepted", r.status)
		}
	})
}

func FuzzParseProxyURL(f *testing.F) {
	f.Add("http://user:secret@proxy.example:3128")
	f.Add("proxy.example:3128")
	f.Add("socks5://h:1")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseProxyURL(raw)
		if err != nil {
			if pw := "secret"; strings.Contains(raw, pw) && strings.Contains(err.Error(), pw) {
				t.Fatalf("error repeats the password: %v", err)
			}
			return
		}
		if u.Scheme != "http" || u.Port() == "" || u.Hostname() == "" || u.Path != "" {
			t.Fatalf("%q accepted as %v", raw, u)
		}
	})
}

func FuzzNoProxyMatch(f *testing.F) {
	f.Add(".example.com,10.0.0.0/8,[::1]:443,*", "agents.example.com", "443")
	f.Fuzz(func(t *testing.T, list, host, port string) {
		if noProxyMatch(list, host, port) && list == "" {
			t.Fatal("an empty list matched")
		}
		if strings.TrimSpace(list) == "*" && !noProxyMatch(list, host, port) {
			t.Fatal("* did not match")
		}
	})
}
