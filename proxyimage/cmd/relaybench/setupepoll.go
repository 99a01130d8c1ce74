//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// epollGen is the set-up generator's cheap client: non-blocking sockets and
// one epoll loop, no Go network poller, no per-connection goroutine, timer
// or allocation. Per connection it makes socket, setsockopt, bind, connect,
// write, one or two reads and close; the Go client (-setup-client net) adds
// getsockopt, getsockname, getpeername, TCP_NODELAY, deadline timers and a
// goroutine hand-off per wait.
type epollGen struct {
	dst    unix.SockaddrInet4
	hello  []byte
	epfd   int
	slots  []epollConn
	counts setupCounts
	limit  int64 // > 0: open no more once this many were counted
}

// epollConn is one connection in flight (fd < 0: none).
type epollConn struct {
	fd       int
	src      unix.SockaddrInet4
	wrote    bool
	got      int
	buf      [8]byte // > len(setupAnswer): a longer answer is caught
	deadline time.Time
}

// runEpollGen keeps conc connections in flight to target until to and
// counts those that end in [from, to); with limit > 0 it stops opening
// connections once limit of them were counted (tests: a count, not a time).
func runEpollGen(target string, hello []byte, conc, genIdx, sources int, from, to time.Time, limit int64) (setupCounts, error) {
	ap, err := netip.ParseAddrPort(target)
	if err != nil || !ap.Addr().Is4() {
		return setupCounts{}, fmt.Errorf("target %q: want an IPv4 address and port", target)
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return setupCounts{}, err
	}
	defer unix.Close(epfd)
	g := &epollGen{dst: unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, hello: hello, epfd: epfd,
		slots: make([]epollConn, conc), limit: limit}
	for i := range g.slots {
		s := &g.slots[i]
		s.fd = -1
		s.src.Addr = [4]byte{127, 0, 0, byte(2 + (genIdx*conc+i)%max(sources, 1))}
	}
	events := make([]unix.EpollEvent, conc)
	for {
		now := time.Now()
		running := now.Before(to) && (g.limit <= 0 || g.counts.ok+g.counts.failed < g.limit)
		busy := false
		for i := range g.slots {
			s := &g.slots[i]
			if s.fd >= 0 && now.After(s.deadline) {
				g.finish(i, errors.New("timed out"), now, from, to)
			}
			if s.fd < 0 && running {
				g.open(i, now, from, to)
			}
			busy = busy || s.fd >= 0
		}
		if !busy {
			if running {
				continue // every slot finished inside open: open again
			}
			return g.counts, nil
		}
		n, err := unix.EpollWait(epfd, events, 10)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return g.counts, err
		}
		now = time.Now()
		for _, ev := range events[:max(n, 0)] {
			g.event(int(ev.Fd), ev.Events, now, from, to)
		}
	}
}

// open starts a connection in slot i.
func (g *epollGen) open(i int, now, from, to time.Time) {
	s := &g.slots[i]
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		g.counts.addIn(err, now, from, to)
		return
	}
	s.fd, s.wrote, s.got, s.deadline = fd, false, 0, now.Add(*connTimeout)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
		g.finish(i, err, now, from, to)
		return
	}
	if err := unix.Bind(fd, &s.src); err != nil {
		g.finish(i, fmt.Errorf("bind: %w", err), now, from, to)
		return
	}
	if err := unix.Connect(fd, &g.dst); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		g.finish(i, fmt.Errorf("connect: %w", err), now, from, to)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(i)}
	if err := unix.EpollCtl(g.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		g.finish(i, err, now, from, to)
		return
	}
	// On loopback the handshake has usually completed inside connect.
	g.progress(i, now, from, to)
}

// event handles readiness of slot i.
func (g *epollGen) event(i int, ev uint32, now, from, to time.Time) {
	if i < 0 || i >= len(g.slots) || g.slots[i].fd < 0 {
		return
	}
	if ev&unix.EPOLLERR != 0 {
		errno, err := unix.GetsockoptInt(g.slots[i].fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil {
			err = unix.Errno(errno)
		}
		g.finish(i, fmt.Errorf("socket error: %w", err), now, from, to)
		return
	}
	g.progress(i, now, from, to)
}

// progress writes the ClientHello if not yet written, then reads what
// has arrived; at EOF it checks the answer and closes.
func (g *epollGen) progress(i int, now, from, to time.Time) {
	s := &g.slots[i]
	if !s.wrote {
		n, err := unix.Write(s.fd, g.hello)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOTCONN) {
			return // still connecting: EPOLLOUT follows
		}
		if err != nil {
			g.finish(i, fmt.Errorf("write: %w", err), now, from, to)
			return
		}
		if n != len(g.hello) {
			g.finish(i, fmt.Errorf("short write %d of %d", n, len(g.hello)), now, from, to)
			return
		}
		s.wrote = true
	}
	for {
		n, err := unix.Read(s.fd, s.buf[s.got:])
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil {
			g.finish(i, fmt.Errorf("read: %w", err), now, from, to)
			return
		}
		if n == 0 { // EOF: the upstream's close, forwarded
			if !bytes.Equal(s.buf[:s.got], setupAnswer) {
				g.finish(i, fmt.Errorf("answer %x, want %x", s.buf[:s.got], setupAnswer), now, from, to)
				return
			}
			g.finish(i, nil, now, from, to)
			return
		}
		s.got += n
		if s.got == len(s.buf) {
			g.finish(i, fmt.Errorf("answer longer than %d bytes", len(setupAnswer)), now, from, to)
			return
		}
	}
}

// finish closes slot i's connection and counts it.
func (g *epollGen) finish(i int, err error, now, from, to time.Time) {
	s := &g.slots[i]
	if s.fd >= 0 {
		unix.Close(s.fd) // also leaves the epoll set
		s.fd = -1
	}
	g.counts.addIn(err, now, from, to)
}
