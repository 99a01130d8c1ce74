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

// bufferSize is the user-space buffer of the buffered path, borrowed per burst.
const bufferSize = 32 << 10

var errIdle = errors.New("idle timeout")

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
	registered bool // src is in the poller's epoll set (owner only, like the entry)
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
