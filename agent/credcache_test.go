//go:build linux

package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// dialN makes n connection attempts with one agent, closing each
// connection, and returns the errors.
func dialN(t *testing.T, a *agent.Agent, n int) []error {
	t.Helper()
	var errs []error
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c, err := a.Dial(ctx)
		cancel()
		if c != nil {
			c.Close()
		}
		errs = append(errs, err)
	}
	return errs
}

// TestCredentialsReusedAcrossReconnects: N connection attempts of one agent
// cost one credentials-provider call while the credentials are valid; with
// credentials that live less than the refresh window every attempt fetches.
func TestCredentialsReusedAcrossReconnects(t *testing.T) {
	for _, tc := range []struct {
		life     time.Duration
		attempts int
		requests int
	}{
		{time.Hour, 6, 1},        // the role alias's default lifetime: reused
		{10 * time.Minute, 6, 1}, // outside the 2.5–5 min refresh window: reused
		{2 * time.Minute, 3, 3},  // inside it (near expiry): refreshed every time
	} {
		t.Run(tc.life.String(), func(t *testing.T) {
			l := startLab(t, agentlab.Options{CredentialsDuration: tc.life})
			rec := newRecorder()
			a, err := agent.New(labConfig(l, rec, ""))
			if err != nil {
				t.Fatal(err)
			}
			for i, err := range dialN(t, a, tc.attempts) {
				if err != nil {
					t.Fatalf("attempt %d: %v", i, err)
				}
			}
			if got := l.Creds.Requests(agentlab.ThingName); got != tc.requests {
				t.Errorf("credentials lasting %s: %d credentials calls for %d connections, want %d", tc.life, got, tc.attempts, tc.requests)
			}
			events, _, _ := rec.snapshot()
			if want := tc.attempts - tc.requests; countEvents(events, agent.StepCredentials, "reused") != want {
				t.Errorf("want %d credentials events saying reused:\n%s", want, formatEvents(events))
			}
		})
	}
}

func countEvents(evs []agent.Event, step, detailPart string) int {
	n := 0
	for _, e := range evs {
		if e.Step == step && e.Err == nil && strings.Contains(e.Detail, detailPart) {
			n++
		}
	}
	return n
}

// TestRefusedCredentialsInvalidatedOnce: IoT refusing the cached
// credentials (revoked) makes the agent invalidate them once and fetch new
// ones once; when IoT refuses every credential, each attempt fetches at
// most once more and fails, never looping.
func TestRefusedCredentialsInvalidatedOnce(t *testing.T) {
	l := startLab(t, agentlab.Options{CredentialsDuration: time.Hour})
	rec := newRecorder()
	a, err := agent.New(labConfig(l, rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	if errs := dialN(t, a, 1); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if n := l.Creds.Revoke(agentlab.ThingName); n != 1 {
		t.Fatalf("revoked %d credentials, want 1", n)
	}
	// Refused once, invalidated, fetched once, accepted.
	if errs := dialN(t, a, 1); errs[0] != nil {
		t.Fatalf("after a revocation: %v", errs[0])
	}
	if got, refused := l.Creds.Requests(agentlab.ThingName), l.Gateway.Refused(); got != 2 || refused != 1 {
		t.Errorf("after a revocation: %d credentials calls (want 2), %d refused upgrades (want 1)", got, refused)
	}

	// Every credential refused from now on: each attempt is refused, fetches
	// once more, is refused again, and returns the refusal.
	l.Creds.SetForgetIssued(true)
	l.Creds.Revoke(agentlab.ThingName)
	for i, err := range dialN(t, a, 3) {
		if !errors.Is(err, agenterr.ErrRefused) {
			t.Errorf("attempt %d with refused credentials: %v, want ErrRefused", i, err)
		}
	}
	if got, refused := l.Creds.Requests(agentlab.ThingName), l.Gateway.Refused(); got != 2+3 || refused != 1+6 {
		t.Errorf("3 refused attempts: %d credentials calls in all (want 5), %d refused upgrades (want 7)", got, refused)
	}
}

// TestCredentialsRejectedInvalidatesOncePerKey: a caller reporting an AWS
// refusal (an S3 403) invalidates the cache once per access key; repeated
// reports of the same key do nothing, so they cannot loop.
func TestCredentialsRejectedInvalidatesOncePerKey(t *testing.T) {
	l := startLab(t, agentlab.Options{CredentialsDuration: time.Hour})
	a, err := agent.New(labConfig(l, newRecorder(), ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c1, err := a.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !a.CredentialsRejected(c1) {
		t.Fatal("first report of a refusal did not invalidate")
	}
	for range 3 {
		if a.CredentialsRejected(c1) {
			t.Fatal("a repeated report of the same credentials invalidated again")
		}
	}
	c2, err := a.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2.AccessKeyID == c1.AccessKeyID {
		t.Error("Retrieve after the refusal returned the refused credentials")
	}
	if _, err := a.Credentials().Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.Creds.Requests(agentlab.ThingName); got != 2 {
		t.Errorf("%d credentials calls, want 2 (one before, one after the refusal)", got)
	}
	if a.CredentialsRejected(aws.Credentials{}) {
		t.Error("empty credentials invalidated the cache")
	}
}

// TestProviderRefusalNotRetriedInDial: a 403 from the credentials provider
// itself (here: the thing name is not the certificate's) fails the attempt
// after one request; nothing is cached, so the next attempt (after the
// reconnect backoff) asks once more, and no attempt asks twice.
func TestProviderRefusalNotRetriedInDial(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	cfg := labConfig(l, newRecorder(), "")
	cfg.ThingName = "not-the-certificates"
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := dialN(t, a, 1)[0]
		if !errors.Is(err, agenterr.ErrRefused) || !strings.Contains(err.Error(), "HTTP 403") {
			t.Errorf("attempt %d: %v, want the provider's 403 as ErrRefused", i, err)
		}
		if got := l.Creds.Requests(cfg.ThingName); got != i+1 {
			t.Errorf("after attempt %d: %d credentials requests, want %d", i, got, i+1)
		}
	}
	if n := l.Gateway.Refused() + l.Gateway.Accepted(); n != 0 {
		t.Errorf("%d upgrades tried without credentials", n)
	}
}
