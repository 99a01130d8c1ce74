//go:build linux

package relay

import (
	"net/netip"
	"sync"
	"time"
)

// sourceLimiter is a token bucket per source (IPv4 address or IPv6 /64) for new connections. Its map
// is bounded: buckets that have refilled completely carry no information and
// are swept; if the map is still full, unknown sources are let through
// (counted by the caller's cap on connections) rather than locking out
// legitimate agents because an attacker filled the table.
type sourceLimiter struct {
	mu         sync.Mutex
	rate       float64 // tokens per second
	burst      float64
	maxEntries int
	buckets    map[netip.Addr]*bucket
	lastSweep  time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newSourceLimiter(rate float64, burst, maxEntries int) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: float64(burst), maxEntries: maxEntries, buckets: make(map[netip.Addr]*bucket)}
}

// allow takes one token for src at time now; it reports false when src is over its rate.
func (l *sourceLimiter) allow(src netip.Addr, now time.Time) bool {
	if l == nil || l.rate <= 0 {
		return true
	}
	src = sourceKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[src]
	if !ok {
		if len(l.buckets) >= l.maxEntries || now.Sub(l.lastSweep) > l.fullAfter() {
			l.sweep(now)
		}
		if len(l.buckets) >= l.maxEntries {
			return true
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[src] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sourceKey is the unit a rate applies to: an IPv4 address, or an IPv6 /64
// (one customer site or host usually owns a whole /64, and rotating through
// it must not multiply the allowance).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// fullAfter is how long an untouched bucket takes to refill completely.
func (l *sourceLimiter) fullAfter() time.Duration {
	return time.Duration(l.burst / l.rate * float64(time.Second))
}

func (l *sourceLimiter) sweep(now time.Time) {
	l.lastSweep = now
	full := l.fullAfter()
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}

func (l *sourceLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
