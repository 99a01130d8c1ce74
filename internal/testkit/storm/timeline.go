package storm

import "time"

// Seen is what the stand-ins saw in one slot: credentials calls, WebSocket
// upgrades accepted by the IoT gateway stand-in, MQTT sessions established
// by the broker (CONNECTs) and topic filters subscribed; and the QoS 1
// messages the storm itself published to the agents through the broker
// (work the same process does).
type Seen struct {
	Credentials, Upgrades, Connects, Filters, Published int64
}

func (s *Seen) add(p Seen) {
	s.Credentials += p.Credentials
	s.Upgrades += p.Upgrades
	s.Connects += p.Connects
	s.Filters += p.Filters
	s.Published += p.Published
}

// Slot is one SlotWidth of a storm: what the agents did and what the
// stand-ins saw.
type Slot struct {
	Agents Offer
	Seen   Seen
}

func (s *Slot) add(p Slot) {
	s.Agents.add(p.Agents)
	s.Seen.add(p.Seen)
}

// Timeline is a storm slot by slot, from the slot of the signal on.
type Timeline struct {
	// Start is the wall-clock slot of the signal (slotOf); Slots[i] is
	// slot Start+i.
	Start int64
	Slots []Slot
}

// newTimeline covers the slots from start to end, both included.
func newTimeline(start, end int64) *Timeline {
	return &Timeline{Start: start, Slots: make([]Slot, max(end-start+1, 0))}
}

// at is slot s, nil outside the timeline.
func (t *Timeline) at(s int64) *Slot {
	if i := s - t.Start; i >= 0 && i < int64(len(t.Slots)) {
		return &t.Slots[i]
	}
	return nil
}

// addAgents adds a client process's slots; those outside are dropped.
func (t *Timeline) addAgents(slots map[int64]Offer) {
	for s, o := range slots {
		if p := t.at(s); p != nil {
			p.Agents.add(o)
		}
	}
}

// addSeen adds the stand-ins' slots; those outside are dropped.
func (t *Timeline) addSeen(slots map[int64]Seen) {
	for s, v := range slots {
		if p := t.at(s); p != nil {
			p.Seen.add(v)
		}
	}
}

// slotsPerWindow is how many slots make the rates' one-second window.
const slotsPerWindow = int(time.Second / SlotWidth)

// Seconds sums the slots per second since the signal (the last second may
// be partial).
func (t *Timeline) Seconds() []Slot {
	var out []Slot
	for i, s := range t.Slots {
		if i%slotsPerWindow == 0 {
			out = append(out, Slot{})
		}
		out[len(out)-1].add(s)
	}
	return out
}

// Peak is the most of f in any window of one second (slotsPerWindow
// consecutive slots), and the offset of that window's first slot from the
// signal; a timeline shorter than a window gives its whole sum.
func (t *Timeline) Peak(f func(Slot) int64) (per int64, at time.Duration) {
	var sum int64
	for i, s := range t.Slots {
		sum += f(s)
		if i >= slotsPerWindow {
			sum -= f(t.Slots[i-slotsPerWindow])
		}
		first := max(i-slotsPerWindow+1, 0)
		if sum > per {
			per, at = sum, time.Duration(first)*SlotWidth
		}
	}
	return per, at
}

// Total is the sum of f over the timeline.
func (t *Timeline) Total(f func(Slot) int64) int64 {
	var n int64
	for _, s := range t.Slots {
		n += f(s)
	}
	return n
}

// Rates are a storm's peaks (the most in any one-second window of the
// timeline) and totals; the peaks of attempts, upgrades and CONNECTs also
// with their window's offset from the signal.
type Rates struct {
	// Offered is connection attempts the agents began; Reaching those of
	// them not refused at TCP (each refusal counted in the slot it was
	// reported, which on loopback is the attempt's own): what would reach
	// IoT if nothing on the path queued them. The rest are what the
	// stand-ins saw.
	PeakOffered, PeakReaching, PeakCredentials, PeakUpgrades, PeakConnects, PeakSubscriptions int64
	PeakOfferedAt, PeakReachingAt, PeakUpgradesAt, PeakConnectsAt                             time.Duration
	Offered, Reaching, Credentials, Upgrades, Connects, Subscriptions                         int64
}

// Column readers of a Slot.
var (
	colOffered       = func(s Slot) int64 { return s.Agents.Offered }
	colReaching      = func(s Slot) int64 { return s.Agents.Offered - s.Agents.RefusedSignalled - s.Agents.Refused }
	colCredentials   = func(s Slot) int64 { return s.Seen.Credentials }
	colUpgrades      = func(s Slot) int64 { return s.Seen.Upgrades }
	colConnects      = func(s Slot) int64 { return s.Seen.Connects }
	colSubscriptions = func(s Slot) int64 { return s.Seen.Filters }
)

// Rates computes the timeline's peaks and totals.
func (t *Timeline) Rates() Rates {
	var r Rates
	r.PeakOffered, r.PeakOfferedAt = t.Peak(colOffered)
	r.PeakReaching, r.PeakReachingAt = t.Peak(colReaching)
	r.Reaching = t.Total(colReaching)
	r.PeakCredentials, _ = t.Peak(colCredentials)
	r.PeakUpgrades, r.PeakUpgradesAt = t.Peak(colUpgrades)
	r.PeakConnects, r.PeakConnectsAt = t.Peak(colConnects)
	r.PeakSubscriptions, _ = t.Peak(colSubscriptions)
	r.Offered, r.Credentials, r.Upgrades = t.Total(colOffered), t.Total(colCredentials), t.Total(colUpgrades)
	r.Connects, r.Subscriptions = t.Total(colConnects), t.Total(colSubscriptions)
	return r
}
