//go:build linux

package relay

import "sync"

// registry is the set of relayed connections: the idle sweep and the
// drain walk it. A session joins once fully built and leaves in finish.
// After closeAll, a session that joins late (its hello was in flight when
// the listener closed) is told to close at once.
type registry struct {
	mu        sync.Mutex
	set       map[*session]struct{}
	closedAll bool
}

// add registers ss and reports whether the drain already closed everyone.
func (r *registry) add(ss *session) (late bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.set == nil {
		r.set = make(map[*session]struct{})
	}
	r.set[ss] = struct{}{}
	return r.closedAll
}

func (r *registry) remove(ss *session) {
	r.mu.Lock()
	delete(r.set, ss)
	r.mu.Unlock()
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.set)
}

// list returns the registered sessions; closeAll, when true, also marks the
// registry so that later arrivals are closed by whoever adds them.
func (r *registry) list(closeAll bool) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	if closeAll {
		r.closedAll = true
	}
	out := make([]*session, 0, len(r.set))
	for ss := range r.set {
		out = append(out, ss)
	}
	return out
}

// idleSince appends to dst the sessions whose last byte either way is at or
// before cutoff (unix nanoseconds).
func (r *registry) idleSince(dst []*session, cutoff int64) []*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ss := range r.set {
		if ss.last.Load() <= cutoff {
			dst = append(dst, ss)
		}
	}
	return dst
}
