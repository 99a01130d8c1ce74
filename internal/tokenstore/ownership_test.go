package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

// One agent ID belongs to one token: the first claim wins, the same token
// may claim again, any other token (of another customer or the same) is
// refused; a repeat is admitted only within RetryWindow.
func TestClaimMakesAnAgentIDOneTokens(t *testing.T) {
	ctx := context.Background()
	s, _, c := newStore(t)
	_, acme := issue(t, s, "acme", 5)
	_, acme2 := issue(t, s, "acme", 5)
	_, globex := issue(t, s, "globex", 5)
	claim := func(rec tokenstore.Record, agent string, retry bool) provisioning.Reason {
		t.Helper()
		r, err := s.Claim(ctx, rec, agent, retry)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := claim(acme, "pc-42", false); r != "" {
		t.Fatalf("first claim: %q", r)
	}
	if r := claim(acme, "pc-42", false); r != "" {
		t.Fatalf("the same token again: %q", r)
	}
	for name, rec := range map[string]tokenstore.Record{"another customer": globex, "another token of the customer": acme2} {
		for _, retry := range []bool{false, true} {
			if r := claim(rec, "pc-42", retry); r != provisioning.ReasonAgentTaken {
				t.Errorf("%s (retry %v): %q, want %q", name, retry, r, provisioning.ReasonAgentTaken)
			}
		}
	}
	o, found, err := s.Owner(ctx, "pc-42")
	if err != nil || !found || o.Customer != "acme" || o.TokenID != acme.ID || o.Revoked || !o.AdmittedAt.Equal(c.Now()) {
		t.Fatalf("owner %+v %v %v", o, found, err)
	}
	c.Add(tokenstore.RetryWindow)
	if r := claim(acme, "pc-42", true); r != "" {
		t.Fatalf("repeat at the window's end: %q", r)
	}
	c.Add(time.Second)
	if r := claim(acme, "pc-42", true); r != provisioning.ReasonRetryWindowOver {
		t.Fatalf("repeat after the window: %q", r)
	}
	if r := claim(acme, "pc-never", true); r != provisioning.ReasonAgentDeleted {
		t.Fatalf("repeat without a record: %q", r)
	}
}

// Revoke blocks the ID for every token until delete; delete frees it for
// a token that never admitted it, never for a repeat of the old admission.
func TestRevokeAndDeleteAgent(t *testing.T) {
	ctx := context.Background()
	s, _, c := newStore(t)
	_, acme := issue(t, s, "acme", 5)
	_, acme2 := issue(t, s, "acme", 5)
	_, globex := issue(t, s, "globex", 5)
	if r, err := s.Claim(ctx, acme, "pc-1", false); r != "" || err != nil {
		t.Fatal(r, err)
	}
	if err := s.RevokeAgent(ctx, "globex", "pc-1"); !errors.Is(err, tokenstore.ErrOtherCustomer) {
		t.Fatalf("revoke as another customer: %v", err)
	}
	if err := s.RevokeAgent(ctx, "acme", "pc-1"); err != nil {
		t.Fatal(err)
	}
	revokedAt := c.Now()
	c.Add(time.Minute)
	if err := s.RevokeAgent(ctx, "acme", "pc-1"); err != nil {
		t.Fatalf("revoke again: %v", err)
	}
	if o, _, _ := s.Owner(ctx, "pc-1"); !o.Revoked || !o.RevokedAt.Equal(revokedAt) || o.TokenID != acme.ID {
		t.Fatalf("after revoke: %+v", o)
	}
	for name, c := range map[string]struct {
		rec   tokenstore.Record
		retry bool
	}{"repeat": {acme, true}, "same token": {acme, false}, "new token": {acme2, false}} {
		if r, err := s.Claim(ctx, c.rec, "pc-1", c.retry); r != provisioning.ReasonAgentRevoked || err != nil {
			t.Errorf("%s after revoke: %q %v", name, r, err)
		}
	}
	if err := s.DeleteAgent(ctx, "globex", "pc-1"); !errors.Is(err, tokenstore.ErrOtherCustomer) {
		t.Fatalf("delete as another customer: %v", err)
	}
	if err := s.DeleteAgent(ctx, "acme", "pc-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAgent(ctx, "acme", "pc-1"); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if r, _ := s.Claim(ctx, acme, "pc-1", true); r != provisioning.ReasonAgentDeleted {
		t.Fatalf("repeat after delete: %q", r)
	}
	if r, err := s.Claim(ctx, globex, "pc-1", false); r != "" || err != nil {
		t.Fatalf("a new enrolment after delete: %q %v", r, err)
	}
	// An agent without a record (enrolled before records existed) gets a
	// revoked one.
	if err := s.RevokeAgent(ctx, "acme", "pc-old"); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Claim(ctx, acme2, "pc-old", false); r != provisioning.ReasonAgentRevoked {
		t.Fatalf("claim of a revoked legacy agent: %q", r)
	}
}

// Release gives back only the releasing token's unrevoked claim.
func TestReleaseGivesBackOnlyItsOwnClaim(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	_, acme := issue(t, s, "acme", 5)
	_, globex := issue(t, s, "globex", 5)
	if r, _ := s.Claim(ctx, acme, "pc-1", false); r != "" {
		t.Fatal(r)
	}
	if err := s.Release(ctx, globex, "pc-1"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.Owner(ctx, "pc-1"); !found {
		t.Fatal("another token released the claim")
	}
	if err := s.Release(ctx, acme, "pc-1"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.Owner(ctx, "pc-1"); found || err != nil {
		t.Fatalf("owner after release: %v %v", found, err)
	}
	if r, _ := s.Claim(ctx, globex, "pc-1", false); r != "" {
		t.Fatalf("claim after release: %q", r)
	}
}

// Many tokens of different customers race for one new agent ID: exactly
// one claim wins.
func TestClaimUnderRaces(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	var recs []tokenstore.Record
	for i := 0; i < 10; i++ {
		_, rec := issue(t, s, fmt.Sprintf("customer-%d", i), 1)
		recs = append(recs, rec)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for _, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Claim(ctx, rec, "pc-42", false)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			switch r {
			case "":
				won++
			case provisioning.ReasonAgentTaken:
			default:
				t.Errorf("refusal %q", r)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d claims won", won)
	}
}

// A damaged ownership record (customer not a string) is an error, never
// read as free or as some customer's.
func TestDamagedOwnershipRecord(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("tokens"), Item: map[string]types.AttributeValue{
		tokenstore.KeyAttribute: &types.AttributeValueMemberS{Value: "agent#pc-1"}, "customer": &types.AttributeValueMemberN{Value: "7"},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Owner(ctx, "pc-1"); err == nil {
		t.Fatal("damaged record read without an error")
	}
	_, rec := issue(t, s, "acme", 1)
	if r, err := s.Claim(ctx, rec, "pc-1", false); r != provisioning.ReasonInternal || err == nil {
		t.Fatalf("claim of a damaged record: %q %v", r, err)
	}
}
