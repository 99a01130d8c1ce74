package storm

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// brokerWatch is a mochi hook counting what the broker sees: MQTT sessions
// established (CONNECTs accepted), topic filters subscribed, and which
// client IDs are connected now.
type brokerWatch struct {
	mqtt.HookBase
	connects   atomic.Int64
	subscribes atomic.Int64 // topic filters, as IoT counts its subscription rate

	// estMu and establishing gate publishing around mochi's session
	// takeover (publishTo).
	estMu        sync.Mutex
	establishing map[string]bool

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
	return &brokerWatch{establishing: map[string]bool{}, current: map[string]*mqtt.Client{}, subscribed: map[string]bool{}, back: map[string]bool{}, changed: make(chan struct{}, 1)}
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
	w.estMu.Lock()
	w.establishing[cl.ID] = true
	w.estMu.Unlock()
}

// publishTo publishes unless clientID's session is being taken over; it
// reports whether it published.
func (w *brokerWatch) publishTo(b *mqtt.Server, clientID, topic string, payload []byte) (bool, error) {
	w.estMu.Lock()
	defer w.estMu.Unlock()
	if w.establishing[clientID] {
		return false, nil
	}
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
	w.estMu.Lock()
	delete(w.establishing, cl.ID)
	w.estMu.Unlock()
	w.connects.Add(1)
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
	w.subscribes.Add(int64(len(pk.Filters)))
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

// sample is the stand-ins' counters at one instant.
type sample struct {
	at                                 time.Time
	creds, upgrades, connects, filters int64
}

// sampler records the counters every interval until stopped.
type sampler struct {
	read    func() sample
	stop    chan struct{}
	done    chan struct{}
	samples []sample
}

func startSampler(every time.Duration, read func() sample) *sampler {
	s := &sampler{read: read, stop: make(chan struct{}), done: make(chan struct{})}
	s.samples = append(s.samples, read())
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.samples = append(s.samples, read())
				return
			case <-t.C:
				s.samples = append(s.samples, read())
			}
		}
	}()
	return s
}

// finish stops the sampler and returns its samples.
func (s *sampler) finish() []sample {
	close(s.stop)
	<-s.done
	return s.samples
}

// Rates are a storm's peak per-second rates (the most in any window of one
// second, from counters sampled every 100 ms) and totals.
type Rates struct {
	PeakCredentials, PeakUpgrades, PeakConnects, PeakSubscriptions float64
	Credentials, Upgrades, Connects, Subscriptions                 int64
}

// peakRates computes Rates over samples; window is the rate's window.
func peakRates(samples []sample, window time.Duration) Rates {
	var r Rates
	if len(samples) == 0 {
		return r
	}
	first, last := samples[0], samples[len(samples)-1]
	r.Credentials, r.Upgrades = last.creds-first.creds, last.upgrades-first.upgrades
	r.Connects, r.Subscriptions = last.connects-first.connects, last.filters-first.filters
	j := 0
	for i := range samples {
		for j < len(samples) && samples[j].at.Sub(samples[i].at) < window {
			j++
		}
		if j == len(samples) {
			break
		}
		a, b := samples[i], samples[j]
		secs := b.at.Sub(a.at).Seconds()
		r.PeakCredentials = max(r.PeakCredentials, float64(b.creds-a.creds)/secs)
		r.PeakUpgrades = max(r.PeakUpgrades, float64(b.upgrades-a.upgrades)/secs)
		r.PeakConnects = max(r.PeakConnects, float64(b.connects-a.connects)/secs)
		r.PeakSubscriptions = max(r.PeakSubscriptions, float64(b.filters-a.filters)/secs)
	}
	if r.PeakConnects == 0 && r.Connects > 0 { // shorter than a window: the average
		secs := max(last.at.Sub(first.at).Seconds(), window.Seconds())
		r.PeakCredentials, r.PeakUpgrades = float64(r.Credentials)/secs, float64(r.Upgrades)/secs
		r.PeakConnects, r.PeakSubscriptions = float64(r.Connects)/secs, float64(r.Subscriptions)/secs
	}
	return r
}
