//go:build linux

package relay

import (
	"context"
	"runtime/debug"
	"time"
)

// Background work that keeps the relay honest while connections come and
// go: the idle sweep, upstream probes (readiness and its gauges) and
// returning a connection storm's memory.

// sweepIdle closes sessions with no byte either way for the idle timeout.
// Parked directions have no goroutine and no deadline, so time is checked
// here, a few times per idle period.
func (s *Server) sweepIdle(ctx context.Context) {
	every := min(max(s.cfg.IdleTimeout/8, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle []*session
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			idle = s.sessions.idleSince(idle[:0], now.Add(-s.cfg.IdleTimeout).UnixNano())
			for _, ss := range idle {
				ss.closeWith(CloseIdle)
			}
		}
	}
}

// StartProbes probes upstreams in the background until ctx ends.
func (s *Server) StartProbes(ctx context.Context) {
	go s.probeUpstreams(ctx, s.cfg.ProbeInterval)
}

// probeUpstreams dials every distinct upstream each interval and records
// which answered; readiness needs one.
func (s *Server) probeUpstreams(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.probeOnce(ctx, min(interval, s.cfg.DialTimeout))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) probeOnce(ctx context.Context, timeout time.Duration) {
	up := make(map[string]bool, len(s.routes.upstreams))
	for _, u := range s.routes.upstreams {
		if _, done := up[u]; done {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := s.dialer.DialContext(dctx, "tcp", u)
		cancel()
		up[u] = err == nil
		if err == nil {
			c.Close()
		} else {
			s.log.Debug("upstream probe failed", "upstream", u, "err", err)
		}
	}
	s.readiness.setProbed(up)
	for sni, u := range s.routes.upstream {
		v := 0.0
		if up[u] {
			v = 1
		}
		s.m.UpstreamUp.WithLabelValues(sni).Set(v)
	}
	s.updateReadyGauge()
}

// stormSessions is how many new sessions count as a connection storm (agents
// reconnecting after a relay restart or a network blip).
const stormSessions = 256

// releaseAfterStorms returns a connection storm's garbage to the operating
// system once the storm is over: when at least minSessions sessions were
// relayed since the last release and none in the last period, it runs
// debug.FreeOSMemory (one forced GC, then the freed pages go back). After a
// storm the relay holds thousands of idle connections for hours; without
// this, the set-up garbage (hello buffers, dial state, handler stacks) stays
// in RSS until the heap grows back to the GC's target, which an idle relay
// never does. A steady trickle of connections never triggers it, so the
// normal GC pacing applies there.
func (s *Server) releaseAfterStorms(ctx context.Context, period time.Duration, minSessions int64) {
	t := time.NewTicker(period)
	defer t.Stop()
	var seen, released int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.opened.Load()
		if stormOver(now, seen, released, minSessions) {
			debug.FreeOSMemory()
			released = now
			s.m.MemoryReleases.Inc()
		}
		seen = now
	}
}

// stormOver is releaseAfterStorms' rule: the count of sessions ever opened
// has not moved since the last tick (seen) and grew by at least minSessions
// since the last release.
func stormOver(opened, seen, released, minSessions int64) bool {
	return opened == seen && opened-released >= minSessions
}
