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
	// gate, when set, holds each health check's answer until it is closed.
	gate atomic.Pointer[chan struct{}]
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
			gate := f.gate.Load()
			f.mu.Lock()
			f.checks = append(f.checks, healthRequest{h.Command, req.Host, req.URL.Path})
			f.mu.Unlock()
			select {
			case f.checked <- struct{}{}:
			default:
			}
			if gate != nil {
				<-*gate
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

// resetting is a target group with the load balancer's default: an
// unhealthy target's connections are reset at once.
var resetting = TargetGroup{HealthCheck: testCheck, UnhealthyConnectionTermination: true}

// draining is a target group as constructs/edge configures one, with an
// interval no test waits out (endDraining ends it).
var draining = TargetGroup{HealthCheck: testCheck, UnhealthyDrainingInterval: time.Hour}

func startTestNLB(t *testing.T, zones ...string) *NLB {
	t.Helper()
	return startTestNLBWith(t, resetting, zones...)
}

func startTestNLBWith(t *testing.T, tg TargetGroup, zones ...string) *NLB {
	t.Helper()
	var ips []netip.Addr
	for _, z := range zones {
		ips = append(ips, netip.MustParseAddr(z))
	}
	n, err := StartNLB(0, tg, ips...)
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

// flowsOnBoth waits until a and b are healthy, then opens flows through
// zone until each holds one (the flow hash picks), and returns them.
func flowsOnBoth(t *testing.T, n *NLB, zone netip.AddrPort, a, b *fakeTarget) (onA, onB net.Conn) {
	t.Helper()
	await(t, n, a.target(), TargetHealthy)
	await(t, n, b.target(), TargetHealthy)
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
	t.Cleanup(func() { onA.Close(); onB.Close() })
	return onA, onB
}

// stillEchoes fails the test unless c still carries bytes both ways.
func stillEchoes(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "still\n"); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "still\n" {
		t.Errorf("%s: %q %v", what, line, err)
	}
}

// isReset fails the test unless the load balancer reset c.
func isReset(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("%s: %v, want a reset", what, err)
	}
}

// newFlowsAvoid opens 20 flows through zone and fails the test if any
// reaches target.
func newFlowsAvoid(t *testing.T, zone netip.AddrPort, target *fakeTarget, why string) {
	t.Helper()
	before, _ := target.snapshot()
	for range 20 {
		c, err := echo(zone)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if after, _ := target.snapshot(); len(after) != len(before) {
		t.Errorf("%s target got %d new connections while another was healthy", why, len(after)-len(before))
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
	zone := n.Addrs()[0]
	onA, onB := flowsOnBoth(t, n, zone, a, b)

	a.status.Store(http.StatusServiceUnavailable)
	await(t, n, a.target(), TargetUnhealthy)
	isReset(t, onA, "flow on the unhealthy target")
	newFlowsAvoid(t, zone, a, "unhealthy")

	b.status.Store(http.StatusServiceUnavailable)
	await(t, n, b.target(), TargetUnhealthy)
	stillEchoes(t, onB, "fail-open zone cut the last target's flow")
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

// drainGen returns the number of the target's current unhealthy.draining
// stay, and the target.
func drainGen(n *NLB, addr string) (*nlbTarget, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.find(addr)
	return t, t.drainGen
}

// TestNLBUnhealthyTargetDrainsBeforeReset: with connection termination for
// unhealthy targets off and a draining interval (how constructs/edge
// configures the target groups), a target failing its checks is
// unhealthy.draining: its open flow keeps working and new flows go to the
// healthy target; passing again makes it healthy with the flow intact;
// only when a draining interval ends does it become unhealthy and its flow
// is reset. The end of an earlier stay does not end a later one.
func TestNLBUnhealthyTargetDrainsBeforeReset(t *testing.T) {
	n := startTestNLBWith(t, draining, "127.0.0.2")
	a, b := newFakeTarget(t), newFakeTarget(t)
	if err := n.SetTargets(0, a.target(), b.target()); err != nil {
		t.Fatal(err)
	}
	zone := n.Addrs()[0]
	onA, onB := flowsOnBoth(t, n, zone, a, b)

	a.status.Store(http.StatusServiceUnavailable)
	await(t, n, a.target(), TargetUnhealthyDraining)
	target, first := drainGen(n, a.target().Addr)
	stillEchoes(t, onA, "flow on the draining target")
	newFlowsAvoid(t, zone, a, "draining")

	a.status.Store(http.StatusOK)
	await(t, n, a.target(), TargetHealthy)
	stillEchoes(t, onA, "flow on the target that passed again while draining")

	a.status.Store(http.StatusServiceUnavailable)
	await(t, n, a.target(), TargetUnhealthyDraining)
	n.drainingElapsed(target, first)
	if got := n.State(a.target().Addr); got != TargetUnhealthyDraining {
		t.Errorf("the first stay's end moved the second stay to %q", got)
	}
	stillEchoes(t, onA, "flow on the draining target after a stale interval end")
	_, second := drainGen(n, a.target().Addr)
	n.drainingElapsed(target, second)
	if got := n.State(a.target().Addr); got != TargetUnhealthy {
		t.Errorf("after the draining interval the target is %q, want %q", got, TargetUnhealthy)
	}
	isReset(t, onA, "flow on the target whose draining interval ended")
	stillEchoes(t, onB, "flow on the healthy target")
}

// TestNLBUnhealthyDrainingIntervalEnds: the interval runs out by itself;
// the first target to fail is reset when it ends; the zone's last target
// then fails too and, its zone failing open, keeps its flow.
func TestNLBUnhealthyDrainingIntervalEnds(t *testing.T) {
	tg := draining
	tg.UnhealthyDrainingInterval = 50 * time.Millisecond
	n := startTestNLBWith(t, tg, "127.0.0.2")
	a, b := newFakeTarget(t), newFakeTarget(t)
	if err := n.SetTargets(0, a.target(), b.target()); err != nil {
		t.Fatal(err)
	}
	onA, onB := flowsOnBoth(t, n, n.Addrs()[0], a, b)
	a.status.Store(http.StatusServiceUnavailable)
	await(t, n, a.target(), TargetUnhealthy)
	isReset(t, onA, "flow on the target whose draining interval ended")
	b.status.Store(http.StatusServiceUnavailable)
	await(t, n, b.target(), TargetUnhealthy)
	stillEchoes(t, onB, "fail-open zone cut the last target's flow")
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

// TestNLBCheckUnderWayWhenTargetStopsDoesNotReopenTheZone: a health check
// that was already under way when the target was killed may still pass;
// that is no sign of life after the kill, so the zone keeps refusing
// connections (it had reopened, and the next agent's connection was reset
// instead of refused).
func TestNLBCheckUnderWayWhenTargetStopsDoesNotReopenTheZone(t *testing.T) {
	n := startTestNLB(t, "127.0.0.2")
	a := newFakeTarget(t)
	if err := n.SetTargets(0, a.target()); err != nil {
		t.Fatal(err)
	}
	await(t, n, a.target(), TargetHealthy)
	gate := make(chan struct{})
	a.gate.Store(&gate)
	_, before := a.snapshot()
	a.awaitChecks(len(before) + 1) // a check now waits at the target for the gate
	a.admin.Close()                // every later check is refused
	n.TargetStopped(a.target().Addr)
	close(gate) // the check under way answers 200
	await(t, n, a.target(), TargetUnhealthy)
	if c, err := net.Dial("tcp", n.Addrs()[0].String()); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial after the kill: %v, want refused", err)
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
		if _, err := StartNLB(0, TargetGroup{HealthCheck: c}, netip.MustParseAddr("127.0.0.2")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", c, err, tc.want)
		}
	}
	for _, tc := range []struct {
		tg   TargetGroup
		want string
	}{
		{TargetGroup{HealthCheck: testCheck, UnhealthyDrainingInterval: -time.Second}, "must not be negative"},
		{TargetGroup{HealthCheck: testCheck, UnhealthyConnectionTermination: true, UnhealthyDrainingInterval: time.Second}, "needs connection termination for unhealthy targets off"},
	} {
		if _, err := StartNLB(0, tc.tg, netip.MustParseAddr("127.0.0.2")); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.tg, err, tc.want)
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

// TestTargetHealthStateMachine: the counts, result by result, with and
// without an unhealthy draining interval.
func TestTargetHealthStateMachine(t *testing.T) {
	c := TargetHealthCheck{HealthyThreshold: 3, UnhealthyThreshold: 2}
	short := map[TargetState]byte{TargetInitial: 'i', TargetHealthy: 'h', TargetUnhealthy: 'u', TargetUnhealthyDraining: 'd'}
	for _, tc := range []struct {
		drain   bool
		results string // p = pass, f = fail, e = the draining interval ends
		want    string // state after each step: i, h, u, d (unhealthy.draining)
	}{
		{false, "p", "h"},
		{false, "ffp", "iuu"},
		{false, "pfpffpppf", "hhhhuuuhh"},
		{false, "pffppfppp", "hhuuuuuuh"},
		{false, "pffe", "hhuu"},
		{true, "ffp", "idd"},
		{true, "pffffe", "hhdddu"},
		{true, "pffpppf", "hhdddhh"},
		{true, "pffpppff", "hhdddhhd"},
		{true, "pffppfpppe", "hhddddddhh"},
		{true, "pffeppp", "hhduuuh"},
		{true, "pffeffppe", "hhduuuuuu"},
	} {
		h := health{state: TargetInitial}
		var got strings.Builder
		for _, r := range tc.results {
			if r == 'e' {
				h.drainingElapsed()
			} else {
				h.record(r == 'p', c, tc.drain)
			}
			got.WriteByte(short[h.state])
		}
		if got.String() != tc.want {
			t.Errorf("drain %v, steps %s: states %s, want %s", tc.drain, tc.results, got.String(), tc.want)
		}
	}
}
