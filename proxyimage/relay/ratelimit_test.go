//go:build linux

package relay

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

func TestSourceLimiterBucketAndBound(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newSourceLimiter(2, 3, 4) // 2/s, burst 3, at most 4 sources tracked
	a := netip.MustParseAddr("198.51.100.1")
	for i := range 3 {
		if !l.allow(a, now) {
			t.Fatalf("burst token %d refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("fourth connection in the same instant allowed")
	}
	if !l.allow(a, now.Add(500*time.Millisecond)) || l.allow(a, now.Add(500*time.Millisecond)) {
		t.Fatal("refill of 1 token after 0.5 s at 2/s not honoured")
	}
	// IPv4-mapped IPv6 is the same source.
	if l.allow(netip.MustParseAddr("::ffff:198.51.100.1"), now.Add(500*time.Millisecond)) {
		t.Fatal("mapped address got its own bucket")
	}
	// Addresses in one IPv6 /64 share a bucket; another /64 does not.
	v6 := newSourceLimiter(1, 1, 10)
	if !v6.allow(netip.MustParseAddr("2001:db8:1:2::1"), now) || v6.allow(netip.MustParseAddr("2001:db8:1:2:ffff::9"), now) {
		t.Fatal("same /64 not limited together")
	}
	if !v6.allow(netip.MustParseAddr("2001:db8:1:3::1"), now) {
		t.Fatal("a different /64 was limited")
	}
	for i := 2; i <= 10; i++ {
		l.allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), now)
	}
	if n := l.size(); n > 4 {
		t.Fatalf("map grew to %d entries, bound is 4", n)
	}
	// Once every bucket has refilled, the sweep frees the table.
	later := now.Add(time.Minute)
	l.allow(netip.MustParseAddr("203.0.113.1"), later)
	if n := l.size(); n != 1 {
		t.Fatalf("after expiry %d entries remain, want 1", n)
	}
	var off *sourceLimiter
	if !off.allow(a, now) || !newSourceLimiter(0, 1, 1).allow(a, now) {
		t.Fatal("disabled limiter refused")
	}
}

func TestSourceConnsCapAndRelease(t *testing.T) {
	c := newSourceConns(2)
	a, a6 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("::ffff:198.51.100.1")
	if !c.acquire(a) || !c.acquire(a6) {
		t.Fatal("first two slots refused")
	}
	if c.acquire(a) {
		t.Fatal("third slot for one source (IPv4-mapped form included) granted")
	}
	if n, most := c.stats(); n != 1 || most != 2 {
		t.Fatalf("stats = %d sources, %d most; want 1, 2", n, most)
	}
	c.release(a)
	if !c.acquire(a) {
		t.Fatal("released slot not reusable")
	}
	c.release(a)
	c.release(a)
	if n, _ := c.stats(); n != 0 {
		t.Fatalf("%d sources tracked after every slot was released", n)
	}
	off := newSourceConns(0)
	for range 10 {
		if !off.acquire(a) {
			t.Fatal("cap 0 refused")
		}
	}
	if n, _ := off.stats(); n != 0 {
		t.Fatal("cap 0 tracks sources")
	}
}

// TestSourceOverCapIsLoggedAboveDebug: the fleet's rejects metric counts
// the relay's "rejected" lines at its log level (info), so a site refused
// for being over --max-conns-per-source must log there, while floods stay
// at debug.
func TestSourceOverCapIsLoggedAboveDebug(t *testing.T) {
	for reason, want := range map[Reason]slog.Level{
		ReasonSourceOverCap: slog.LevelInfo,
		ReasonUnknownSNI:    slog.LevelInfo,
		ReasonOverCap:       slog.LevelDebug,
		ReasonRateLimited:   slog.LevelDebug,
		ReasonClientClosed:  slog.LevelDebug,
	} {
		if got := rejectLevel(reason); got != want {
			t.Errorf("%s logged at %v, want %v", reason, got, want)
		}
	}
}
