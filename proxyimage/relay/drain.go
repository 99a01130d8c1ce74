//go:build linux

package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// ErrForced is Drain's answer when DrainPlan.Force closed before the drain
// finished (a second signal): the caller exits at once.
var ErrForced = errors.New("drain forced")

// Clock is the time source of a drain. Tests pass a fake one; nil is the
// real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DrainPlan is the lame-duck sequence (coredns' health plugin, cloudflared):
// report unready, keep serving while the load balancer's health checks
// notice, then stop accepting and close connections in a trickle.
type DrainPlan struct {
	// Listener is the agent listener Serve runs on; Drain closes it.
	Listener net.Listener
	// UnreadyDelay is how long the relay keeps accepting while unready.
	UnreadyDelay time.Duration
	// Timeout is the whole budget, from the start of Drain, UnreadyDelay
	// included.
	Timeout time.Duration
	// Force, when it closes, ends the drain at once (a second signal).
	Force <-chan struct{}
	// Signal names what started the drain, for the log line.
	Signal string
	// Clock defaults to the real clock.
	Clock Clock
}

// Drain runs the shutdown sequence and returns when every connection
// handler has finished (nil), when Force closed (ErrForced), or when the
// budget ran out with handlers still running (an error wrapping
// context.DeadlineExceeded). In order:
//
//  1. report unready (SetDraining), keep accepting;
//  2. after UnreadyDelay, close the listener and wait for Serve to return;
//  3. close relayed connections evenly over 90% of what is left of the
//     budget (the rest is for the last handlers to log and exit);
//  4. wait for the handlers until the budget ends.
//
// Force is honoured at every step. Call Drain once Serve runs on Listener.
func (s *Server) Drain(p DrainPlan) error {
	clock := p.Clock
	if clock == nil {
		clock = realClock{}
	}
	start := clock.Now()
	s.SetDraining()
	s.log.Info("draining", "signal", p.Signal, "unready_delay", p.UnreadyDelay.String(),
		"drain_timeout", p.Timeout.String(), "connections", s.ActiveSessions())
	select {
	case <-clock.After(p.UnreadyDelay):
	case <-p.Force:
		return ErrForced
	}
	p.Listener.Close()
	s.serving.Wait()
	left := p.Timeout - clock.Now().Sub(start)
	window := left * 9 / 10
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()
	go func() {
		select {
		case <-p.Force:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.log.Info("stopped accepting", "connections", s.ActiveSessions(), "close_window", window.String())
	s.closeSpread(ctx, window, clock)
	waitErr := s.Wait(ctx)
	select {
	case <-p.Force:
		return ErrForced
	default:
	}
	if waitErr != nil {
		s.log.Warn("drain deadline reached with handlers still running", "err", waitErr)
		return fmt.Errorf("drain deadline reached with handlers still running: %w", waitErr)
	}
	s.log.Info("drained", "elapsed", clock.Now().Sub(start).Seconds())
	return nil
}

// CloseSpread closes every relayed connection, evenly spaced over window, so
// agents reconnect elsewhere in a trickle instead of one storm. Connections
// that appear while it runs are closed at the end. If ctx ends first, the
// rest are closed at once.
func (s *Server) CloseSpread(ctx context.Context, window time.Duration) {
	s.closeSpread(ctx, window, realClock{})
}

func (s *Server) closeSpread(ctx context.Context, window time.Duration, clock Clock) {
	list := s.sessions.list(false)
	if n := len(list); n > 0 {
		step := window / time.Duration(n)
		start := clock.Now()
		for i, ss := range list {
			if wait := start.Add(time.Duration(i) * step).Sub(clock.Now()); wait > 0 && ctx.Err() == nil {
				select {
				case <-clock.After(wait):
				case <-ctx.Done():
				}
			}
			ss.closeWith(CloseDrain)
		}
	}
	// Sessions handed off while we were closing (their hello was in flight
	// when the listener closed) are closed now; relay closes any later one.
	for _, ss := range s.sessions.list(true) {
		ss.closeWith(CloseDrain)
	}
	s.cancel()
}
