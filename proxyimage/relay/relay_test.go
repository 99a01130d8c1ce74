//go:build linux

package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
	"github.com/agentgate/agentgate/proxyimage/proxyproto"
	"github.com/agentgate/agentgate/proxyimage/relay"
)

func TestALPNPassesThroughUntouched(t *testing.T) {
	h := newHarness(t)
	cfg := h.tlsConfig(nameA)
	cfg.NextProtos = []string{"x-amzn-mqtt-ca"} // MQTT with a client certificate on 443
	tc := tls.Client(h.dial(), cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "x-amzn-mqtt-ca" {
		t.Fatalf("negotiated %q through the relay", p)
	}
	tc.Close()
	h.waitMetric(1, "agentgate_relay_connections_closed_total")
	if l := h.waitLogLines("connection", 1); len(l) != 1 || !strings.Contains(l[0], `"alpn":"x-amzn-mqtt-ca"`) {
		t.Fatalf("log: %q", l)
	}
}

func TestRoutesRealHandshakesByExactName(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{nameA, nameB, "A.IOT.TEST"} {
		tc := h.dialTLS(name) // fails unless the upstream for that name answered
		fmt.Fprintf(tc, "ping %s\n", name)
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err != nil || line != "ping "+name+"\n" {
			t.Fatalf("echo through relay: %q %v", line, err)
		}
		tc.Close()
	}
	h.waitMetric(2, "agentgate_relay_connections_total", "route", nameA)
	h.waitMetric(1, "agentgate_relay_connections_total", "route", nameB)
	h.waitMetric(3, "agentgate_relay_connections_closed_total", "copy", "buffered") // the default path
	h.waitMetric(0, "agentgate_relay_connections_active")
	if h.canary.accepts.Load() != 0 || h.up[nameRaw].accepts.Load() != 0 {
		t.Fatal("relay dialled an upstream that was not asked for")
	}
	if n := h.metric("agentgate_relay_transferred_bytes_total", "route", nameA, "direction", "in"); n < 500 {
		t.Errorf("bytes in for %s = %v; the hellos alone are bigger", nameA, n)
	}
	if h.metric("agentgate_relay_clienthello_peek_seconds") != 3 {
		t.Errorf("peek histogram count = %v, want 3", h.metric("agentgate_relay_clienthello_peek_seconds"))
	}
}

// slowConn splits every write into small pieces with pauses, so a hello
// arrives in many TCP segments.
type slowConn struct {
	net.Conn
	firstWrite int
}

func (c *slowConn) Write(b []byte) (int, error) {
	if c.firstWrite == 0 {
		c.firstWrite = len(b)
	}
	for i := 0; i < len(b); i += 100 {
		if _, err := c.Conn.Write(b[i:min(i+100, len(b))]); err != nil {
			return i, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return len(b), nil
}

func TestPostQuantumHelloInManySegments(t *testing.T) {
	h := newHarness(t)
	sc := &slowConn{Conn: h.dial()}
	cfg := h.tlsConfig(nameA)
	cfg.CurvePreferences = []tls.CurveID{tls.X25519MLKEM768}
	tc := tls.Client(sc, cfg)
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil || line != "upstream "+nameA+"\n" {
		t.Fatalf("%q %v", line, err)
	}
	if sc.firstWrite < 1400 {
		t.Fatalf("hello was %d bytes; want a post-quantum one (>1400)", sc.firstWrite)
	}
	if cs := tc.ConnectionState(); cs.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("negotiated %v, not X25519MLKEM768", cs.CurveID)
	}
}

func TestMultiRecordHelloForwardedByteExact(t *testing.T) {
	h := newHarness(t)
	real, err := hellogen.Capture(&tls.Config{ServerName: nameRaw, CurvePreferences: []tls.CurveID{tls.X25519MLKEM768}})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := hellogen.Handshake(real)
	multi := hellogen.Records(msg, 2, 600, 1300) // 4 records, the first cut inside the handshake header
	c := h.dial()
	want := append(append([]byte{}, multi...), "APPLICATION-DATA"...)
	for _, piece := range [][]byte{want[:3], want[3:650], want[650:]} {
		c.Write(piece)
		time.Sleep(20 * time.Millisecond)
	}
	c.CloseWrite()
	select {
	case got := <-h.raw:
		if !bytes.Equal(got, want) {
			t.Fatalf("upstream got %d bytes, want the %d sent, unchanged", len(got), len(want))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstream got nothing")
	}
}

func TestRefusedCountedAndNeverDialled(t *testing.T) {
	h := newHarness(t)
	canary := h.canary.Addr().String()
	record := func(exts ...hellogen.Extension) []byte { return hellogen.Record(hellogen.Build(exts...)) }
	cases := []struct {
		name   string
		send   []byte
		client *tls.Config // a real crypto/tls handshake instead of send
		reason relay.Reason
	}{
		{name: "unknown name (real hello)", client: &tls.Config{ServerName: "unknown.iot.test"}, reason: relay.ReasonUnknownSNI},
		{name: "no SNI (real hello)", client: &tls.Config{InsecureSkipVerify: true}, reason: relay.ReasonNoSNI},
		{name: "no extensions", send: record(), reason: relay.ReasonNoSNI},
		{name: "IPv4 literal", send: record(hellogen.SNI("127.0.0.1")), reason: relay.ReasonIPSNI},
		{name: "IPv6 literal", send: record(hellogen.SNI("::1")), reason: relay.ReasonIPSNI},
		{name: "canary address as name", send: record(hellogen.SNI(canary)), reason: relay.ReasonInvalidSNI}, // ':' is not a name byte
		{name: "localhost", send: record(hellogen.SNI("localhost")), reason: relay.ReasonUnknownSNI},
		{name: "ECH with an allowed outer name", send: record(hellogen.SNI(nameRaw), hellogen.ECH()), reason: relay.ReasonECH},
		{name: "HTTP", send: []byte("GET http://" + canary + "/ HTTP/1.1\r\nHost: " + canary + "\r\n\r\n"), reason: relay.ReasonNotTLS},
		{name: "CONNECT while disabled", send: []byte("CONNECT " + canary + " HTTP/1.1\r\n\r\n"), reason: relay.ReasonNotTLS},
		{name: "over-long hello", send: record(hellogen.SNI(nameRaw), hellogen.Padding(17000)), reason: relay.ReasonHelloTooLong},
		{name: "malformed hello", send: hellogen.Records([]byte{1, 0, 0, 5, 3, 3, 0, 0, 0}), reason: relay.ReasonMalformedHello},
	}
	want := map[string]float64{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := h.dial()
			if tc.client != nil {
				tlc := tls.Client(c, tc.client)
				tlc.SetDeadline(time.Now().Add(10 * time.Second))
				if err := tlc.Handshake(); err == nil {
					t.Fatal("handshake succeeded through the relay")
				}
			} else {
				c.Write(tc.send)
				expectClosed(t, c)
			}
			want[string(tc.reason)]++
			h.waitMetric(want[string(tc.reason)], "agentgate_relay_rejected_connections_total", "reason", string(tc.reason))
		})
	}
	for _, l := range []*listener{h.canary, h.up[nameA], h.up[nameB], h.up[nameRaw]} {
		if n := l.accepts.Load(); n != 0 {
			t.Errorf("listener %s saw %d connections from refused clients", l.Addr(), n)
		}
	}
	if n := h.metric("agentgate_relay_connections_total"); n != 0 {
		t.Errorf("connections_total = %v after only refusals", n)
	}
	// Each refusal is one log line the fleet's metric filter matches
	// (relayspec's message and keys), carrying its reason.
	logged := map[string]float64{}
	for _, l := range h.logLines(relayspec.RejectLogMessage) {
		var line map[string]any
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatalf("reject line is not JSON: %q", l)
		}
		if line[slog.MessageKey] != relayspec.RejectLogMessage {
			t.Errorf("reject line message %v", line[slog.MessageKey])
		}
		reason, _ := line[relayspec.LogKeyReason].(string)
		logged[reason]++
	}
	if !maps.Equal(logged, want) {
		t.Errorf("reject lines by reason %v, want %v", logged, want)
	}
}

func TestHTTPConnect(t *testing.T) {
	h := newHarness(t, "--http-connect")
	canary := h.canary.Addr().String()
	deny := []string{
		"CONNECT " + canary + " HTTP/1.1\r\nHost: " + canary + "\r\n\r\n",
		"CONNECT " + nameA + ":8443 HTTP/1.1\r\n\r\n", // allowed name, other port
		"CONNECT unknown.iot.test:443 HTTP/1.1\r\n\r\n",
		"CONNECT " + relayspec.DefaultHealthSNI + ":443 HTTP/1.1\r\n\r\n",
		"COPY /" + nameA + ":443 HTTP/1.1\r\n\r\n",
		"CONNECT " + strings.Repeat("a", 9000) + ":443 HTTP/1.1\r\n\r\n",
	}
	for _, req := range deny {
		c := h.dial()
		c.Write([]byte(req))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode < 400 {
			t.Fatalf("%.60q: want a 4xx, got %v %v", req, resp, err)
		}
	}
	h.waitMetric(float64(len(deny)), "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonConnectDenied))

	c := h.dial()
	fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n", strings.ToUpper(nameA), nameA)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || br.Buffered() != 0 {
		t.Fatalf("CONNECT to a routed name: %v %v", resp, err)
	}
	tc := tls.Client(c, h.tlsConfig(nameA))
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "upstream "+nameA+"\n" {
		t.Fatalf("TLS through the tunnel: %q %v", line, err)
	}
	if h.canary.accepts.Load() != 0 {
		t.Fatal("CONNECT reached the canary")
	}
}

func TestSlowlorisCutAtPeekDeadline(t *testing.T) {
	h := newHarness(t, "--peek-timeout", "1500ms")
	hello := hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))
	c := h.dial()
	sent := 0
	for ; sent < len(hello); sent++ { // 1 byte per second, as a slowloris does
		if _, err := c.Write(hello[sent : sent+1]); err != nil {
			break
		}
		h.t.Logf("sent %d", sent+1)
		if h.rejected(relay.ReasonPeekTimeout) == 1 {
			break
		}
		time.Sleep(time.Second)
	}
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonPeekTimeout))
	if sent >= len(hello) {
		t.Fatalf("relay waited for the whole %d-byte hello", len(hello))
	}
	expectClosed(t, c)
	if h.up[nameRaw].accepts.Load() != 0 {
		t.Fatal("a slowloris reached the upstream")
	}
}

func TestConnectionCap(t *testing.T) {
	h := newHarness(t, "--max-conns", "2", "--max-conns-per-source", "0") // every dial comes from one address
	first := h.dialTLS(nameA)
	h.dialTLS(nameB)
	over := h.dial()
	expectClosed(t, over)
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonOverCap))
	first.Close()
	h.waitMetric(0, "agentgate_relay_connections_active", "route", nameA)
	h.dialTLS(nameA) // room again
	if got := h.rejected(relay.ReasonOverCap); got != 1 {
		t.Fatalf("over_cap = %v after a slot freed", got)
	}
}

func TestPerSourceRateLimit(t *testing.T) {
	h := newHarness(t, "--source-rate", "0.001", "--source-burst", "3")
	for range 3 {
		h.dialTLS(nameA).Close()
	}
	c := h.dial()
	tc := tls.Client(c, h.tlsConfig(nameA))
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("fourth connection from one source within the burst window was relayed")
	}
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonRateLimited))
	if n := h.up[nameA].accepts.Load(); n != 3 {
		t.Fatalf("upstream saw %d connections, want 3", n)
	}
}

func TestProxyProtocol(t *testing.T) {
	src := netip.MustParseAddrPort("203.0.113.9:4444")
	dst := netip.MustParseAddrPort("10.0.0.5:8443")
	header := proxyproto.AppendV2(nil, src, dst)

	t.Run("spoofed header from an untrusted peer", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "optional", "--trusted-cidr", "10.0.0.0/8")
		c := h.dial()
		c.Write(append(append([]byte{}, header...), hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))...))
		expectClosed(t, c)
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonUntrustedProxyHeader))
		if h.up[nameRaw].accepts.Load() != 0 {
			t.Fatal("relayed after an untrusted header")
		}
		h.dialTLS(nameA) // optional: plain TLS from the untrusted peer still works
	})
	t.Run("trusted header sets the source", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8")
		c := h.dial()
		c.Write(header)
		tc := tls.Client(c, h.tlsConfig(nameA))
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "upstream "+nameA+"\n" {
			t.Fatalf("%q %v", line, err)
		}
		tc.Close()
		h.waitMetric(1, "agentgate_relay_connections_closed_total", "route", nameA)
		lines := h.waitLogLines("connection", 1)
		if len(lines) != 1 || !strings.Contains(lines[0], `"source":"203.0.113.9:4444"`) {
			t.Fatalf("log does not carry the PROXY source: %q", lines)
		}
	})
	t.Run("required and missing", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8")
		tc := tls.Client(h.dial(), h.tlsConfig(nameA))
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() == nil {
			t.Fatal("relayed without the required header")
		}
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonMissingProxyHeader))
	})
	t.Run("corrupt header from a trusted peer", func(t *testing.T) {
		h := newHarness(t, "--proxy-protocol", "optional", "--trusted-cidr", "127.0.0.1/32")
		bad := append([]byte{}, header...)
		bad[12] = 0x31 // version 3
		c := h.dial()
		c.Write(append(bad, hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))...))
		expectClosed(t, c)
		h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonBadProxyHeader))
	})
}

func TestHalfCloseAndCopyPath(t *testing.T) {
	for _, mode := range []string{"auto", "buffered", "splice"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, "--copy-mode", mode)
			replyFn := func(got []byte) []byte { return []byte(fmt.Sprintf("upstream read %d bytes then EOF", len(got))) }
			h.rawReply.Store(&replyFn)
			hello := hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))
			payload := bytes.Repeat([]byte("x"), 300<<10) // several splice chunks
			c := h.dial()
			c.Write(hello)
			c.Write(payload)
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			reply, err := io.ReadAll(c) // the upstream answers only after it saw our FIN
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("upstream read %d bytes then EOF", len(hello)+len(payload)); string(reply) != want {
				t.Fatalf("reply %q, want %q", reply, want)
			}
			path := map[string]string{"auto": "buffered", "buffered": "buffered", "splice": "splice"}[mode]
			h.waitMetric(1, "agentgate_relay_connections_closed_total", "route", nameRaw, "copy", path, "reason", relay.CloseDone)
			lines := h.waitLogLines("connection", 1)
			if len(lines) != 1 || !strings.Contains(lines[0], `"copy":"`+path+`"`) ||
				!strings.Contains(lines[0], fmt.Sprintf(`"bytes_in":%d`, len(hello)+len(payload))) ||
				!strings.Contains(lines[0], fmt.Sprintf(`"bytes_out":%d`, len(reply))) {
				t.Fatalf("log line: %q", lines)
			}
		})
	}
}

func TestIdleTimeoutCoversBothDirections(t *testing.T) {
	h := newHarness(t, "--idle-timeout", "2s", "--peek-timeout", "500ms")
	// Traffic in one direction only keeps the whole connection alive.
	hello := hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))
	c := h.dial()
	c.Write(hello)
	for range 24 { // 4.8 s of client→upstream bytes, > 2 × idle timeout, 10 writes per idle period
		if _, err := c.Write([]byte("k")); err != nil {
			t.Fatalf("closed while the client was still sending: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := h.metric("agentgate_relay_connections_closed_total"); n != 0 {
		t.Fatalf("connection closed (%v) while bytes were flowing one way", n)
	}
	// Then silence: closed as idle, and the upstream saw everything.
	expectClosedOrReply(t, c)
	h.waitMetric(1, "agentgate_relay_connections_closed_total", "reason", relay.CloseIdle)
	if got := <-h.raw; len(got) != len(hello)+24 {
		t.Fatalf("upstream got %d bytes", len(got))
	}
}

// TestLongTransferOutlivesIdleTimeout: the idle deadline is armed lazily;
// a transfer that keeps flowing for several idle periods must not be cut
// when that deadline passes in the middle of one long burst (the upstream
// always has data queued because the client reads slowly). The idle timeout
// is 3 s, not less: a write that makes no progress for the idle timeout is
// idle by design, so a test reader starved of CPU for that long on a loaded
// machine would be cut legitimately (with 1 s it was, a few runs in ten).
func TestLongTransferOutlivesIdleTimeout(t *testing.T) {
	for _, mode := range []string{"buffered", "splice"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "--idle-timeout", "3s", "--peek-timeout", "500ms", "--copy-mode", mode)
			const total = 16 << 20
			serve := func(c net.Conn) {
				c.Write(make([]byte, total)) // as fast as the relay takes it
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			}
			h.rawServe.Store(&serve)
			c := h.dial()
			c.Write(hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw))))
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			start := time.Now()
			buf := make([]byte, 16<<10)
			var n int
			sawName := false
			for {
				k, err := c.Read(buf)
				n += k
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d of %d bytes: %v", n, total, err)
				}
				if n > total/2 && !sawName {
					// Mid-transfer the copying goroutine is named for its direction.
					buf := make([]byte, 1<<20)
					sawName = strings.Contains(string(buf[:runtime.Stack(buf, true)]), "(*session).upstreamToClient")
					if !sawName {
						t.Error("no (*session).upstreamToClient goroutine during a download")
						sawName = true
					}
				}
				time.Sleep(10 * time.Millisecond) // ≤ 1.6 MB/s: the download takes > 3 idle periods
			}
			if n != total {
				t.Fatalf("downloaded %d of %d bytes", n, total)
			}
			t.Logf("download took %v", time.Since(start))
			c.Close()
			// Nothing was cut: the relay moved every byte. (How it closes at
			// the end depends on the machine: the last megabytes can sit in
			// the sockets' kernel buffers for longer than this test's 3 s idle
			// timeout while the slow reader drains them, and then the sweep,
			// not the client's FIN, ends the session — harmless, the bytes
			// were already handed over.)
			h.waitMetric(1, "agentgate_relay_connections_closed_total")
			lines := h.waitLogLines("connection", 1)
			if len(lines) != 1 || !strings.Contains(lines[0], fmt.Sprintf(`"bytes_out":%d`, total)) {
				t.Fatalf("log line: %q", lines)
			}
		})
	}
}

func expectClosedOrReply(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("not closed: %v", err)
	}
}

func TestHealthSNIAnsweredLocally(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.srv.StartProbes(ctx)
	get := func() (int, *tls.ConnectionState) {
		t.Helper()
		tc := tls.Client(h.dial(), &tls.Config{ServerName: relayspec.DefaultHealthSNI, InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", relayspec.HealthPath, relayspec.DefaultHealthSNI)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatal(err)
		}
		cs := tc.ConnectionState()
		return resp.StatusCode, &cs
	}
	deadline := time.Now().Add(10 * time.Second)
	for !h.srv.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("never ready with reachable upstreams")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, cs := get()
	if code != 200 {
		t.Fatalf("ready relay answered %d", code)
	}
	leaf := cs.PeerCertificates[0]
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() || leaf.DNSNames[0] != relayspec.DefaultHealthSNI {
		t.Fatalf("health certificate: %T %v", leaf.PublicKey, leaf.DNSNames)
	}
	h.srv.SetDraining()
	if code, _ := get(); code != 503 {
		t.Fatalf("draining relay answered %d", code)
	}
	h.waitMetric(1, "agentgate_relay_health_checks_total", "result", "ready")
	h.waitMetric(1, "agentgate_relay_health_checks_total", "result", "unready")
}

func TestUnreadyWhenNoUpstreamAnswers(t *testing.T) {
	if !relay.Ready(false, []bool{false, true}) || relay.Ready(true, []bool{true}) ||
		relay.Ready(false, nil) || relay.Ready(false, []bool{false, false}) {
		t.Fatal("readiness rule")
	}
	h := newHarness(t)
	addrA := h.up[nameA].Addr().String()
	for _, l := range h.up {
		l.Close()
	}
	if h.srv.Ready() {
		t.Fatal("ready before any probe")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h.srv.StartProbes(ctx)
	deadline := time.Now().Add(10 * time.Second)
	// Wait on the probe's own state, not on its log lines (written before
	// the state is): readiness reflects a completed probe round once the
	// upstream_up gauge exists for every route.
	for h.metricCount("agentgate_relay_upstream_up") < 3 {
		if time.Now().After(deadline) {
			t.Fatal("no probe round completed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(h.logLines("upstream probe failed")); n < 3 {
		t.Fatalf("%d probe failures logged, want one per upstream", n)
	}
	if h.srv.Ready() || h.metric("agentgate_relay_ready") != 0 {
		t.Fatal("ready with every upstream down")
	}
	ln, err := net.Listen("tcp", addrA) // one upstream comes back
	if err != nil {
		t.Skipf("could not re-listen on %s: %v", addrA, err)
	}
	defer ln.Close()
	h.waitMetric(1, "agentgate_relay_ready")
	h.waitMetric(1, "agentgate_relay_upstream_up")
}

func TestMetricNamesFollowConventions(t *testing.T) {
	h := newHarness(t)
	h.dialTLS(nameA).Close()
	fams, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		name, typ := f.GetName(), f.GetType().String()
		switch typ {
		case "COUNTER":
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case "HISTOGRAM":
			if !strings.HasSuffix(name, "_seconds") && !strings.HasSuffix(name, "_bytes") {
				t.Errorf("histogram %s has no unit suffix", name)
			}
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && typ == "COUNTER" && name == "agentgate_relay_rejected_connections_total" {
					found := false
					for _, r := range relay.RejectReasons {
						found = found || string(r) == l.GetValue()
					}
					if !found {
						t.Errorf("reason %q outside the fixed set", l.GetValue())
					}
				}
				if l.GetName() == "listener" && l.GetValue() != relay.ListenerAgent && l.GetValue() != relay.ListenerAdmin {
					t.Errorf("%s: listener %q outside the fixed set", name, l.GetValue())
				}
			}
		}
	}
}

// TestIdleConnectionsHoldNoPipes: with N idle relayed connections in splice
// mode (each has moved data both ways, so each has used a pipe), the process
// holds far fewer pipe descriptors than connections, and no goroutine per
// connection: idle directions are parked in the relay's epoll set.
func TestIdleConnectionsHoldNoPipes(t *testing.T) {
	h := newHarness(t, "--copy-mode", "splice")
	countPipes := func() int {
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		n := 0
		for _, e := range entries {
			if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "pipe:") {
				n++
			}
		}
		return n
	}
	before, goroutinesBefore := countPipes(), runtime.NumGoroutine()
	const conns = 40
	for range conns {
		tc := h.dialTLS(nameA) // upstream → client bytes (greeting), client → upstream (hello)
		fmt.Fprintf(tc, "x\n")
		if line, err := bufio.NewReader(tc).ReadString('\n'); err != nil || line != "x\n" {
			t.Fatalf("echo: %q %v", line, err)
		}
	}
	h.waitMetric(conns, "agentgate_relay_connections_active")
	// The last bursts return their pipes and goroutines a moment after the
	// echo; wait for the counts themselves to settle (the deadline only
	// bounds a relay that keeps them). The test's own TLS endpoints use no
	// pipes; io.Copy-style splicing would hold 4 pipe descriptors per
	// connection (one pipe per direction). The test's upstream holds one
	// goroutine per connection (its echo loop); a relay with a goroutine per
	// direction would add two more.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pipes, goroutines := countPipes()-before, runtime.NumGoroutine()-goroutinesBefore
		if pipes < conns/2 && goroutines <= conns+conns/2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pipe descriptors and %d more goroutines for %d idle connections", pipes, goroutines, conns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if h.metric("agentgate_relay_connections_closed_total") != 0 {
		t.Fatal("connections closed early")
	}
}

// TestRateLimitKeyedByProxySource: behind the NLB every connection comes
// from the load balancer's address; the limit must apply to the source in
// the PROXY header instead.
func TestRateLimitKeyedByProxySource(t *testing.T) {
	h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8",
		"--source-rate", "0.001", "--source-burst", "1")
	dst := netip.MustParseAddrPort("10.0.0.5:8443")
	try := func(src string) error {
		c := h.dial()
		c.Write(proxyproto.AppendV2(nil, netip.MustParseAddrPort(src), dst))
		tc := tls.Client(c, h.tlsConfig(nameA))
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		defer tc.Close()
		return tc.Handshake()
	}
	if err := try("198.51.100.1:1000"); err != nil {
		t.Fatalf("first from A: %v", err)
	}
	if err := try("198.51.100.1:1001"); err == nil {
		t.Fatal("second from A within the window was relayed")
	}
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonRateLimited))
	if err := try("198.51.100.2:1000"); err != nil {
		t.Fatalf("B is limited by A's bucket: %v", err)
	}
}

// TestHealthRequestCapped: the health name's request is read under the same
// byte cap as a CONNECT request; a longer one is answered 400 and counted,
// one within the cap is served.
func TestHealthRequestCapped(t *testing.T) {
	h := newHarness(t)
	get := func(req string) (int, error) {
		t.Helper()
		tc := tls.Client(h.dial(), &tls.Config{ServerName: relayspec.DefaultHealthSNI, InsecureSkipVerify: true})
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(tc, req); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	padding := "X-Pad: " + strings.Repeat("p", 7000) + "\r\n" // within 8 KiB with the rest
	if code, err := get("GET " + relayspec.HealthPath + " HTTP/1.1\r\nHost: h\r\n" + padding + "\r\n"); code != 503 {
		t.Fatalf("request within the cap: %d %v, want 503 (no probe has run)", code, err)
	}
	long := "GET /" + strings.Repeat("a", 9<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	if code, err := get(long); code != 400 {
		t.Fatalf("request line over the cap: %d %v, want 400", code, err)
	}
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonHealthBadRequest))
	if code, err := get("NOT HTTP\r\n\r\n"); code != 400 {
		t.Fatalf("malformed request: %d %v, want 400", code, err)
	}
	h.waitMetric(2, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonHealthBadRequest))
}

// TestUnicodeCaseFoldingInNameMatching: names were lower-cased with Unicode
// rules, under which U+0130 (İ) folds to "i" and U+212A (KELVIN SIGN) to
// "k", so "raw.\u0130ot.test" reached raw.iot.test's upstream, over TLS and
// over CONNECT. Only ASCII is folded now, and a name holding any byte other
// than a letter, digit, '-' or '.' is refused.
func TestUnicodeCaseFoldingInNameMatching(t *testing.T) {
	h := newHarness(t, "--http-connect")
	for _, name := range []string{"raw.\u0130ot.test", "r\u212a.iot.test", "raw.iot.test\x00", "raw.iot.test\u200b", "raw_x.iot.test", "raw.iot.test:443"} {
		c := h.dial()
		c.Write(hellogen.Record(hellogen.Build(hellogen.SNI(name))))
		expectClosed(t, c)
	}
	h.waitMetric(6, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonInvalidSNI))
	for _, host := range []string{"raw.\u0130ot.test", "RAW.\u0130OT.TEST"} {
		c := h.dial()
		fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\n\r\n", host)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT %q: %v %v, want 403", host, resp, err)
		}
	}
	h.waitMetric(8, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonInvalidSNI))
	if n := h.up[nameRaw].accepts.Load(); n != 0 {
		t.Fatalf("raw.iot.test's upstream saw %d connections for look-alike names", n)
	}
	// ASCII case still folds.
	c := h.dial()
	c.Write(hellogen.Record(hellogen.Build(hellogen.SNI("RAW.IOT.TEST."))))
	c.CloseWrite()
	select {
	case <-h.raw:
	case <-time.After(10 * time.Second):
		t.Fatal("RAW.IOT.TEST. was not relayed to raw.iot.test")
	}
}

// TestConnectChecksTunnelledName: after "CONNECT raw.iot.test:443" the
// ClientHello sent through the tunnel could name any server; it is now read
// under the same byte cap and deadline as on the TLS path and must name the
// CONNECT host, or the tunnel is refused with the TLS path's reasons and no
// upstream is dialled.
func TestConnectChecksTunnelledName(t *testing.T) {
	h := newHarness(t, "--http-connect", "--peek-timeout", "1s")
	record := func(exts ...hellogen.Extension) []byte { return hellogen.Record(hellogen.Build(exts...)) }
	cases := []struct {
		name   string
		inner  []byte
		reason relay.Reason
	}{
		{"another routed name", record(hellogen.SNI(nameA)), relay.ReasonSNIMismatch},
		{"an unknown name", record(hellogen.SNI("unknown.iot.test")), relay.ReasonUnknownSNI},
		{"no SNI", record(), relay.ReasonNoSNI},
		{"ECH with the CONNECT name outside", record(hellogen.SNI(nameRaw), hellogen.ECH()), relay.ReasonECH},
		{"look-alike", record(hellogen.SNI("raw.\u0130ot.test")), relay.ReasonInvalidSNI},
		{"not TLS", []byte("GET / HTTP/1.1\r\nHost: raw.iot.test\r\n\r\n"), relay.ReasonNotTLS},
		{"over-long hello", record(hellogen.SNI(nameRaw), hellogen.Padding(17000)), relay.ReasonHelloTooLong},
		{"silence", nil, relay.ReasonPeekTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.rejected(tc.reason)
			c := h.dial()
			c.Write(append([]byte("CONNECT RAW.IOT.TEST:443 HTTP/1.1\r\nHost: raw.iot.test:443\r\n\r\n"), tc.inner...))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("CONNECT to a routed name: %v %v", resp, err)
			}
			if rest, err := io.ReadAll(br); len(rest) > 0 || (err != nil && !strings.Contains(err.Error(), "reset")) {
				t.Fatalf("tunnel not closed: read %q, %v", rest, err)
			}
			h.waitMetric(before+1, "agentgate_relay_rejected_connections_total", "reason", string(tc.reason))
		})
	}
	for _, name := range []string{nameA, nameB, nameRaw} {
		if n := h.up[name].accepts.Load(); n != 0 {
			t.Errorf("%s's upstream saw %d connections from refused tunnels", name, n)
		}
	}
	// The tunnelled name must equal the CONNECT host, ASCII case aside.
	c := h.dial()
	c.Write([]byte("CONNECT raw.iot.test:443 HTTP/1.1\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	hello := record(hellogen.SNI("Raw.Iot.Test"))
	c.Write(hello)
	c.CloseWrite()
	select {
	case got := <-h.raw:
		if !bytes.Equal(got, hello) {
			t.Fatalf("upstream got %q, want the tunnelled hello unchanged", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("matching tunnelled hello was not relayed")
	}
}

// TestConnectForwardsBytesAfterTheHello: a client may write the CONNECT
// request, its ClientHello and more (TLS early data, a second record) in
// one go. Reading the hello to check its name must not eat what follows:
// the upstream receives all of it, in order.
func TestConnectForwardsBytesAfterTheHello(t *testing.T) {
	h := newHarness(t, "--http-connect")
	hello := hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))
	extra := []byte("EXTRA: bytes the client sent right after its hello")
	c := h.dial()
	c.Write(append(append([]byte("CONNECT raw.iot.test:443 HTTP/1.1\r\n\r\n"), hello...), extra...))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	c.Write([]byte(" and later bytes"))
	c.CloseWrite()
	want := append(append(append([]byte{}, hello...), extra...), " and later bytes"...)
	select {
	case got := <-h.raw:
		if !bytes.Equal(got, want) {
			t.Fatalf("upstream got %d bytes %q\nwant %d bytes %q", len(got), got, len(want), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the tunnel was not relayed")
	}
}

// TestPerSourceConcurrentConnectionCap: only the per-source connection rate
// was limited, so one address could hold every connection of a relay. Now a
// source (IPv4 address or IPv6 /64, the PROXY header's when present) holds
// at most --max-conns-per-source at once.
func TestPerSourceConcurrentConnectionCap(t *testing.T) {
	h := newHarness(t, "--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8", "--max-conns-per-source", "2")
	dst := netip.MustParseAddrPort("10.0.0.5:8443")
	open := func(src string) (*tls.Conn, error) {
		c := h.dial()
		c.Write(proxyproto.AppendV2(nil, netip.MustParseAddrPort(src), dst))
		tc := tls.Client(c, h.tlsConfig(nameA))
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(tc).ReadString('\n')
		if err == nil && line != "upstream "+nameA+"\n" {
			err = fmt.Errorf("got %q", line)
		}
		tc.SetDeadline(time.Time{})
		return tc, err
	}
	mustOpen := func(src string) *tls.Conn {
		t.Helper()
		tc, err := open(src)
		if err != nil {
			t.Fatalf("from %s: %v", src, err)
		}
		return tc
	}
	a1 := mustOpen("198.51.100.1:1000")
	mustOpen("198.51.100.1:1001")
	if _, err := open("198.51.100.1:1002"); err == nil {
		t.Fatal("third concurrent connection from one IPv4 source was relayed")
	}
	h.waitMetric(1, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonSourceOverCap))
	mustOpen("198.51.100.2:1000") // another source is not affected
	// IPv6: one /64 is one source.
	mustOpen("[2001:db8:0:1::1]:1000")
	mustOpen("[2001:db8:0:1::2]:1000")
	if _, err := open("[2001:db8:0:1:ffff::3]:1000"); err == nil {
		t.Fatal("third connection from one IPv6 /64 was relayed")
	}
	h.waitMetric(2, "agentgate_relay_rejected_connections_total", "reason", string(relay.ReasonSourceOverCap))
	mustOpen("[2001:db8:0:2::1]:1000") // the next /64 is another source
	if got := h.metric("agentgate_relay_source_connections_max"); got != 2 {
		t.Errorf("agentgate_relay_source_connections_max = %v, want 2", got)
	}
	if got := h.metric("agentgate_relay_sources"); got != 4 {
		t.Errorf("agentgate_relay_sources = %v, want 4", got)
	}
	// A closed connection frees its source's slot.
	a1.Close()
	h.waitMetric(1, "agentgate_relay_connections_closed_total")
	mustOpen("198.51.100.1:1003")
	if got := h.rejected(relay.ReasonSourceOverCap); got != 2 {
		t.Fatalf("source_over_cap = %v after a slot freed", got)
	}
}

// TestHealthNameCertificates: Route 53's documentation does not say which
// certificate types its HTTPS health checkers accept, so the health name
// serves an RSA 2048 certificate as well as the ECDSA P-256 one, each to the
// clients that can only use it.
func TestHealthNameCertificates(t *testing.T) {
	h := newHarness(t)
	handshake := func(cfg *tls.Config) (*x509.Certificate, error) {
		t.Helper()
		cfg.ServerName, cfg.InsecureSkipVerify = relayspec.DefaultHealthSNI, true
		tc := tls.Client(h.dial(), cfg)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return nil, err
		}
		fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", relayspec.HealthPath, relayspec.DefaultHealthSNI)
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			return nil, fmt.Errorf("after the handshake: %w", err)
		}
		resp.Body.Close()
		return tc.ConnectionState().PeerCertificates[0], nil
	}
	rsaOnly := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}
	leaf, err := handshake(rsaOnly)
	if err != nil {
		t.Fatalf("client limited to RSA: %v", err)
	}
	if k, ok := leaf.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 2048 || leaf.DNSNames[0] != relayspec.DefaultHealthSNI {
		t.Fatalf("client limited to RSA got %T %v", leaf.PublicKey, leaf.DNSNames)
	}
	ecdsaOnly := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}
	if leaf, err = handshake(ecdsaOnly); err != nil {
		t.Fatalf("client limited to ECDSA: %v", err)
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Fatalf("client limited to ECDSA got %T", leaf.PublicKey)
	}
	// A TLS 1.3 client that takes either gets the smaller ECDSA one.
	if leaf, err = handshake(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Fatalf("TLS 1.3 client: %v", err)
	}
	if _, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Fatalf("TLS 1.3 client got %T, want ECDSA first", leaf.PublicKey)
	}
	h.waitMetric(3, "agentgate_relay_health_checks_total")
}

// TestFirstReadForwardedByteExact: the relay reads what a client has sent
// in one go before parsing it; bytes behind the hello in that read (more
// than one read holds, too) and the hello split across reads all reach the
// upstream unchanged, on the TLS and on the CONNECT path. The splits are
// best effort: a pause between writes usually, not certainly, makes the
// relay's reads end at the cuts; the byte-exact check holds either way.
func TestFirstReadForwardedByteExact(t *testing.T) {
	hello := hellogen.Record(hellogen.Build(hellogen.SNI(nameRaw)))
	extra := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB behind the hello
	connect := []byte("CONNECT raw.iot.test:443 HTTP/1.1\r\n\r\n")
	for _, tc := range []struct {
		name   string
		args   []string
		before []byte // sent ahead of the hello, not forwarded
		cuts   []int  // write boundaries in before+hello+extra
	}{
		{name: "tls one write", cuts: nil},
		{name: "tls hello split", cuts: []int{3, 40}},
		{name: "connect one write", args: []string{"--http-connect"}, before: connect},
		{name: "connect split in the request", args: []string{"--http-connect"}, before: connect, cuts: []int{10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.args...)
			all := append(append(append([]byte{}, tc.before...), hello...), extra...)
			c := h.dial()
			last := 0
			for _, cut := range append(tc.cuts, len(all)) {
				if _, err := c.Write(all[last:cut]); err != nil {
					t.Fatal(err)
				}
				last = cut
				time.Sleep(20 * time.Millisecond)
			}
			c.CloseWrite()
			want := all[len(tc.before):]
			select {
			case got := <-h.raw:
				if !bytes.Equal(got, want) {
					t.Fatalf("upstream got %d bytes, want the %d sent after the preamble, unchanged", len(got), len(want))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("upstream got nothing")
			}
		})
	}
}
