package storm

import (
	"bytes"
	"net/netip"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// brokerWatch is a mochi hook counting what the broker sees: MQTT sessions
// established (CONNECTs accepted), topic filters subscribed, and which
// client IDs are connected now.
type brokerWatch struct {
	mqtt.HookBase
	// seen counts sessions established (CONNECTs) and topic filters
	// subscribed (as IoT counts its subscription rate) per slot.
	seen *seenSlots

	// takeovers gate publishing around mochi's session takeover
	// (publishTo), one stripe per hash of the client ID, so a publish holds
	// up only the takeovers of its own stripe: with one lock, every CONNECT
	// waited behind the storm's publish rounds (the mutex profile of a
	// 5,000-agent storm showed ~0.3 s per CONNECT).
	takeovers [takeoverStripes]takeoverStripe

	mu         sync.Mutex
	current    map[string]*mqtt.Client
	subscribed map[string]bool
	// since is the storm's start; back holds the client IDs whose session
	// was established again after it.
	since time.Time
	back  map[string]bool
	// changed is signalled (non-blocking) at every change.
	changed chan struct{}
}

func newBrokerWatch() *brokerWatch {
	w := &brokerWatch{seen: newSeenSlots(), current: map[string]*mqtt.Client{}, subscribed: map[string]bool{}, back: map[string]bool{}, changed: make(chan struct{}, 1)}
	for i := range w.takeovers {
		w.takeovers[i].establishing = map[string]bool{}
	}
	return w
}

// takeoverStripes is how many locks the takeover gate is split over.
const takeoverStripes = 64

// takeoverStripe is the client IDs of one stripe whose session mochi is
// taking over, and the lock a publish to one of them holds.
type takeoverStripe struct {
	mu           sync.Mutex
	establishing map[string]bool
}

// stripe is clientID's takeover stripe (FNV-1a).
func (w *brokerWatch) stripe(clientID string) *takeoverStripe {
	h := uint32(2166136261)
	for i := 0; i < len(clientID); i++ {
		h = (h ^ uint32(clientID[i])) * 16777619
	}
	return &w.takeovers[h%takeoverStripes]
}

func (w *brokerWatch) ID() string { return "storm-watch" }

func (w *brokerWatch) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnSubscribed, mqtt.OnDisconnect}, []byte{b})
}

// OnSessionEstablish marks cl's client ID as taking over its session. mochi
// v2.7.9 loses a QoS 1 message published to a session while a reconnecting
// client inherits it (between this hook and OnSessionEstablished: it clones
// the old client's inflight messages, then moves the subscriptions; see
// docs/agent.md, TestRelayKilledAgentReconnectsThroughTheOtherNoQoS1Loss),
// a broker stand-in defect AWS IoT does not share; publishTo holds off
// for that window so the storm counts the path's losses, not mochi's.
func (w *brokerWatch) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	s := w.stripe(cl.ID)
	s.mu.Lock()
	s.establishing[cl.ID] = true
	s.mu.Unlock()
}

// publishTo publishes unless clientID's session is being taken over; it
// reports whether it published.
func (w *brokerWatch) publishTo(b *mqtt.Server, clientID, topic string, payload []byte) (bool, error) {
	s := w.stripe(clientID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.establishing[clientID] {
		return false, nil
	}
	w.seen.add(time.Now(), Seen{Published: 1})
	return true, b.Publish(topic, payload, false, 1)
}

func (w *brokerWatch) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *brokerWatch) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if cl.Net.Inline {
		return
	}
	s := w.stripe(cl.ID)
	s.mu.Lock()
	delete(s.establishing, cl.ID)
	s.mu.Unlock()
	w.seen.add(time.Now(), Seen{Connects: 1})
	w.mu.Lock()
	w.current[cl.ID] = cl
	if !w.since.IsZero() {
		w.back[cl.ID] = true
	}
	w.mu.Unlock()
	w.poke()
}

func (w *brokerWatch) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if cl.Net.Inline {
		return
	}
	w.seen.add(time.Now(), Seen{Filters: int64(len(pk.Filters))})
	ok := true
	for _, c := range codes {
		ok = ok && c < 0x80
	}
	w.mu.Lock()
	if ok {
		w.subscribed[cl.ID] = true
	}
	w.mu.Unlock()
	w.poke()
}

func (w *brokerWatch) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	w.mu.Lock()
	if w.current[cl.ID] == cl {
		delete(w.current, cl.ID)
	}
	w.mu.Unlock()
	w.poke()
}

// state returns how many clients are connected, how many have subscribed
// since the start, and how many were established again since the storm
// began.
func (w *brokerWatch) state() (connected, subscribed, back int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.current), len(w.subscribed), len(w.back)
}

// startStorm marks the storm's start: sessions established from now on
// count as back.
func (w *brokerWatch) startStorm(at time.Time) {
	w.mu.Lock()
	w.since = at
	w.mu.Unlock()
}

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

// finish takes a last reading and stops.
// finish takes a last reading and stops; calls after the first only wait.
func (r *counterReader) finish() {
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

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
