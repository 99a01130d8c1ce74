package awsstandin

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// NLB stands in for an internet-facing Network Load Balancer as
// constructs/edge configures it: one TCP listener per zone on that zone's
// static IP (all on one port), cross-zone load balancing off, proxy
// protocol v2 on, and HTTP target health checks. What it imitates, from
// the Elastic Load Balancing "Network Load Balancers" user guide:
//
//   - Each zone's listener forwards only to the targets of its zone ("Health
//     checks for Network Load Balancer target groups": "each load balancer
//     node routes requests only to the healthy targets in its Availability
//     Zone"; "Cross-zone load balancing for target groups").
//   - Every forwarded connection starts with a PROXY v2 header carrying the
//     client's address ("Edit target group attributes" → "Proxy protocol").
//   - Health checks: a new TCP connection per check, which (proxy protocol
//     being on) also starts with a PROXY v2 header, command LOCAL, without
//     client addresses ("Proxy protocol" → "Health check connections"), then
//     the HTTP request with the Host header "the IP address of the load
//     balancer node and the listener port"; see TargetHealthCheck for the
//     thresholds and targetHealth for the states.
//   - Only healthy targets get new connections; when a zone has fewer
//     healthy targets than the routing-failover minimum (one, the default)
//     its node sends to all its targets, unhealthy ones included ("Target
//     group health" → "Routing failover"; the target group's default
//     unhealthy_state_routing.minimum_healthy_targets.count is 1).
//   - What happens to the connections of a target that fails its checks
//     follows TargetGroup. With connection termination for unhealthy
//     targets on (the load balancer's default) they are reset at once
//     ("Health checks for Network Load Balancer target groups": "the load
//     balancer sends a TCP RST for packets received on the client
//     connections associated with the target, unless the unhealthy target
//     triggers the load balancer to fail open"). With it off and a draining
//     interval (what constructs/edge configures) the target is
//     "unhealthy.draining" first: no new connections, open ones kept, reset
//     only when the interval ends ("Edit target group attributes for your
//     Network Load Balancer" → "Connection termination for unhealthy
//     targets", "Unhealthy draining interval"). A zone that fails open
//     keeps them either way.
//
// Where a user-space stand-in must differ: a TCP listener of a real NLB
// does not terminate TCP (the guide notes that a TLS listener, unlike it,
// "also terminates a TCP connection"), so a client's SYN reaches the
// target and a dead target fails the client's connect. This stand-in
// completes the handshake itself. To keep a dead target's refusal at
// connect time it stops listening on a zone's address while every target
// of the zone has stopped accepting (TargetStopped, or a forward that the
// target refused), and listens again when a target is registered or passes
// a health check begun after it stopped. A client whose forward is refused
// by a target that was still believed alive sees its connection reset
// right after the handshake instead. Passive health checks and the TCP
// idle timeout are not imitated.
type NLB struct {
	// Port is the listeners' port (every zone's static IP uses it).
	Port int

	tg    TargetGroup
	ok    func(status int) bool
	mu    sync.Mutex
	zones []*nlbZone
	// changed is closed and replaced whenever a target's state changes.
	changed chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

// Target is one registered target.
type Target struct {
	// Addr is where agent connections are forwarded (the relay's port).
	Addr string
	// HealthAddr is where health checks go (the relay's admin port).
	HealthAddr string
}

// TargetState is a target's health as the load balancer reports it
// (DescribeTargetHealth's values, those this stand-in uses).
type TargetState string

// Target states.
const (
	TargetInitial   TargetState = "initial"
	TargetHealthy   TargetState = "healthy"
	TargetUnhealthy TargetState = "unhealthy"
	// TargetUnhealthyDraining: failing its checks, kept connections, gets
	// no new ones, until TargetGroup.UnhealthyDrainingInterval ends.
	TargetUnhealthyDraining TargetState = "unhealthy.draining"
)

type nlbZone struct {
	addr    netip.AddrPort
	ln      net.Listener // nil while the zone refuses connections
	targets []*nlbTarget
}

type nlbTarget struct {
	Target
	zone *nlbZone
	health
	// stopped: the target no longer accepts connections (its process or
	// host is gone), as far as the stand-in knows. stops counts how often
	// it was marked so, so a health check that began before the latest
	// stop cannot count as a sign of life after it.
	stopped bool
	stops   int
	flows   map[*flow]struct{}
	quit    chan struct{}
	// drainTimer ends the current unhealthy.draining stay, numbered
	// drainGen; nil when none is armed.
	drainTimer *time.Timer
	drainGen   int
}

// deregister stops t's health checks and any draining timer (n.mu held).
func (t *nlbTarget) deregister() {
	close(t.quit)
	t.stopDraining()
}

func (t *nlbTarget) stopDraining() {
	if t.drainTimer != nil {
		t.drainTimer.Stop()
		t.drainTimer = nil
	}
}

type flow struct{ client, upstream *net.TCPConn }

// forwardDialTimeout bounds the stand-in's connect to a target. AWS does
// not document how long a SYN to a silent target is retried; on loopback a
// target answers or refuses at once.
const forwardDialTimeout = 10 * time.Second

// reset closes both ends with an RST, as the load balancer does to the
// connections of a target taken out of service.
func (f *flow) reset() {
	f.client.SetLinger(0)
	f.upstream.SetLinger(0)
	f.client.Close()
	f.upstream.Close()
}

// StartNLB listens on port (0: the kernel picks one for the first zone and
// the others take the same) of each zone's static IP, forwarding to one
// target group configured as tg. Targets are registered per zone with
// SetTargets.
func StartNLB(port int, tg TargetGroup, zones ...netip.Addr) (*NLB, error) {
	ok, err := tg.validate()
	if err != nil {
		return nil, err
	}
	if len(zones) == 0 {
		return nil, errors.New("nlb: no zones")
	}
	n := &NLB{Port: port, tg: tg, ok: ok, changed: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, ip := range zones {
		z := &nlbZone{addr: netip.AddrPortFrom(ip, uint16(n.Port))}
		if err := n.listen(z); err != nil {
			n.closeLocked()
			return nil, err
		}
		n.Port = int(z.addr.Port())
		n.zones = append(n.zones, z)
	}
	return n, nil
}

// listen opens z's listener (n.mu held); with port 0 it takes the port the
// kernel picked.
func (n *NLB) listen(z *nlbZone) error {
	ln, err := net.Listen("tcp", z.addr.String())
	if err != nil {
		return fmt.Errorf("nlb: listening on %s: %w", z.addr, err)
	}
	z.ln = ln
	if z.addr.Port() == 0 {
		// Only while starting: afterwards the address never changes, so
		// the forwarders and health checks read it without the lock.
		z.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	}
	n.wg.Add(1)
	go n.accept(z, ln)
	return nil
}

// sync opens or closes z's listener to match its targets (n.mu held): it
// refuses connections exactly while it has targets and all have stopped.
func (n *NLB) sync(z *nlbZone) error {
	open := len(z.targets) == 0
	for _, t := range z.targets {
		open = open || !t.stopped
	}
	switch {
	case open && z.ln == nil && !n.closed:
		return n.listen(z)
	case !open && z.ln != nil:
		z.ln.Close()
		z.ln = nil
	}
	return nil
}

// Addrs are the zones' static IP:port, in zone order.
func (n *NLB) Addrs() []netip.AddrPort {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]netip.AddrPort, len(n.zones))
	for i, z := range n.zones {
		out[i] = z.addr
	}
	return out
}

// SetTargets registers targets in zone (0-based), replacing its previous
// ones. New targets start in the initial state and are health-checked at
// once; a replaced target's connections stay open (deregistration with
// connection termination off, as constructs/edge configures it).
func (n *NLB) SetTargets(zone int, targets ...Target) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if zone < 0 || zone >= len(n.zones) {
		return fmt.Errorf("nlb: no zone %d", zone)
	}
	if n.closed {
		return errors.New("nlb: closed")
	}
	z := n.zones[zone]
	for _, t := range z.targets {
		t.deregister()
	}
	z.targets = nil
	for _, tg := range targets {
		t := &nlbTarget{Target: tg, zone: z, health: health{state: TargetInitial}, flows: map[*flow]struct{}{}, quit: make(chan struct{})}
		z.targets = append(z.targets, t)
		n.wg.Add(1)
		go n.healthChecks(t)
	}
	n.notify()
	return n.sync(z)
}

// TargetStopped tells the stand-in that the target at addr stopped
// accepting connections (its process was killed): from now on its zone
// refuses connections if no other target of it is alive, as a real zone
// would once every SYN it forwards fails.
func (n *NLB) TargetStopped(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.find(addr); t != nil && !t.stopped {
		t.stopped = true
		t.stops++
		_ = n.sync(t.zone) // closing cannot fail
	}
}

// State is the health of the target at addr ("" if it is not registered).
func (n *NLB) State(addr string) TargetState {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.find(addr); t != nil {
		return t.state
	}
	return ""
}

// AwaitState waits until the target at addr is in state, or ctx ends.
func (n *NLB) AwaitState(ctx context.Context, addr string, state TargetState) error {
	for {
		n.mu.Lock()
		t, changed := n.find(addr), n.changed
		got := TargetState("")
		if t != nil {
			got = t.state
		}
		n.mu.Unlock()
		if got == state {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("nlb: target %s is %q, not %q: %w", addr, got, state, ctx.Err())
		}
	}
}

func (n *NLB) find(addr string) *nlbTarget {
	for _, z := range n.zones {
		for _, t := range z.targets {
			if t.Addr == addr {
				return t
			}
		}
	}
	return nil
}

// notify wakes AwaitState callers (n.mu held).
func (n *NLB) notify() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// Close stops the listeners and health checks and resets every forwarded
// connection.
func (n *NLB) Close() {
	n.mu.Lock()
	n.closeLocked()
	n.mu.Unlock()
	n.wg.Wait()
}

func (n *NLB) closeLocked() {
	if n.closed {
		return
	}
	n.closed = true
	for _, z := range n.zones {
		if z.ln != nil {
			z.ln.Close()
			z.ln = nil
		}
		for _, t := range z.targets {
			t.deregister()
			for f := range t.flows {
				f.reset()
			}
		}
	}
}

func (n *NLB) accept(z *nlbZone, ln net.Listener) {
	defer n.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of descriptors and the like: wait and try again, as
			// net/http's server does, rather than stop listening.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		n.wg.Add(1)
		go n.forward(z, c.(*net.TCPConn))
	}
}

// pick chooses the target for a new flow (n.mu held): by a hash of the
// client's address and port among the zone's healthy targets, or among all
// of them when none is healthy (routing failover). A stopped target is
// still chosen, as a real load balancer would until its health checks
// fail: the connection then fails.
func (n *NLB) pick(z *nlbZone, client netip.AddrPort) *nlbTarget {
	var pool []*nlbTarget
	for _, t := range z.targets {
		if t.state == TargetHealthy {
			pool = append(pool, t)
		}
	}
	if len(pool) == 0 {
		pool = z.targets
	}
	if len(pool) == 0 {
		return nil
	}
	h := fnv.New32a()
	b, _ := client.MarshalBinary()
	h.Write(b)
	return pool[h.Sum32()%uint32(len(pool))]
}

// forward relays one client connection to a target of its zone, with the
// PROXY v2 header first.
func (n *NLB) forward(z *nlbZone, client *net.TCPConn) {
	defer n.wg.Done()
	src := client.RemoteAddr().(*net.TCPAddr).AddrPort()
	n.mu.Lock()
	t := n.pick(z, src)
	n.mu.Unlock()
	if t == nil {
		client.SetLinger(0)
		client.Close()
		return
	}
	d := net.Dialer{Timeout: forwardDialTimeout}
	c, err := d.Dial("tcp", t.Addr)
	if err != nil {
		// The target refused: it has stopped (a SYN forwarded to it would
		// have failed the client's connect).
		n.TargetStopped(t.Addr)
		client.SetLinger(0)
		client.Close()
		return
	}
	up := c.(*net.TCPConn)
	f := &flow{client: client, upstream: up}
	n.mu.Lock()
	live := !n.closed && n.find(t.Addr) == t
	if live {
		t.flows[f] = struct{}{}
	}
	n.mu.Unlock()
	if !live {
		f.reset()
		return
	}
	defer func() {
		n.mu.Lock()
		delete(t.flows, f)
		n.mu.Unlock()
	}()
	if _, err := up.Write(ProxyV2Header(src, z.addr)); err != nil {
		f.reset()
		return
	}
	errs := make(chan error, 2)
	go pump(up, client, errs)
	go pump(client, up, errs)
	for range 2 {
		if err := <-errs; err != nil {
			// One side broke (an RST or our own reset): the other gets an
			// RST too, as the load balancer passes it through.
			f.reset()
		}
	}
	client.Close()
	up.Close()
}

// pump copies src to dst and passes a clean end of stream on as a
// half-close, so MQTT's and TLS's own closing sequences still work. It
// copies through a buffer of its own: io.Copy between two TCP connections
// splices on Linux, through a kernel pipe (two file descriptors) per
// direction held while the copy waits, which tripled the stand-in's
// descriptors per connection and ran the storm test's process out of them.
func pump(dst, src *net.TCPConn, errs chan<- error) {
	buf := make([]byte, 16<<10)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	if err == nil {
		err = dst.CloseWrite()
	}
	errs <- err
}
