package awsstandin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentgate/agentgate/proxyimage/proxyproto"
)

// fakeTarget plays a relay: its traffic port reads the PROXY header (with
// the relay's own parser) and echoes, its health port reads the header and
// one HTTP request and answers with status.
type fakeTarget struct {
	t              *testing.T
	traffic, admin net.Listener
	status         atomic.Int32
	mu             sync.Mutex
	headers        []proxyproto.Header
	checks         []healthRequest
	conns          []net.Conn
	accepted       chan struct{}
	checked        chan struct{}
}

type healthRequest struct {
	command    proxyproto.Command
	host, path string
}

func newFakeTarget(t *testing.T) *fakeTarget {
	t.Helper()
	f := &fakeTarget{t: t, accepted: make(chan struct{}, 100), checked: make(chan struct{}, 1)}
	f.status.Store(http.StatusOK)
	var err error
	if f.traffic, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if f.admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
	go f.serveTraffic()
	go f.serveAdmin()
	return f
}

func (f *fakeTarget) target() Target {
	return Target{Addr: f.traffic.Addr().String(), HealthAddr: f.admin.Addr().String()}
}

func (f *fakeTarget) stop() {
	f.traffic.Close()
	f.admin.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
}

func (f *fakeTarget) serveTraffic() {
	for {
		c, err := f.traffic.Accept()
		if err != nil {
			return
		}
		go func() {
			h, err := proxyproto.Read(c)
			if err != nil {
				c.Close()
				return
			}
			f.mu.Lock()
			f.headers = append(f.headers, h)
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.accepted <- struct{}{}
			io.Copy(c, c)
			c.Close()
		}()
	}
}

func (f *fakeTarget) serveAdmin() {
	for {
		c, err := f.admin.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			h, err := proxyproto.Read(c)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			f.mu.Lock()
			f.checks = append(f.checks, healthRequest{h.Command, req.Host, req.URL.Path})
			f.mu.Unlock()
			select {
			case f.checked <- struct{}{}:
			default:
			}
			status := int(f.status.Load())
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, http.StatusText(status))
		}()
	}
}

// awaitChecks waits until the target has answered n health checks.
func (f *fakeTarget) awaitChecks(n int) []healthRequest {
	f.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if _, checks := f.snapshot(); len(checks) >= n {
			return checks
		}
		select {
		case <-f.checked:
		case <-deadline:
			f.t.Fatalf("fewer than %d health checks", n)
		}
	}
}

func (f *fakeTarget) snapshot() ([]proxyproto.Header, []healthRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proxyproto.Header(nil), f.headers...), append([]healthRequest(nil), f.checks...)
}

var testCheck = TargetHealthCheck{Interval: 20 * time.Millisecond, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2, Path: "/readyz", Matcher: "200"}

func startTestNLB(t *testing.T, zones ...string) *NLB {
	t.Helper()
	var ips []netip.Addr
	for _, z := range zones {
		ips = append(ips, netip.MustParseAddr(z))
	}
	n, err := StartNLB(0, testCheck, ips...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func await(t *testing.T, n *NLB, target Target, state TargetState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.AwaitState(ctx, target.Addr, state); err != nil {
		t.Fatal(err)
	}
}

// echo dials addr, sends a line and reads it back through the target.
func echo(addr netip.AddrPort) (net.Conn, error) {
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		c.Close()
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		c.Close()
		return nil, errors.Join(errors.New("no echo: "+line), err)
	}
	return c, nil
}

// TestNLBForwardsInItsZoneWithProxyHeader: each zone's address reaches only
// its zone's target (cross-zone off), every forwarded connection starts
// with a PROXY v2 PROXY header naming the client and the address it
// dialled, and health checks are new connections with a LOCAL header and
// GET path, Host the zone's address and port.
func TestNLBForwardsInItsZoneWithProxyHeader(t *testing.T) {
	n := startTestNLB(t, "127.0.0.2", "127.0.0.3")
	a, b := newFakeTarget(t), newFakeTarget(t)
	if err := n.SetTargets(0, a.target()); err != nil {
		t.Fatal(err)
	}
	if err := n.SetTargets(1, b.target()); err != nil {
		t.Fatal(err)
	}
	await(t, n, a.target(), TargetHealthy)
	await(t, n, b.target(), TargetHealthy)
	zones := n.Addrs()
	for range 3 {
		c, err := echo(zones[0])
		if err != nil {
			t.Fatal(err)
		}
		local := c.LocalAddr().(*net.TCPAddr).AddrPort()
		c.Close()
		headers, _ := a.snapshot()
		h := headers[len(headers)-1]
		if h.Command != proxyproto.CommandProxy || h.Source != local || h.Destination != zones[0] {
			t.Errorf("header %+v, want PROXY from %s to %s", h, local, zones[0])
		}
	}
	if headers, _ := b.snapshot(); len(headers) != 0 {
		t.Errorf("zone 1's target got %d connections meant for zone 0", len(headers))
	}
	c, err := echo(zones[1])
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for _, hc := range a.awaitChecks(3) {
		if hc.command != proxyproto.CommandLocal || hc.path != "/readyz" || hc.host != zones[0].String() {
			t.Errorf("health check %+v, want LOCAL, /readyz, Host %s", hc, zones[0])
		}
	}
}

// TestNLBTargetHealthThresholds: unhealthy after UnhealthyThreshold
// failures, healthy again after HealthyThreshold passes; an unhealthy
// target's flows are reset while another target of the zone is healthy,
// and new flows go to the healthy one; with no healthy target left the zone
// fails open: new flows reach the unhealthy targets and existing ones stay.
func TestNLBTargetHealthThresholds(t *testing.T) {
	n := startTestNLB(t, "127.0.0.2")
	a, b := newFakeTarget(t), newFakeTarget(t)
	if err := n.SetTargets(0, a.target(), b.target()); err != nil {
		t.Fatal(err)
	}
	await(t, n, a.target(), TargetHealthy)
	await(t, n, b.target(), TargetHealthy)
	zone := n.Addrs()[0]
	// Open flows until both targets hold one (the flow hash picks).
	var onA, onB net.Conn
	for i := 0; onA == nil || onB == nil; i++ {
		if i == 200 {
			t.Fatal("200 connections never reached both targets")
		}
		c, err := echo(zone)
		if err != nil {
			t.Fatal(err)
		}
		ha, _ := a.snapshot()
		hb, _ := b.snapshot()
		local := c.LocalAddr().(*net.TCPAddr).AddrPort()
		switch {
		case onA == nil && len(ha) > 0 && ha[len(ha)-1].Source == local:
			onA = c
		case onB == nil && len(hb) > 0 && hb[len(hb)-1].Source == local:
			onB = c
		default:
			c.Close()
		}
	}
	defer onA.Close()
	defer onB.Close()

	a.status.Store(http.StatusServiceUnavailable)
	await(t, n, a.target(), TargetUnhealthy)
	if _, err := io.ReadAll(onA); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("flow on the unhealthy target: %v, want a reset", err)
	}
	before, _ := a.snapshot()
	for range 20 {
		c, err := echo(zone)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if after, _ := a.snapshot(); len(after) != len(before) {
		t.Errorf("unhealthy target got %d new connections while another was healthy", len(after)-len(before))
	}

	b.status.Store(http.StatusServiceUnavailable)
	await(t, n, b.target(), TargetUnhealthy)
	onB.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(onB, "still\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(onB).ReadString('\n'); err != nil || line != "still\n" {
		t.Errorf("fail-open zone cut the last target's flow: %q %v", line, err)
	}
	beforeA, _ := a.snapshot()
	beforeB, _ := b.snapshot()
	for i := 0; ; i++ {
		if i == 200 {
			t.Fatal("fail-open zone never sent a new connection to each target")
		}
		c, err := echo(zone)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ha, _ := a.snapshot()
		hb, _ := b.snapshot()
		if len(ha) > len(beforeA) && len(hb) > len(beforeB) {
			break
		}
	}

	a.status.Store(http.StatusOK)
	await(t, n, a.target(), TargetHealthy)
}

// TestNLBZoneRefusesWhenItsTargetsStopped: a zone whose every target has
// stopped refuses connections at connect time, as the real one does when
// the SYNs it forwards fail; a forward refused by a target that looked
// alive resets that client and marks the target stopped; a new
// registration opens the zone again.
func TestNLBZoneRefusesWhenItsTargetsStopped(t *testing.T) {
	n := startTestNLB(t, "127.0.0.2")
	a := newFakeTarget(t)
	if err := n.SetTargets(0, a.target()); err != nil {
		t.Fatal(err)
	}
	await(t, n, a.target(), TargetHealthy)
	zone := n.Addrs()[0]
	n.TargetStopped(a.target().Addr)
	if _, err := net.Dial("tcp", zone.String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial with every target stopped: %v, want refused", err)
	}

	b := newFakeTarget(t)
	if err := n.SetTargets(0, b.target()); err != nil {
		t.Fatal(err)
	}
	c, err := echo(zone)
	if err != nil {
		t.Fatalf("after a new registration: %v", err)
	}
	c.Close()
	b.traffic.Close() // it stops accepting without anyone telling the stand-in
	// The reset may come before the client's connect has returned.
	c, err = net.Dial("tcp", zone.String())
	if err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.ReadAll(c)
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("forward refused by the target: %v, want a reset", err)
	}
	if _, err := net.Dial("tcp", zone.String()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial after the refused forward: %v, want refused", err)
	}
}

func TestTargetHealthCheckValidation(t *testing.T) {
	for _, tc := range []struct {
		edit func(c *TargetHealthCheck)
		want string
	}{
		{func(c *TargetHealthCheck) { c.Interval = 0 }, "must be positive"},
		{func(c *TargetHealthCheck) { c.HealthyThreshold = 1 }, "2..10"},
		{func(c *TargetHealthCheck) { c.UnhealthyThreshold = 11 }, "2..10"},
		{func(c *TargetHealthCheck) { c.Path = "readyz" }, "must start with /"},
		{func(c *TargetHealthCheck) { c.Matcher = "ok" }, "matcher"},
		{func(c *TargetHealthCheck) { c.Matcher = "399-200" }, "matcher"},
	} {
		c := testCheck
		tc.edit(&c)
		if _, err := StartNLB(0, c, netip.MustParseAddr("127.0.0.2")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	ok, err := parseMatcher("200,202-204")
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[int]bool{200: true, 201: false, 203: true, 204: true, 503: false} {
		if ok(code) != want {
			t.Errorf("matcher 200,202-204 on %d: %v", code, !want)
		}
	}
}

func TestProxyV2HeadersParse(t *testing.T) {
	src, dst := netip.MustParseAddrPort("203.0.113.7:51000"), netip.MustParseAddrPort("198.51.100.1:443")
	h, err := proxyproto.Read(strings.NewReader(string(ProxyV2Header(src, dst))))
	if err != nil || h.Command != proxyproto.CommandProxy || h.Source != src || h.Destination != dst {
		t.Fatalf("%+v %v", h, err)
	}
	src6, dst6 := netip.MustParseAddrPort("[2001:db8::1]:51000"), netip.MustParseAddrPort("[2001:db8::2]:443")
	if h, err := proxyproto.Read(strings.NewReader(string(ProxyV2Header(src6, dst6)))); err != nil || h.Source != src6 || h.Destination != dst6 {
		t.Fatalf("IPv6: %+v %v", h, err)
	}
	h, err = proxyproto.Read(strings.NewReader(string(ProxyV2LocalHeader())))
	if err != nil || h.Command != proxyproto.CommandLocal || h.Source.IsValid() || h.Length != 16 {
		t.Fatalf("LOCAL: %+v %v", h, err)
	}
}

// TestTargetHealthStateMachine: the counts, result by result.
func TestTargetHealthStateMachine(t *testing.T) {
	c := TargetHealthCheck{HealthyThreshold: 3, UnhealthyThreshold: 2}
	for _, tc := range []struct {
		results string // p = pass, f = fail
		want    string // state after each result: i, h, u
	}{
		{"p", "h"},
		{"ffp", "iuu"},
		{"pfpffpppf", "hhhhuuuhh"},
		{"pffppfppp", "hhuuuuuuh"},
	} {
		h := health{state: TargetInitial}
		var got strings.Builder
		for _, r := range tc.results {
			h.record(r == 'p', c)
			got.WriteByte(string(h.state)[0])
		}
		if got.String() != tc.want {
			t.Errorf("results %s: states %s, want %s", tc.results, got.String(), tc.want)
		}
	}
}
