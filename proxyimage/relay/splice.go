//go:build linux

package relay

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The splice path: bytes move socket → pipe → socket inside the kernel,
// never through user space. A direction uses it unless --copy-mode is
// buffered or splice(2) refuses its descriptors (then it falls back to the
// buffered path in copy.go for good).

// maxSpliceChunk is one default pipe's capacity (16 pages).
const maxSpliceChunk = 64 << 10

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
