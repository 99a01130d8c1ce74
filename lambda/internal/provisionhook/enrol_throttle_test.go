package provisionhook_test

// Enrolments against the fleet-provisioning stand-in throttling at a tiny
// rate on a clock the test moves: a throttled request is sent again after
// a backoff and the enrolment finishes; when the retries run out Enrol
// says so, and the next run finishes the same enrolment.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/enroll"
)

// frozenClock is the stand-in's clock: it moves only when the test says.
type frozenClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *frozenClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *frozenClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// throttleLab is an enrolment lab whose stand-in limits op to one request
// a second (burst 1) on a frozen clock, and reports every throttling.
func throttleLab(t *testing.T, op string) (*enrolLab, *frozenClock, chan string) {
	t.Helper()
	e := startEnrolLab(t)
	clock := &frozenClock{now: time.Now()} // the lab's certificates are issued on the wall clock
	e.fleet.Now = clock.Now
	throttled := make(chan string, 64)
	e.fleet.OnThrottle = func(op string) {
		select {
		case throttled <- op:
		default:
		}
	}
	e.fleet.Limit(op, 1, 1)
	return e, clock, throttled
}

func TestThrottledRequestIsRetriedUntilItPasses(t *testing.T) {
	for _, op := range []string{"CreateCertificateFromCsr", "RegisterThing"} {
		t.Run(op, func(t *testing.T) {
			e, clock, throttled := throttleLab(t, op)
			ctx := context.Background()
			first := e.config(t.TempDir(), e.issue(t, "acme", 2).String())
			if _, err := enroll.Enrol(ctx, first); err != nil { // takes the one token
				t.Fatal(err)
			}
			cfg := e.config(t.TempDir(), e.issue(t, "acme", 1).String())
			cfg.ThrottleBackoff, cfg.ThrottleBackoffMax = time.Millisecond, 20*time.Millisecond
			cfg.ThrottleRetries = 1000 // the clock, not the retries, ends the throttling here
			done := make(chan error, 1)
			go func() { _, err := enroll.Enrol(ctx, cfg); done <- err }()
			for i := 0; i < 2; i++ { // throttled twice: the second is a retry
				select {
				case got := <-throttled:
					if got != op {
						t.Fatalf("%s throttled", got)
					}
				case err := <-done:
					t.Fatalf("finished without being throttled twice: %v", err)
				}
			}
			clock.Add(time.Second) // one more token
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n := e.fleet.Throttled(op); n < 2 {
				t.Errorf("%d throttled", n)
			}
			if len(e.fleet.Things()) != 2 {
				t.Errorf("things %v", e.fleet.Things())
			}
			// Each throttled request was sent again, not a new one made:
			// two certificates asked for and issued, one per agent.
			if op == "RegisterThing" && e.fleet.Calls("CreateCertificateFromCsr") != 2 {
				t.Errorf("%d CreateCertificateFromCsr for 2 agents", e.fleet.Calls("CreateCertificateFromCsr"))
			}
			if e.fleet.Calls(op)-e.fleet.Throttled(op) != 2 {
				t.Errorf("%d %s handled for 2 agents", e.fleet.Calls(op)-e.fleet.Throttled(op), op)
			}
		})
	}
}

func TestThrottledEnrolmentGivesUpThenFinishesOnTheNextRun(t *testing.T) {
	e, clock, _ := throttleLab(t, "RegisterThing")
	ctx := context.Background()
	if _, err := enroll.Enrol(ctx, e.config(t.TempDir(), e.issue(t, "acme", 1).String())); err != nil {
		t.Fatal(err)
	}
	tok := e.issue(t, "acme", 1)
	dir := t.TempDir()
	cfg := e.config(dir, tok.String())
	cfg.ThrottleRetries, cfg.ThrottleBackoff, cfg.ThrottleBackoffMax = 3, time.Millisecond, 2*time.Millisecond
	_, err := enroll.Enrol(ctx, cfg)
	if !errors.Is(err, enroll.ErrThrottled) || !strings.Contains(err.Error(), "RegisterThing throttled 4 times") {
		t.Fatalf("%v, want ErrThrottled after 1+3 requests", err)
	}
	if n := e.fleet.Throttled("RegisterThing"); n != 4 {
		t.Errorf("%d RegisterThing throttled, want 4", n)
	}
	if _, err := enroll.Load(dir); err == nil {
		t.Fatal("written as enrolled")
	}
	// The time passes; the next run registers the certificate it kept.
	clock.Add(time.Second)
	csrs := e.fleet.Calls("CreateCertificateFromCsr")
	res, err := enroll.Enrol(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.fleet.Calls("CreateCertificateFromCsr") != csrs {
		t.Error("the next run asked for another certificate")
	}
	if th := e.fleet.Things()[res.AgentID]; len(th.Certificates) != 1 || e.fleet.CertificateStatus(res.CertificateID) != "ACTIVE" {
		t.Errorf("thing %+v", th)
	}
	if rec, _ := e.store.Get(ctx, tok.ID); rec.Uses != 1 {
		t.Errorf("uses %d, want 1", rec.Uses)
	}
}

// The enrolment's timeout bounds the retries too.
func TestThrottledEnrolmentEndsWithItsTimeout(t *testing.T) {
	e, _, _ := throttleLab(t, "CreateCertificateFromCsr")
	ctx := context.Background()
	if _, err := enroll.Enrol(ctx, e.config(t.TempDir(), e.issue(t, "acme", 1).String())); err != nil {
		t.Fatal(err)
	}
	cfg := e.config(t.TempDir(), e.issue(t, "acme", 1).String())
	cfg.Timeout, cfg.ThrottleRetries = time.Second, 1000
	cfg.ThrottleBackoff, cfg.ThrottleBackoffMax = time.Millisecond, 50*time.Millisecond
	_, err := enroll.Enrol(ctx, cfg)
	if !errors.Is(err, enroll.ErrThrottled) && !errors.Is(err, enroll.ErrConnection) {
		t.Fatalf("%v, want ErrThrottled (or ErrConnection, if the time ran out while an answer was awaited)", err)
	}
	if len(e.fleet.Things()) != 1 {
		t.Errorf("things %v", e.fleet.Things())
	}
}
