//go:build linux

package relay_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentgate/agentgate/proxyimage/relay"
)

// fakeClock hands every After to the test, which fires it when it has
// checked what must hold at that point; time moves only then, by exactly
// the duration asked for.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan fakeWait
}

type fakeWait struct {
	d    time.Duration
	fire func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), waits: make(chan fakeWait, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- fakeWait{d: d, fire: func() {
		c.mu.Lock()
		c.now = c.now.Add(d)
		now := c.now
		c.mu.Unlock()
		ch <- now
	}}
	return ch
}

// next returns the drain's next wait.
func (c *fakeClock) next(t *testing.T) fakeWait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the drain asked for no further wait")
		return fakeWait{}
	}
}

// closeWatch counts relayed client connections the relay has closed.
type closeWatch struct{ closed atomic.Int64 }

func (w *closeWatch) watch(c net.Conn) {
	go func() {
		io.Copy(io.Discard, c)
		w.closed.Add(1)
	}()
}

// waitClosed waits until exactly n watched connections are closed.
func (w *closeWatch) waitClosed(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.closed.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections closed by the drain, want %d", w.closed.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := w.closed.Load(); got != n {
		t.Fatalf("%d connections closed by the drain, want %d", got, n)
	}
}

// slowPeek gives handshakes through the relay room on a loaded machine:
// these tests are about the drain, not the peek deadline.
var slowPeek = []string{"--peek-timeout", "30s"}

func drainAsync(h *harness, plan relay.DrainPlan) <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.srv.Drain(plan) }()
	return done
}

func drainResult(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
		return nil
	}
}

// TestDrainSequence walks the lame-duck sequence step by step on a fake
// clock: unready while still accepting for the unready delay, then the
// listener closes, then connections close one per step spread over 90% of
// the budget that is left, then Drain returns once every handler is done.
func TestDrainSequence(t *testing.T) {
	h := newHarness(t, slowPeek...)
	var w closeWatch
	for range 3 {
		w.watch(h.dialTLS(nameA))
	}
	h.waitMetric(3, "agentgate_relay_connections_active")
	clock := newFakeClock()
	const unready, budget = 10 * time.Second, 110 * time.Second
	done := drainAsync(h, relay.DrainPlan{Listener: h.ln, UnreadyDelay: unready, Timeout: budget,
		Force: make(chan struct{}), Signal: "terminated", Clock: clock})

	first := clock.next(t)
	if first.d != unready {
		t.Fatalf("first wait %v, want the unready delay %v", first.d, unready)
	}
	if h.srv.Ready() || h.metric("agentgate_relay_draining") != 1 {
		t.Fatal("not reporting unready during the unready delay")
	}
	// Still accepting and relaying: the load balancer has not noticed yet.
	w.watch(h.dialTLS(nameA))
	h.waitMetric(4, "agentgate_relay_connections_active")
	w.waitClosed(t, 0)
	first.fire()

	// 90% of the 100 s left, over 4 connections: the first closes at once,
	// each other one a step later.
	step := (budget - unready) * 9 / 10 / 4
	for i := int64(1); i <= 3; i++ {
		wt := clock.next(t)
		if wt.d != step {
			t.Fatalf("spread wait %d: %v, want %v", i, wt.d, step)
		}
		if i == 1 {
			if c, err := net.DialTimeout("tcp", h.addr, 2*time.Second); err == nil {
				c.Close()
				t.Fatal("listener still accepting after the unready delay")
			}
		}
		w.waitClosed(t, i)
		wt.fire()
	}
	if err := drainResult(t, done); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	w.waitClosed(t, 4)
	if got := h.metric("agentgate_relay_connections_closed_total", "reason", relay.CloseDrain); got != 4 {
		t.Fatalf("closed with reason drain: %v, want 4", got)
	}
	var order []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		for _, msg := range []string{"draining", "stopped accepting", "drained"} {
			if strings.Contains(l, `"msg":"`+msg+`"`) {
				order = append(order, msg)
			}
		}
	}
	if got := strings.Join(order, ", "); got != "draining, stopped accepting, drained" {
		t.Fatalf("drain log lines: %s", got)
	}
}

// TestDrainForced: a second signal (Force) ends the drain at once, during
// the unready delay or during the spread of closes, and in the spread every
// remaining connection is closed without waiting for its turn.
func TestDrainForced(t *testing.T) {
	t.Run("during the unready delay", func(t *testing.T) {
		h := newHarness(t, slowPeek...)
		clock := newFakeClock()
		force := make(chan struct{})
		done := drainAsync(h, relay.DrainPlan{Listener: h.ln, UnreadyDelay: time.Minute, Timeout: time.Hour,
			Force: force, Clock: clock})
		clock.next(t) // never fired
		close(force)
		if err := drainResult(t, done); !errors.Is(err, relay.ErrForced) {
			t.Fatalf("Drain: %v, want ErrForced", err)
		}
	})
	t.Run("during the spread", func(t *testing.T) {
		h := newHarness(t, slowPeek...)
		var w closeWatch
		for range 3 {
			w.watch(h.dialTLS(nameA))
		}
		h.waitMetric(3, "agentgate_relay_connections_active")
		clock := newFakeClock()
		force := make(chan struct{})
		done := drainAsync(h, relay.DrainPlan{Listener: h.ln, UnreadyDelay: time.Second, Timeout: time.Hour,
			Force: force, Clock: clock})
		clock.next(t).fire()
		clock.next(t) // the second close's turn, never fired
		w.waitClosed(t, 1)
		close(force)
		if err := drainResult(t, done); !errors.Is(err, relay.ErrForced) {
			t.Fatalf("Drain: %v, want ErrForced", err)
		}
		w.waitClosed(t, 3)
	})
}

// TestDrainBudgetRunsOut: a handler still running when the budget ends (a
// CONNECT tunnel whose client never sends its hello, under a long peek
// timeout) makes Drain return a deadline error instead of waiting for it.
func TestDrainBudgetRunsOut(t *testing.T) {
	h := newHarness(t, "--http-connect", "--peek-timeout", "5m")
	c := h.dial() // closed by its cleanup, before the harness's: the handler ends then
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "CONNECT "+nameA+":443 HTTP/1.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The 200 proves the handler is running; it now waits for a hello.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("CONNECT answer %q, %v", line, err)
	}
	clock := newFakeClock()
	done := drainAsync(h, relay.DrainPlan{Listener: h.ln, UnreadyDelay: time.Second, Timeout: time.Second + 50*time.Millisecond,
		Force: make(chan struct{}), Clock: clock})
	clock.next(t).fire()
	// The budget is on the drain's clock: what is left of it after the
	// unready delay, and nothing ends it but that wait firing.
	budget := clock.next(t)
	if budget.d != 50*time.Millisecond {
		t.Fatalf("budget wait %v, want the 50ms left", budget.d)
	}
	budget.fire()
	err := drainResult(t, done)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "handlers still running") {
		t.Fatalf("Drain: %v, want the deadline error", err)
	}
}

// stuckListener is a listener whose Close does not end a blocked Accept,
// so Serve keeps running after Drain closed it, until release closes.
// accepting receives once Serve is in Accept.
type stuckListener struct {
	net.Listener
	accepting chan struct{}
	release   chan struct{}
}

func (l stuckListener) Accept() (net.Conn, error) {
	select {
	case l.accepting <- struct{}{}:
	default:
	}
	<-l.release
	return nil, net.ErrClosed
}

func (l stuckListener) Close() error { return nil }

// TestDrainForcedWhileServeReturns: Force ends the drain while it waits for
// Serve to return, too.
func TestDrainForcedWhileServeReturns(t *testing.T) {
	h := newUnservedHarness(t)
	ln := stuckListener{Listener: h.ln, accepting: make(chan struct{}, 1), release: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ln) }()
	select {
	case <-ln.accepting:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve never called Accept")
	}
	defer func() {
		close(ln.release)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	clock := newFakeClock()
	force := make(chan struct{})
	done := drainAsync(h, relay.DrainPlan{Listener: ln, UnreadyDelay: time.Second, Timeout: time.Hour,
		Force: force, Clock: clock})
	clock.next(t).fire()
	// Serve is stuck in Accept: only Force can end the drain now.
	close(force)
	if err := drainResult(t, done); !errors.Is(err, relay.ErrForced) {
		t.Fatalf("Drain: %v, want ErrForced", err)
	}
}

// TestDrainBeforeServe: a Drain that starts before Serve is sound. A Serve
// that starts during the unready delay relays until the listener closes,
// Drain waits for it, and a Serve after that returns ErrDrained at once.
func TestDrainBeforeServe(t *testing.T) {
	h := newUnservedHarness(t, slowPeek...)
	clock := newFakeClock()
	done := drainAsync(h, relay.DrainPlan{Listener: h.ln, UnreadyDelay: time.Second, Timeout: time.Hour,
		Force: make(chan struct{}), Clock: clock})
	unready := clock.next(t)
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(h.ln) }()
	var w closeWatch
	w.watch(h.dialTLS(nameA)) // relayed: still accepting while unready
	h.waitMetric(1, "agentgate_relay_connections_active")
	unready.fire()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v, want nil once the listener closed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain closed its listener")
	}
	if err := drainResult(t, done); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	w.waitClosed(t, 1)
	if err := h.srv.Serve(h.ln); !errors.Is(err, relay.ErrDrained) {
		t.Fatalf("Serve after the drain: %v, want ErrDrained", err)
	}
}
