//go:build linux

package relay

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller parks idle directions in an epoll set of its own, so an idle
// relayed connection has no goroutine, no pipe and no buffer: only its two
// sockets and a few hundred bytes of bookkeeping. When a parked socket
// becomes readable (data, FIN or error) the poller starts a goroutine for
// that direction, which copies one burst and parks it again.
//
// Registrations are EPOLLONESHOT and level-triggered: arming a socket that
// is already readable fires at once, so no wake-up is lost between the
// owner's last empty read and the arming. Events carry an id, never a
// pointer, so a late event for a finished direction is simply ignored.
//
// The epoll descriptor is itself non-blocking and handed to Go's network
// poller (an epoll set is readable while it has events), so the dispatch
// goroutine waits like any socket read: no thread sits in epoll_wait, and
// with GOMAXPROCS=1 a wake-up needs no hand-off between OS threads.
type poller struct {
	epfd    int
	file    *os.File // epfd, registered with Go's network poller
	raw     syscall.RawConn
	log     *slog.Logger
	mu      sync.Mutex
	waiters map[uint64]*halfPipe
	nextID  atomic.Uint64
}

func newPoller(log *slog.Logger) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "relay-epoll")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{epfd: fd, file: f, raw: raw, log: log, waiters: make(map[uint64]*halfPipe)}, nil
}

func (p *poller) add(h *halfPipe) {
	h.id = p.nextID.Add(1)
	p.mu.Lock()
	p.waiters[h.id] = h
	p.mu.Unlock()
}

func (p *poller) remove(h *halfPipe) {
	p.mu.Lock()
	delete(p.waiters, h.id)
	p.mu.Unlock()
}

// arm registers (add) or re-arms fd for one readability event for id. The
// caller keeps per socket whether it is already in the set, so the first
// arm is one EPOLL_CTL_ADD and later ones one EPOLL_CTL_MOD, instead of a
// MOD that fails with ENOENT and then an ADD. Should add be wrong (it never
// is for a socket only its owner arms), the other operation is tried, so
// arming still works.
func (p *poller) arm(fd int, id uint64, add bool) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
	op, retry, wrong := unix.EPOLL_CTL_MOD, unix.EPOLL_CTL_ADD, unix.ENOENT
	if add {
		op, retry, wrong = unix.EPOLL_CTL_ADD, unix.EPOLL_CTL_MOD, unix.EEXIST
	}
	err := unix.EpollCtl(p.epfd, op, fd, &ev)
	if errors.Is(err, wrong) {
		err = unix.EpollCtl(p.epfd, retry, fd, &ev)
	}
	return err
}

// run dispatches events until ctx ends, then closes the epoll descriptor.
func (p *poller) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { p.file.Close() }) // ends a waiting Read
	defer stop()
	events := make([]unix.EpollEvent, 256)
	for {
		var n int
		var werr error
		err := p.raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			// Nothing ready: wait for the set to become readable.
			return n != 0 || werr != nil
		})
		if err != nil { // closed: ctx ended
			return
		}
		if werr == unix.EINTR {
			continue
		}
		if werr != nil {
			p.log.Error("epoll_wait", "err", werr)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for i := range n {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			p.mu.Lock()
			h := p.waiters[id]
			p.mu.Unlock()
			if h != nil && h.wake() {
				go h.resume()
			}
		}
	}
}
