//go:build linux

package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
	"github.com/agentgate/agentgate/proxyimage/config"
	"github.com/agentgate/agentgate/proxyimage/relay"
)

// Names the harness routes. "raw" is a plain TCP upstream that records bytes.
const (
	nameA   = "a.iot.test"
	nameB   = "b.iot.test"
	nameRaw = "raw.iot.test"
)

// listener counts accepts and runs handle for each connection.
type listener struct {
	net.Listener
	accepts atomic.Int64
}

func newListener(t *testing.T, handle func(net.Conn)) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{Listener: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepts.Add(1)
			go func() {
				defer c.Close()
				if handle != nil {
					handle(c)
				}
			}()
		}
	}()
	return l
}

type harness struct {
	t        *testing.T
	addr     string
	ln       net.Listener // the agent listener Serve runs on
	reg      *prometheus.Registry
	srv      *relay.Server
	logs     *syncbuf.Buffer
	ca       *testpki.CA
	up       map[string]*listener
	canary   *listener
	raw      chan []byte // what the raw upstream received, per connection, until EOF
	rawReply atomic.Pointer[func(got []byte) []byte]
	rawServe atomic.Pointer[func(net.Conn)] // replaces the raw upstream's behaviour when set
}

// newHarness starts TLS echo upstreams for nameA and nameB, a raw recorder
// for nameRaw, a canary listener no route points to, and a relay on
// 127.0.0.1 with args appended to the defaults.
func newHarness(t *testing.T, args ...string) *harness {
	t.Helper()
	h := newUnservedHarness(t, args...)
	go h.srv.Serve(h.ln)
	return h
}

// newUnservedHarness is newHarness without Serve: the test runs it.
func newUnservedHarness(t *testing.T, args ...string) *harness {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{}, ca: ca, up: map[string]*listener{}, raw: make(chan []byte, 16)}
	for _, name := range []string{nameA, nameB} {
		cert, err := ca.Leaf(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"x-amzn-mqtt-ca"}}
		h.up[name] = newListener(t, func(c net.Conn) {
			tc := tls.Server(c, cfg)
			if tc.Handshake() != nil {
				return
			}
			fmt.Fprintf(tc, "upstream %s\n", name)
			io.Copy(tc, tc)
		})
	}
	h.up[nameRaw] = newListener(t, func(c net.Conn) {
		if serve := h.rawServe.Load(); serve != nil {
			(*serve)(c)
			return
		}
		got, _ := io.ReadAll(c)
		h.raw <- got
		if reply := h.rawReply.Load(); reply != nil {
			c.Write((*reply)(got))
		}
	})
	h.canary = newListener(t, nil)
	base := []string{
		"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
		"--route", nameA + "=" + h.up[nameA].Addr().String(),
		"--route", nameB + "=" + h.up[nameB].Addr().String(),
		"--route", nameRaw + "=" + h.up[nameRaw].Addr().String(),
		"--peek-timeout", "2s", "--source-rate", "0", "--probe-interval", "200ms",
	}
	cfg, err := config.Parse(append(base, args...), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.srv, err = relay.New(cfg, log, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr, h.ln = ln.Addr().String(), ln
	// No upstream probes unless a test starts them: they would show up as
	// accepts on the upstream listeners.
	t.Cleanup(func() {
		ln.Close()
		h.srv.CloseSpread(context.Background(), 0)
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer wcancel()
		if err := h.srv.Wait(wctx); err != nil {
			t.Errorf("handlers still running after close: %v", err)
		}
		if t.Failed() {
			t.Logf("relay log:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *harness) dial() *net.TCPConn {
	h.t.Helper()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func (h *harness) tlsConfig(name string) *tls.Config {
	return &tls.Config{ServerName: name, RootCAs: h.ca.Pool}
}

// dialTLS connects through the relay and checks which upstream answered.
func (h *harness) dialTLS(name string) *tls.Conn {
	h.t.Helper()
	tc := tls.Client(h.dial(), h.tlsConfig(name))
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(tc).ReadString('\n')
	if err != nil {
		h.t.Fatalf("through the relay to %s: %v", name, err)
	}
	if want := "upstream " + strings.ToLower(name) + "\n"; line != want {
		h.t.Fatalf("got %q from upstream, want %q", line, want)
	}
	tc.SetDeadline(time.Time{})
	return tc
}

// metric returns the value of the sample of family name whose labels
// include all of labels (pairs), summed over the matches.
func (h *harness) metric(name string, labels ...string) float64 {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

// metricCount returns how many series family name has.
func (h *harness) metricCount(name string) int {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return len(f.GetMetric())
		}
	}
	return 0
}

// hasSeries reports whether the metric has a series with exactly these
// label pairs.
func (h *harness) hasSeries(name string, labels ...string) bool {
	h.t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := m.GetLabel()
			if len(got)*2 != len(labels) {
				continue
			}
			same := true
			for i, lp := range got { // Gather sorts labels by name
				same = same && lp.GetName() == labels[2*i] && lp.GetValue() == labels[2*i+1]
			}
			if same {
				return true
			}
		}
	}
	return false
}

// waitMetric polls until the metric equals want: counters move when the
// relay's handler finishes, a moment after the client sees the close. The
// relay moves a connection's counters last (after its log line and after
// freeing its slots), so once one is seen, the rest is visible too; a test
// that then reads the log still reads it with waitLogLines, which waits on
// the line itself.
func (h *harness) waitMetric(want float64, name string, labels ...string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.metric(name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) rejected(reason relay.Reason) float64 {
	return h.metric("agentgate_relay_rejected_connections_total", "reason", string(reason))
}

// expectClosed reads until the relay closes c; it fails if data arrives.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("relay did not close the connection: %v", err)
	}
	if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
		t.Fatalf("relay sent %q on a refused connection", b)
	}
}

// waitLogLines polls until at least n log lines carry msg and returns them
// all.
func (h *harness) waitLogLines(msg string, n int) []string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := h.logLines(msg)
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d %q log lines, want %d", len(lines), msg, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logLines returns the JSON log lines with the given message.
func (h *harness) logLines(msg string) []string {
	var out []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			out = append(out, l)
		}
	}
	return out
}
