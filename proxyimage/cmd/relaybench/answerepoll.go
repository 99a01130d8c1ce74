//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// answerServer is the set-up test's cheap upstream: one epoll loop over a
// non-blocking listener and its connections, no Go network poller,
// goroutine or timer per connection (one small state struct and a map
// entry each). For each connection it
// reads one TLS handshake record (bounded; the body is discarded), writes
// setupAnswer and closes. Per connection: accept4, epoll_ctl, usually one
// read, write, close.
type answerServer struct {
	ln, epfd int
	conns    map[int]*answerConn
	scratch  [5 + maxHelloRecord]byte
}

// answerConn is one connection's progress through its ClientHello record.
type answerConn struct {
	hdr      [5]byte
	hgot     int
	remain   int // body bytes still to come, once the header is in
	deadline time.Time
}

// listenAnswer opens the non-blocking loopback listener.
func listenAnswer() (*answerServer, string, error) {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	a := &answerServer{ln: ln, epfd: -1, conns: map[int]*answerConn{}}
	fail := func(err error) (*answerServer, string, error) { a.close(); return nil, "", err }
	if err := unix.SetsockoptInt(ln, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail(err)
	}
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail(err)
	}
	if err := unix.Listen(ln, 4096); err != nil {
		return fail(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		return fail(err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return fail(errors.New("listener is not IPv4"))
	}
	if a.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(ln)}
	if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, ln, &ev); err != nil {
		return fail(err)
	}
	return a, netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String(), nil
}

// close closes the listener, the epoll set and every open connection.
func (a *answerServer) close() {
	for fd := range a.conns {
		unix.Close(fd)
	}
	a.conns = map[int]*answerConn{}
	if a.epfd >= 0 {
		unix.Close(a.epfd)
	}
	unix.Close(a.ln)
}

// serve runs until stop is set (checked at least every 100 ms).
func (a *answerServer) serve(stop *atomic.Bool) error {
	events := make([]unix.EpollEvent, 256)
	lastSweep := time.Now()
	for !stop.Load() {
		n, err := unix.EpollWait(a.epfd, events, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		now := time.Now()
		for _, ev := range events[:max(n, 0)] {
			if fd := int(ev.Fd); fd == a.ln {
				a.accept(now)
			} else if c := a.conns[fd]; c != nil {
				a.progress(fd, c)
			}
		}
		if now.Sub(lastSweep) > 100*time.Millisecond { // deadlines
			lastSweep = now
			for fd, c := range a.conns {
				if now.After(c.deadline) {
					a.drop(fd)
				}
			}
		}
	}
	return nil
}

// accept takes every pending connection.
func (a *answerServer) accept(now time.Time) {
	for {
		fd, _, err := unix.Accept4(a.ln, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN, or a transient error: the next readiness retries
		}
		c := &answerConn{deadline: now.Add(10 * time.Second)}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		if err := unix.EpollCtl(a.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			continue
		}
		a.conns[fd] = c
		a.progress(fd, c) // the ClientHello is often there already
	}
}

// progress reads what has arrived; once the whole record is in, it answers
// and closes. Anything else (EOF early, more than one record, an error)
// closes the connection unanswered.
func (a *answerServer) progress(fd int, c *answerConn) {
	for {
		n, err := unix.Read(fd, a.scratch[:])
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n == 0 {
			a.drop(fd)
			return
		}
		done, err := c.feed(a.scratch[:n])
		if err != nil {
			a.drop(fd)
			return
		}
		if done {
			unix.Write(fd, setupAnswer) // 7 bytes into an empty send buffer
			a.drop(fd)
			return
		}
	}
}

// feed consumes bytes of the ClientHello record; done once it is complete.
// Bytes past the record are an error (the client sends nothing else).
func (c *answerConn) feed(b []byte) (done bool, err error) {
	if c.hgot < 5 {
		k := copy(c.hdr[c.hgot:], b)
		c.hgot += k
		b = b[k:]
		if c.hgot < 5 {
			return false, nil
		}
		if c.remain, err = helloRecordLen(c.hdr[:]); err != nil {
			return false, err
		}
	}
	if len(b) > c.remain {
		return false, fmt.Errorf("%d bytes past the record", len(b)-c.remain)
	}
	c.remain -= len(b)
	return c.remain == 0, nil
}

// drop closes a connection (which also takes it out of the epoll set).
func (a *answerServer) drop(fd int) {
	delete(a.conns, fd)
	unix.Close(fd)
}
