package provisionstandin

import (
	"testing"
	"time"
)

// The token bucket on the stand-in's clock: a full burst, then one request
// per 1/rate; unlimited operations are never throttled; a clock going
// backwards refills nothing.
func TestLimitIsATokenBucketOnTheClock(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	s := New("t", "p", "arn", nil, nil)
	s.Now = func() time.Time { return now }
	s.Limit("RegisterThing", 10, 3)
	take := func(n int) (admitted int) {
		for i := 0; i < n; i++ {
			s.mu.Lock()
			if s.admit("RegisterThing") {
				admitted++
			}
			s.mu.Unlock()
		}
		return admitted
	}
	if got := take(5); got != 3 {
		t.Fatalf("burst: %d admitted, want 3", got)
	}
	now = now.Add(250 * time.Millisecond) // 2.5 tokens
	if got := take(5); got != 2 {
		t.Fatalf("after 250ms: %d admitted, want 2", got)
	}
	now = now.Add(-time.Hour)
	if got := take(1); got != 0 {
		t.Fatal("a clock going backwards refilled the bucket")
	}
	now = now.Add(2 * time.Hour) // far more than the burst: capped
	if got := take(10); got != 3 {
		t.Fatalf("after a long pause: %d admitted, want the burst 3", got)
	}
	if s.Throttled("RegisterThing") != 2+3+1+7 {
		t.Fatalf("throttled %d", s.Throttled("RegisterThing"))
	}
	s.mu.Lock()
	free := s.admit("CreateCertificateFromCsr")
	s.mu.Unlock()
	if !free {
		t.Fatal("an operation without a limit was throttled")
	}
	s.Limit("RegisterThing", 0, 0)
	if take(100) != 100 {
		t.Fatal("Limit(op, 0, 0) did not remove the limit")
	}
}
