package storm

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/agent"
)

// SlotWidth is the timeline's resolution: client processes and the test
// process count what happened in each wall-clock slot of this width (one
// host, one clock), and the storm sums them.
const SlotWidth = 100 * time.Millisecond

// slotOf is the wall-clock slot holding t.
func slotOf(t time.Time) int64 { return t.UnixNano() / int64(SlotWidth) }

// Offer is what the agents of a client process did in one slot, as they
// saw it (agent.Event).
type Offer struct {
	// Offered counts connection attempts begun: the attempt's presign step,
	// the first thing a WebSocket attempt does after taking its cached
	// credentials (every storm agent uses the WebSocket transport). This is
	// the rate the fleet offers, before anything on the path can queue it.
	Offered int64 `json:"o,omitempty"`
	// Lost counts established connections lost (agent.StepDisconnect).
	Lost int64 `json:"l,omitempty"`
	// Failed attempts by the cause of their first failed step: TCP
	// connects refused at the signalled relay's static IP (RefusedSignalled)
	// or elsewhere (Refused), timeouts at any step (TCP, upgrade, CONNACK),
	// connections reset or closed, and anything else.
	RefusedSignalled int64 `json:"rs,omitempty"`
	Refused          int64 `json:"r,omitempty"`
	Timeouts         int64 `json:"t,omitempty"`
	Resets           int64 `json:"x,omitempty"`
	OtherFailures    int64 `json:"f,omitempty"`
	// Upgraded and Connacked count WebSocket upgrades completed and
	// CONNACKs received, as the agents saw them.
	Upgraded  int64 `json:"u,omitempty"`
	Connacked int64 `json:"c,omitempty"`
	// LatencySumMs and LatencyMaxMs: from an attempt's start to its
	// CONNACK, over the attempts connacked in the slot (milliseconds).
	LatencySumMs int64 `json:"ls,omitempty"`
	LatencyMaxMs int64 `json:"lm,omitempty"`
}

// add adds p's counts to o (the maximum for LatencyMaxMs).
func (o *Offer) add(p Offer) {
	o.Offered += p.Offered
	o.Lost += p.Lost
	o.RefusedSignalled += p.RefusedSignalled
	o.Refused += p.Refused
	o.Timeouts += p.Timeouts
	o.Resets += p.Resets
	o.OtherFailures += p.OtherFailures
	o.Upgraded += p.Upgraded
	o.Connacked += p.Connacked
	o.LatencySumMs += p.LatencySumMs
	o.LatencyMaxMs = max(o.LatencyMaxMs, p.LatencyMaxMs)
}

// Failed is the attempts that failed, whatever the cause.
func (o Offer) Failed() int64 {
	return o.RefusedSignalled + o.Refused + o.Timeouts + o.Resets + o.OtherFailures
}

// tally counts a client process's agent events per slot.
type tally struct {
	// signalled is the static IP:port of the relay the storm signals.
	signalled string
	mu        sync.Mutex
	slots     map[int64]*Offer
	agents    map[int]*attempt
}

// attempt is one agent's current connection attempt.
type attempt struct {
	start  time.Time
	failed bool // its first failure is counted
}

func newTally(signalled string) *tally {
	return &tally{signalled: signalled, slots: map[int64]*Offer{}, agents: map[int]*attempt{}}
}

// record counts agent k's event e in the slot of e.Time.
func (t *tally) record(k int, e agent.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.agents[k]
	if a == nil {
		a = &attempt{}
		t.agents[k] = a
	}
	s := slotOf(e.Time)
	o := t.slots[s]
	if o == nil {
		o = &Offer{}
		t.slots[s] = o
		defer func() {
			if *o == (Offer{}) { // nothing counted: no slot
				delete(t.slots, s)
			}
		}()
	}
	switch {
	case e.Step == agent.StepPresign:
		*a = attempt{start: e.Time}
		o.Offered++
		if e.Err != nil {
			a.failed = true
			o.OtherFailures++
		}
	case e.Step == agent.StepDisconnect:
		o.Lost++
	case e.Err != nil:
		// A refused TCP connect is reported by the TCP step and again by
		// the upgrade it failed: the attempt counts once, by its first.
		if a.failed || a.start.IsZero() {
			return
		}
		a.failed = true
		switch cause(e.Err) {
		case causeRefused:
			if e.Step == agent.StepTCP && e.Detail == t.signalled {
				o.RefusedSignalled++
			} else {
				o.Refused++
			}
		case causeTimeout:
			o.Timeouts++
		case causeReset:
			o.Resets++
		default:
			o.OtherFailures++
		}
	case e.Step == agent.StepUpgrade:
		o.Upgraded++
	case e.Step == agent.StepConnect:
		o.Connacked++
		if !a.start.IsZero() {
			ms := e.Time.Sub(a.start).Milliseconds()
			o.LatencySumMs += ms
			o.LatencyMaxMs = max(o.LatencyMaxMs, ms)
		}
		a.start = time.Time{}
	}
}

// snapshot is a copy of the slots counted so far.
func (t *tally) snapshot() map[int64]Offer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int64]Offer, len(t.slots))
	for s, o := range t.slots {
		out[s] = *o
	}
	return out
}

type failureCause int

const (
	causeOther failureCause = iota
	causeRefused
	causeTimeout
	causeReset
)

// cause sorts a failed step's error: the agent wraps some errors into
// messages (netpath joins the addresses' errors), so the text is read when
// the chain does not say.
func cause(err error) failureCause {
	var ne net.Error
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		return causeRefused
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() ||
		strings.Contains(msg, "timeout") || strings.Contains(msg, "deadline exceeded"):
		return causeTimeout
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(msg, "reset by peer") || strings.Contains(msg, "EOF") || strings.Contains(msg, "broken pipe"):
		return causeReset
	}
	return causeOther
}
