//go:build linux

package relay

// Who owns one direction of a relayed connection (halfPipe.state). Exactly
// one party owns a direction at a time, and only the owner touches its
// socket reads, its pipe or buffer, and its poller entry:
//
//	           relay builds it
//	                 │
//	                 ▼
//	       ┌───────────────────┐ park: Store(parked), then arm the socket
//	       │      running      │────────────────────────────────┐
//	       │ owner: the one    │                                │
//	       │ goroutine in run  │◀───────────────────────┐       │
//	       │ (or startParked)  │ wake: poller saw the   │       ▼
//	       └───────────────────┘ socket readable,       │ ┌───────────────────┐
//	                 │           CAS parked→running     └─│      parked       │
//	                 │           and starts a goroutine;  │ owner: the poller │
//	                 │           reclaim: arming failed,  │ (epoll set, no    │
//	                 │           park takes it back       │ goroutine)        │
//	                 │           with the same CAS        └───────────────────┘
//	end: EOF, error, │                                           │
//	or cannot park   │               endIfParked: closeWith,     │
//	(Store(done))    ▼               CAS parked→done             │
//	       ┌───────────────────┐◀──────────────────────────────────┘
//	       │       done        │
//	       │ owner: nobody     │
//	       └───────────────────┘
//
// Leaving parked is always a compare-and-swap, because the poller (wake),
// a close (endIfParked) and a failed arm (reclaim) can race for it: the
// winner owns the direction, the losers do nothing. Entering done happens
// once per direction, and whoever does it removes the poller entry and
// calls session.pumped, so the session counts both directions down exactly
// once. running and done are entered only by the owner, so they are stores.
const (
	stateRunning int32 = iota
	stateParked
	stateDone
)

// startParked hands a new direction to the poller, or runs it if it cannot
// be parked (its socket is already closed), so that it ends.
func (h *halfPipe) startParked() {
	if parked, _ := h.park(); !parked {
		go h.resume()
	}
}

// park (running → parked) hands the direction to the poller and reports
// true, or reports false with the reason if the caller still owns the
// direction (reclaim).
func (h *halfPipe) park() (bool, error) {
	h.state.Store(stateParked)
	var aerr error
	err := h.srcRaw().Control(func(fd uintptr) { aerr = h.poller().arm(int(fd), h.id) })
	if err == nil {
		err = aerr
	}
	if err == nil {
		return true, nil
	}
	// Take the direction back unless the poller or a close already has.
	if !h.state.CompareAndSwap(stateParked, stateRunning) {
		return true, nil
	}
	return false, err
}

// wake (parked → running) is the poller's claim on a readable direction;
// on true the caller must run it.
func (h *halfPipe) wake() bool {
	return h.state.CompareAndSwap(stateParked, stateRunning)
}

// endIfParked (parked → done) ends a parked direction for a close: it has
// no goroutine that would notice the closed socket.
func (h *halfPipe) endIfParked() {
	if h.state.CompareAndSwap(stateParked, stateDone) {
		h.poller().remove(h)
		h.ss.pumped(nil)
	}
}

// end (running → done) finishes the direction; the caller owns it.
func (h *halfPipe) end(err error) {
	h.state.Store(stateDone)
	h.poller().remove(h)
	h.ss.pumped(err)
}
