//go:build linux

package relay

import (
	"io"
	"log/slog"
	"testing"

	"golang.org/x/sys/unix"
)

// armFired reports the id of the one event epoll has for p within 5 s.
func armFired(t *testing.T, p *poller) uint64 {
	t.Helper()
	events := make([]unix.EpollEvent, 4)
	for {
		n, err := unix.EpollWait(p.epfd, events, 5000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("epoll_wait = %d, %v; want one event", n, err)
		}
		return uint64(uint32(events[0].Fd)) | uint64(uint32(events[0].Pad))<<32
	}
}

func TestArmAddsOnceThenModifies(t *testing.T) {
	p, err := newPoller(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.file.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[1], []byte("x")); err != nil {
		t.Fatal(err)
	}

	const id = 1<<40 | 7 // both halves of the event's id travel
	if err := p.arm(fds[0], id, true); err != nil {
		t.Fatalf("first arm: %v", err)
	}
	if got := armFired(t, p); got != id {
		t.Fatalf("event id %#x, want %#x", got, id)
	}
	// The registration is one-shot: re-arming (a MOD) fires again for the
	// bytes still queued.
	if err := p.arm(fds[0], id+1, false); err != nil {
		t.Fatalf("re-arm: %v", err)
	}
	if got := armFired(t, p); got != id+1 {
		t.Fatalf("event id %#x after re-arm, want %#x", got, id+1)
	}
	// A wrong add either way still arms.
	if err := p.arm(fds[0], id+2, true); err != nil {
		t.Fatalf("add of a registered socket: %v", err)
	}
	if got := armFired(t, p); got != id+2 {
		t.Fatalf("event id %#x, want %#x", got, id+2)
	}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fds[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := p.arm(fds[0], id+3, false); err != nil {
		t.Fatalf("re-arm of an unregistered socket: %v", err)
	}
	if got := armFired(t, p); got != id+3 {
		t.Fatalf("event id %#x, want %#x", got, id+3)
	}
}
