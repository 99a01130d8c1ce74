package storm

import (
	"sync"
	"time"
)

// seenSlots counts the stand-ins' events per slot, as they happen (the
// broker hook) or spread over the time between two readings of a counter
// (the gateway's and the credentials provider's totals).
type seenSlots struct {
	mu    sync.Mutex
	slots map[int64]Seen
}

func newSeenSlots() *seenSlots { return &seenSlots{slots: map[int64]Seen{}} }

// add counts v in the slot of at.
func (c *seenSlots) add(at time.Time, v Seen) {
	c.mu.Lock()
	s := c.slots[slotOf(at)]
	s.add(v)
	c.slots[slotOf(at)] = s
	c.mu.Unlock()
}

// addSpread counts n events that happened between from and to (a counter
// read at both) in the slots they overlap, in proportion to the overlap,
// whole events only, n in all; set says which field they are.
func (c *seenSlots) addSpread(from, to time.Time, n int64, set func(*Seen, int64)) {
	if n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for s, k := range spread(from, to, n) {
		v := c.slots[s]
		set(&v, k)
		c.slots[s] = v
	}
}

// snapshot is a copy of the slots.
func (c *seenSlots) snapshot() map[int64]Seen {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]Seen, len(c.slots))
	for s, v := range c.slots {
		out[s] = v
	}
	return out
}

// spread shares n events that happened in (from, to] among the slots that
// interval overlaps, in proportion to the overlap, by cumulative rounding
// so the shares are whole and sum to n; an empty interval puts them all in
// the slot of to.
func spread(from, to time.Time, n int64) map[int64]int64 {
	out := map[int64]int64{}
	if !to.After(from) {
		out[slotOf(to)] = n
		return out
	}
	total := float64(to.Sub(from))
	var given int64
	for s := slotOf(from); s <= slotOf(to); s++ {
		end := time.Unix(0, (s+1)*int64(SlotWidth))
		if end.After(to) {
			end = to
		}
		cum := int64(float64(n)*float64(end.Sub(from))/total + 0.5)
		if s == slotOf(to) {
			cum = n
		}
		if cum > given {
			out[s] = cum - given
			given = cum
		}
	}
	return out
}

// counterReader samples the stand-ins' cumulative counters every interval
// and spreads each increase over the slots since the previous reading.
type counterReader struct {
	stop, done chan struct{}
	once       sync.Once
}

// startCounters reads read (credentials calls, upgrades) every interval into c.
func startCounters(c *seenSlots, every time.Duration, read func() (creds, upgrades int64)) *counterReader {
	r := &counterReader{stop: make(chan struct{}), done: make(chan struct{})}
	prevAt := time.Now()
	prevCreds, prevUps := read()
	sample := func() {
		now := time.Now()
		creds, ups := read()
		c.addSpread(prevAt, now, creds-prevCreds, func(s *Seen, k int64) { s.Credentials += k })
		c.addSpread(prevAt, now, ups-prevUps, func(s *Seen, k int64) { s.Upgrades += k })
		prevAt, prevCreds, prevUps = now, creds, ups
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return r
}

// finish takes a last reading and stops; calls after the first only wait.
func (r *counterReader) finish() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}
