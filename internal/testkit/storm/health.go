package storm

import (
	"net/netip"
	"sync"
	"time"
)

// HealthFlip is one status change of a static IP's Route 53 health check.
type HealthFlip struct {
	// After is the time since the signal.
	After   time.Duration
	Addr    netip.Addr
	Healthy bool
}

// healthFlips records the Route 53 health-check stand-in's status changes.
type healthFlips struct {
	mu    sync.Mutex
	at    []time.Time
	flips []HealthFlip
}

func (h *healthFlips) record(addr netip.Addr, healthy bool) {
	h.mu.Lock()
	h.at = append(h.at, time.Now())
	h.flips = append(h.flips, HealthFlip{Addr: addr, Healthy: healthy})
	h.mu.Unlock()
}

// since returns the changes from t0 on, timed from it.
func (h *healthFlips) since(t0 time.Time) []HealthFlip {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []HealthFlip
	for i, f := range h.flips {
		if !h.at[i].Before(t0) {
			f.After = h.at[i].Sub(t0)
			out = append(out, f)
		}
	}
	return out
}
