//go:build linux

package relay

// Who owns one direction of a relayed connection (halfPipe.state). Exactly
// one party owns a direction at a time, and only the owner reads its
// source, holds its pipe or buffer, or touches its poller entry.
//
//	                      park (owner)
//	    ┌─────────┐ ───────────────────────▶ ┌─────────┐
//	    │ running │                          │ parked  │
//	    └─────────┘ ◀─────────────────────── └─────────┘
//	         │       wake (poller, CAS)           │
//	         │       reclaim (park, CAS)          │
//	     end │                                    │ endIfParked
//	 (owner) │                                    │ (closeWith, CAS)
//	         ▼                                    │
//	    ┌─────────┐                               │
//	    │  done   │ ◀─────────────────────────────┘
//	    └─────────┘
//
//	state    owner
//	running  the one goroutine in run (at first, the handler in relay, until startParked)
//	parked   the poller's epoll set, no goroutine; the first CAS out of parked wins
//	done     nobody; the session has counted this direction down
//
//	transition   by          when
//	park         the owner   its source would block: Store(parked), then arm the socket
//	wake         the poller  the socket turned readable (data, FIN, error): CAS, then a goroutine runs it
//	reclaim      park        arming failed (socket closed, poller gone): CAS, the caller ends it
//	end          the owner   EOF forwarded, an error, or it could not park: Store(done)
//	endIfParked  closeWith   the connection closes while parked; no goroutine would notice: CAS
//
// Leaving parked is always a compare-and-swap because wake, reclaim and
// endIfParked race for it; the losers do nothing. Whoever enters done
// removes the poller entry and calls session.pumped, once per direction,
// so the session counts both down exactly once.
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
	// Decided while still the owner: once armed, the poller may hand the
	// direction to another goroutine before arm returns.
	add := !h.registered
	h.registered = true
	h.state.Store(stateParked)
	var aerr error
	err := h.srcRaw().Control(func(fd uintptr) { aerr = h.poller().arm(int(fd), h.id, add) })
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
