//go:build linux

package relay_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/proxyimage/admin"
	"github.com/agentgate/agentgate/proxyimage/proxyproto"
	"github.com/agentgate/agentgate/proxyimage/relay"
)

// serveAdmin serves the admin mux on the relay's AdminListener, behind a
// handler that also answers /peer with the RemoteAddr net/http saw.
func (h *harness) serveAdmin() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", admin.Handler(h.reg, h.srv.Ready))
	mux.HandleFunc("/peer", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RemoteAddr) })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(h.srv.AdminListener(ln))
	h.t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// adminGet sends header (may be nil), then GET path; it returns the status
// and body, or 0 when the relay closed the connection without answering.
func adminGet(t *testing.T, addr string, header []byte, path string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(append(append([]byte{}, header...), "GET "+path+" HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n"...))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminListenerBehindTheNLB: with proxy protocol enabled on the target
// group the NLB's own health checks of the admin port carry a PROXY v2
// header (LOCAL, no client address); the admin port applies the agent
// port's rules to it.
func TestAdminListenerBehindTheNLB(t *testing.T) {
	local := proxyproto.AppendLocal(nil)
	proxied := proxyproto.AppendV2(nil, netip.MustParseAddrPort("198.51.100.4:40000"), netip.MustParseAddrPort("10.0.1.5:9901"))

	t.Run("LOCAL and PROXY headers from a trusted peer", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8")
		addr := h.serveAdmin()
		if code, body := adminGet(t, addr, local, "/readyz"); code != 503 {
			t.Fatalf("LOCAL + /readyz before any probe: %d %q, want 503", code, body)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		h.srv.StartProbes(ctx)
		h.waitMetric(1, "agentgate_relay_ready")
		if code, body := adminGet(t, addr, local, "/readyz"); code != 200 {
			t.Fatalf("LOCAL + /readyz when ready: %d %q", code, body)
		}
		if code, body := adminGet(t, addr, proxied, "/readyz"); code != 200 {
			t.Fatalf("PROXY + /readyz when ready: %d %q", code, body)
		}
		if code, body := adminGet(t, addr, proxied, "/peer"); code != 200 || body != "198.51.100.4:40000" {
			t.Fatalf("PROXY header's source not the request's RemoteAddr: %d %q", code, body)
		}
		if code, body := adminGet(t, addr, local, "/peer"); code != 200 || !strings.HasPrefix(body, "127.0.0.1:") {
			t.Fatalf("LOCAL header: RemoteAddr %d %q, want the peer", code, body)
		}
		h.srv.SetDraining()
		if code, body := adminGet(t, addr, local, "/readyz"); code != 503 {
			t.Fatalf("LOCAL + /readyz while draining: %d %q", code, body)
		}
		if code, _ := adminGet(t, addr, local, "/healthz"); code != 200 {
			t.Fatalf("LOCAL + /healthz while draining: %d, liveness stays 200", code)
		}
	})
	t.Run("required and missing", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8")
		addr := h.serveAdmin()
		if code, _ := adminGet(t, addr, nil, "/healthz"); code != 0 {
			t.Fatalf("no header under required: answered %d", code)
		}
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonMissingProxyHeader))
		if l := h.logLines(relayspec.RejectLogMessage); len(l) != 1 || !strings.Contains(l[0], `"`+relayspec.LogKeyListener+`":"admin"`) {
			t.Fatalf("reject log: %q", l)
		}
	})
	t.Run("header from an untrusted peer", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "optional", "--trusted-cidr", "10.0.0.0/8")
		addr := h.serveAdmin()
		for _, hdr := range [][]byte{local, proxied} {
			if code, _ := adminGet(t, addr, hdr, "/healthz"); code != 0 {
				t.Fatalf("header from an untrusted peer: answered %d", code)
			}
		}
		h.waitMetric(2, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonUntrustedProxyHeader))
		if code, _ := adminGet(t, addr, nil, "/healthz"); code != 200 {
			t.Fatalf("optional, no header: %d", code)
		}
	})
	t.Run("corrupt header from a trusted peer", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "optional", "--trusted-cidr", "127.0.0.0/8")
		addr := h.serveAdmin()
		bad := append([]byte{}, local...)
		bad[12] = 0x30 // version 3
		if code, _ := adminGet(t, addr, bad, "/healthz"); code != 0 {
			t.Fatalf("corrupt header: answered %d", code)
		}
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonBadProxyHeader))
	})
	t.Run("a silent peer holds up nobody and is cut at the peek deadline", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8", "--peek-timeout", "1s")
		addr := h.serveAdmin()
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
		silent.Write(local[:5]) // a header begun, never finished
		if code, _ := adminGet(t, addr, local, "/healthz"); code != 200 {
			t.Fatalf("health check behind a silent peer: %d", code)
		}
		expectClosed(t, silent)
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonPeekTimeout))
	})
	t.Run("peers still sending their header are capped", func(t *testing.T) {
		// Each connection's header is read in its own goroutine, up to
		// --peek-timeout; without a cap any number of silent peers would
		// each hold one.
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8", "--peek-timeout", "1m")
		addr := h.serveAdmin()
		var silent []net.Conn
		defer func() {
			for _, c := range silent {
				c.Close()
			}
		}()
		for range relay.MaxAdminPreambles {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			silent = append(silent, c)
			c.Write(local[:5]) // a header begun, never finished
		}
		// Accepted in order, so every silent peer holds its slot by now.
		if code, _ := adminGet(t, addr, local, "/healthz"); code != 0 {
			t.Fatalf("connection over the cap answered %d", code)
		}
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "listener", "admin", "reason", string(relay.ReasonOverCap))
		if got := h.metric("agentgate_relay_rejected_connections_total", "listener", "agent", "reason", string(relay.ReasonOverCap)); got != 0 {
			t.Errorf("admin over-cap counted as the agent port's: %v", got)
		}
		for _, c := range silent {
			c.Close()
		}
		// The slots free as the relay sees the closes; a health check gets
		// through again.
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := adminGet(t, addr, local, "/healthz")
			if code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health check after the silent peers left: %d", code)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("refusals are counted per listener", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8")
		addr := h.serveAdmin()
		const name = "agentgate_relay_rejected_connections_total"
		if code, _ := adminGet(t, addr, nil, "/healthz"); code != 0 {
			t.Fatalf("no header under required: answered %d", code)
		}
		h.waitMetric(1, name, "listener", "admin", "reason", string(relay.ReasonMissingProxyHeader))
		c := h.dial()
		c.Write([]byte("GET / HTTP/1.1\r\n\r\n")) // no header on the agent port
		expectClosed(t, c)
		h.waitMetric(1, name, "listener", "agent", "reason", string(relay.ReasonMissingProxyHeader))
		if got := h.metric(name, "reason", string(relay.ReasonMissingProxyHeader)); got != 2 {
			t.Errorf("%s{reason=%q} summed over listeners = %v, want 2", name, relay.ReasonMissingProxyHeader, got)
		}
		// Every series a dashboard may select exists from the start, at 0.
		for _, r := range relay.AdminRejectReasons {
			if !h.hasSeries(name, "listener", "admin", "reason", string(r)) {
				t.Errorf("no %s{listener=admin,reason=%s} series", name, r)
			}
		}
		for _, r := range relay.RejectReasons {
			if !h.hasSeries(name, "listener", "agent", "reason", string(r)) {
				t.Errorf("no %s{listener=agent,reason=%s} series", name, r)
			}
		}
	})
	t.Run("off leaves the listener alone", func(t *testing.T) {
		h := newHarness(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if got := h.srv.AdminListener(ln); got != ln {
			t.Fatalf("--proxy-protocol off wrapped the listener: %T", got)
		}
	})
}
