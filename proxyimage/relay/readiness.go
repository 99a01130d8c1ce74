//go:build linux

package relay

import (
	"sync"
	"sync/atomic"
)

// Ready is the readiness rule, kept pure so it is tested on its own: a relay
// is ready when it is not draining and at least one upstream answered the
// last TCP probe. Before the first probe completes nothing is known to be up.
func Ready(draining bool, upstreamUp []bool) bool {
	if draining {
		return false
	}
	for _, up := range upstreamUp {
		if up {
			return true
		}
	}
	return false
}

// readiness is what Ready is computed from: the lame-duck flag and the
// last probe round's results.
type readiness struct {
	draining   atomic.Bool
	mu         sync.Mutex
	upstreamUp map[string]bool
	probed     bool
}

func (r *readiness) ready() bool {
	r.mu.Lock()
	ups := make([]bool, 0, len(r.upstreamUp))
	if r.probed {
		for _, up := range r.upstreamUp {
			ups = append(ups, up)
		}
	}
	r.mu.Unlock()
	return Ready(r.draining.Load(), ups)
}

// probed records one probe round: upstream address → answered.
func (r *readiness) setProbed(up map[string]bool) {
	r.mu.Lock()
	r.upstreamUp = up
	r.probed = true
	r.mu.Unlock()
}

// Ready reports readiness (see the pure Ready function).
func (s *Server) Ready() bool { return s.readiness.ready() }

// SetDraining makes the relay report unready from now on (lame duck); it
// keeps accepting until the caller closes the listener.
func (s *Server) SetDraining() {
	s.readiness.draining.Store(true)
	s.m.DrainingGauge.Set(1)
	s.updateReadyGauge()
}

func (s *Server) updateReadyGauge() {
	v := 0.0
	if s.Ready() {
		v = 1
	}
	s.m.Ready.Set(v)
}
