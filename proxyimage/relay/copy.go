//go:build linux

package relay

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Copy path labels, used in the copy metric label and the log field.
const (
	copySplice   = "splice"
	copyBuffered = "buffered"
)

const (
	// maxSpliceChunk is one default pipe's capacity (16 pages).
	maxSpliceChunk = 64 << 10
	// bufferSize is the user-space buffer of the buffered path, borrowed per burst.
	bufferSize = 32 << 10
)

var errIdle = errors.New("idle timeout")

// pipe is a kernel pipe used as the splice intermediary. It is only ever
// borrowed while data is moving and is always empty when returned.
type pipe struct{ r, w int }

// pipePool keeps a few empty pipes for reuse. A channel, not a sync.Pool:
// the GC may drop sync.Pool entries, which would leak the two descriptors.
type pipePool struct{ free chan *pipe }

func newPipePool(size int) *pipePool { return &pipePool{free: make(chan *pipe, size)} }

func (p *pipePool) get() (*pipe, error) {
	select {
	case pp := <-p.free:
		return pp, nil
	default:
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	return &pipe{r: fds[0], w: fds[1]}, nil
}

func (p *pipePool) put(pp *pipe) {
	select {
	case p.free <- pp:
	default:
		pp.close()
	}
}

func (pp *pipe) close() {
	unix.Close(pp.r)
	unix.Close(pp.w)
}

// closeAll closes the pooled pipes (at shutdown).
func (p *pipePool) closeAll() {
	for {
		select {
		case pp := <-p.free:
			pp.close()
		default:
			return
		}
	}
}

var bufferPool = sync.Pool{New: func() any { b := make([]byte, bufferSize); return &b }}

// halfPipe is one direction of a relayed connection. It lives inside its
// session (one allocation per connection) and reaches everything else
// through it: an idle connection's bookkeeping is the session alone.
type halfPipe struct {
	ss         *session
	id         uint64 // the poller's key
	bytes      atomic.Int64
	state      atomic.Int32
	toUpstream bool // client → upstream; also names the goroutine
	buffered   bool // use the user-space buffer path
}

func (h *halfPipe) dst() *net.TCPConn {
	if h.toUpstream {
		return h.ss.upstream
	}
	return h.ss.client
}

func (h *halfPipe) srcRaw() syscall.RawConn {
	if h.toUpstream {
		return h.ss.clientRaw
	}
	return h.ss.upstreamRaw
}

func (h *halfPipe) dstRaw() syscall.RawConn {
	if h.toUpstream {
		return h.ss.upstreamRaw
	}
	return h.ss.clientRaw
}

// srcSide and dstSide name each end for close reasons.
func (h *halfPipe) srcSide() string {
	if h.toUpstream {
		return CloseClientError
	}
	return CloseUpstreamError
}

func (h *halfPipe) dstSide() string {
	if h.toUpstream {
		return CloseUpstreamError
	}
	return CloseClientError
}

func (h *halfPipe) poller() *poller { return h.ss.s.poller }

// resume runs the direction under a name that says which way it copies.
func (h *halfPipe) resume() {
	if h.toUpstream {
		h.ss.clientToUpstream(h)
	} else {
		h.ss.upstreamToClient(h)
	}
}

// end finishes the direction (the caller owns it).
func (h *halfPipe) end(err error) {
	h.state.Store(stateDone)
	h.poller().remove(h)
	h.ss.pumped(err)
}

func (h *halfPipe) srcErr(err error) error {
	if err == nil || errors.Is(err, errIdle) {
		return err
	}
	return &sideError{side: h.srcSide(), err: err}
}

func (h *halfPipe) dstErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errIdle // dst accepted nothing for the idle timeout
	}
	return &sideError{side: h.dstSide(), err: err}
}

// burstEnd says why a burst stopped.
type burstEnd int

const (
	burstDrained burstEnd = iota // src would block: park
	burstEOF                     // src sent FIN: half-close dst
	burstAgain                   // stopped early (a deadline fired inside it): go on
)

// run moves bytes from src to dst until src's EOF (then half-closes dst) or
// an error, and parks the direction whenever src has nothing to read. It
// never holds a pipe or a buffer (or even a goroutine) while waiting: when
// the socket is empty it hands the direction to the poller and returns.
// It reads without peeking first: a burst that finds nothing costs one
// non-blocking read, and the poller only resumes readable directions.
func (h *halfPipe) run() {
	for {
		why, err := h.burst()
		switch {
		case err != nil:
			h.end(err)
			return
		case why == burstEOF:
			h.end(h.dstErr(h.dst().CloseWrite()))
			return
		case why == burstDrained:
			parked, err := h.park()
			if parked {
				return
			}
			// Could not park (socket closed, or the poller is gone): end
			// rather than spin.
			h.end(h.srcErr(err))
			return
		}
	}
}

// startParked hands a new direction to the poller, or runs it if it cannot
// be parked (its socket is already closed), so that it ends.
func (h *halfPipe) startParked() {
	if parked, _ := h.park(); !parked {
		go h.resume()
	}
}

// park hands the direction to the poller and reports true, or reports
// false with the reason if the caller still owns the direction.
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

// burst moves everything src has queued now, then returns the pipe or
// buffer.
func (h *halfPipe) burst() (burstEnd, error) {
	if !h.buffered {
		pp, perr := h.ss.s.pipes.get()
		if perr == nil {
			why, err, ok := h.spliceBurst(pp)
			if ok {
				return why, err
			}
			// splice not supported for these descriptors: fall back for good.
		}
		h.buffered = true
		h.ss.fellBack.Store(true)
	}
	return h.bufferedBurst()
}

// spliceBurst moves src → pipe → dst until src would block. ok is false when
// splice(2) itself is not possible here (nothing moved; use the buffer).
func (h *halfPipe) spliceBurst(pp *pipe) (why burstEnd, err error, ok bool) {
	moved := false
	defer func() {
		if err != nil || !ok {
			pp.close() // may hold data, or splice is unusable: never reuse
		} else {
			h.ss.s.pipes.put(pp)
		}
	}()
	for {
		var n int64
		var serr error
		rerr := h.srcRaw().Read(func(fd uintptr) bool {
			for {
				n, serr = unix.Splice(int(fd), nil, pp.w, nil, maxSpliceChunk, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
				if serr != unix.EINTR {
					return true // EAGAIN: burst over; never wait here holding the pipe
				}
			}
		})
		if errors.Is(rerr, os.ErrDeadlineExceeded) {
			// A deadline fell inside a burst: end the burst; run goes on.
			return burstAgain, nil, true
		}
		if rerr != nil {
			return 0, h.srcErr(rerr), true
		}
		switch {
		case serr == unix.EAGAIN:
			return burstDrained, nil, true
		case serr == unix.EINVAL && !moved:
			return 0, nil, false
		case serr != nil:
			return 0, h.srcErr(serr), true
		case n == 0:
			return burstEOF, nil, true
		}
		moved = true
		// A write that makes no progress for the idle timeout is idle too.
		if err := h.dst().SetWriteDeadline(time.Now().Add(h.ss.idle)); err != nil {
			return 0, h.dstErr(err), true
		}
		for left := n; left > 0; {
			var m int64
			var werr error
			err := h.dstRaw().Write(func(fd uintptr) bool {
				for {
					m, werr = unix.Splice(pp.r, nil, int(fd), nil, int(left), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
					switch werr {
					case unix.EINTR:
						continue
					case unix.EAGAIN:
						return false // dst full: wait for writability (this is not idle)
					}
					return true
				}
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				return 0, h.dstErr(err), true
			}
			left -= m
		}
		h.account(n)
	}
}

// bufferedBurst is the fallback: non-blocking reads into a pooled buffer
// until src would block.
func (h *halfPipe) bufferedBurst() (burstEnd, error) {
	bp := bufferPool.Get().(*[]byte)
	defer bufferPool.Put(bp)
	buf := *bp
	for {
		var n int
		var rerr error
		err := h.srcRaw().Read(func(fd uintptr) bool {
			for {
				n, rerr = unix.Read(int(fd), buf)
				if rerr != unix.EINTR {
					return true
				}
			}
		})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return burstAgain, nil // see spliceBurst
		}
		if err != nil {
			return 0, h.srcErr(err)
		}
		switch {
		case rerr == unix.EAGAIN:
			return burstDrained, nil
		case rerr != nil:
			return 0, h.srcErr(rerr)
		case n == 0:
			return burstEOF, nil
		}
		if err := h.dst().SetWriteDeadline(time.Now().Add(h.ss.idle)); err != nil {
			return 0, h.dstErr(err)
		}
		if _, err := h.dst().Write(buf[:n]); err != nil {
			return 0, h.dstErr(err)
		}
		h.account(int64(n))
	}
}

func (h *halfPipe) account(n int64) {
	h.bytes.Add(n)
	h.ss.last.Store(time.Now().UnixNano())
	if h.toUpstream {
		h.ss.route.bytes[0].Add(float64(n))
	} else {
		h.ss.route.bytes[1].Add(float64(n))
	}
}
