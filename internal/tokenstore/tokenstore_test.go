package tokenstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newStore(t *testing.T) (*tokenstore.Store, *awsstandin.DynamoDB, *clock) {
	t.Helper()
	db := awsstandin.StartDynamoDB()
	t.Cleanup(db.Close)
	db.CreateTable("tokens", tokenstore.KeyAttribute)
	client := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(db.URL) })
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	return &tokenstore.Store{DB: client, Table: "tokens", Now: c.Now}, db, c
}

func issue(t *testing.T, s *tokenstore.Store, customer string, uses int) (provisioning.Token, tokenstore.Record) {
	t.Helper()
	tok, rec, err := s.Issue(context.Background(), tokenstore.IssueParams{Customer: customer, Validity: time.Hour, MaxUses: uses, Note: "site 7"})
	if err != nil {
		t.Fatal(err)
	}
	return tok, rec
}

func TestIssueStoresOnlyTheHash(t *testing.T) {
	s, db, _ := newStore(t)
	tok, rec := issue(t, s, "acme", 2)
	items := db.Items("tokens")
	if len(items) != 1 {
		t.Fatalf("%d items", len(items))
	}
	if dump := fmt.Sprint(items); strings.Contains(dump, tok.Secret) {
		t.Fatalf("secret stored in clear: %s", dump)
	}
	got, err := s.Get(context.Background(), tok.ID)
	if err != nil || got.Customer != "acme" || got.MaxUses != 2 || got.Uses != 0 || got.Revoked || !got.ExpiresAt.Equal(rec.ExpiresAt) || got.Note != "site 7" {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []tokenstore.IssueParams{
		{Customer: "", Validity: time.Hour, MaxUses: 1},
		{Customer: "a/b", Validity: time.Hour, MaxUses: 1},
		{Customer: "agentgate", Validity: time.Hour, MaxUses: 1},
		{Customer: "acme", Validity: 0, MaxUses: 1},
		{Customer: "acme", Validity: tokenstore.MaxValidity + time.Second, MaxUses: 1},
		{Customer: "acme", Validity: time.Hour, MaxUses: 0},
		{Customer: "acme", Validity: time.Hour, MaxUses: tokenstore.MaxUses + 1},
		{Customer: "acme", Validity: time.Hour, MaxUses: 1, Note: strings.Repeat("n", tokenstore.MaxNoteLen+1)},
	} {
		if _, _, err := s.Issue(context.Background(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestCheckAndConsume(t *testing.T) {
	ctx := context.Background()
	s, _, c := newStore(t)
	tok, rec := issue(t, s, "acme", 2)
	check := func(tk provisioning.Token, agent, expect string) (provisioning.Reason, bool) {
		t.Helper()
		_, r, retry, err := s.Check(ctx, tk, agent, expect)
		if err != nil {
			t.Fatal(err)
		}
		return r, retry
	}
	if r, retry := check(tok, "a1", ""); r != "" || retry {
		t.Fatalf("fresh token: %q retry=%v", r, retry)
	}
	if r, _ := check(tok, "a1", "other"); r != provisioning.ReasonWrongCustomer {
		t.Fatalf("wrong customer: %q", r)
	}
	wrong := tok
	wrong.Secret = strings.Repeat("A", 43)
	if r, _ := check(wrong, "a1", ""); r != provisioning.ReasonTokenUnknown {
		t.Fatalf("wrong secret: %q", r)
	}
	if r, _ := check(provisioning.Token{ID: strings.Repeat("0", 32), Secret: tok.Secret}, "a1", ""); r != provisioning.ReasonTokenUnknown {
		t.Fatalf("unknown id: %q", r)
	}
	if r, err := s.Consume(ctx, rec, wrong, "a1"); r != provisioning.ReasonTokenUnknown || err != nil {
		t.Fatalf("consume with a wrong secret: %q %v", r, err)
	}
	for _, a := range []string{"a1", "a2"} {
		if r, err := s.Consume(ctx, rec, tok, a); r != "" || err != nil {
			t.Fatalf("consume %s: %q %v", a, r, err)
		}
	}
	// Replays: a third agent is refused; a1 again is a retry (no use taken).
	if r, _ := check(tok, "a3", ""); r != provisioning.ReasonTokenUsedUp {
		t.Fatalf("third agent: %q", r)
	}
	if r, err := s.Consume(ctx, rec, tok, "a3"); r != provisioning.ReasonTokenUsedUp || err != nil {
		t.Fatalf("consume a3: %q %v", r, err)
	}
	if r, retry := check(tok, "a1", ""); r != "" || !retry {
		t.Fatalf("retry of a1: %q %v", r, retry)
	}
	got, _ := s.Get(ctx, tok.ID)
	if got.Uses != 2 || len(got.Agents) != 2 {
		t.Fatalf("after two uses: %+v", got)
	}
	c.Add(time.Hour)
	if r, _ := check(tok, "a1", ""); r != provisioning.ReasonTokenExpired {
		t.Fatalf("expired: %q", r)
	}
	tok2, rec2 := issue(t, s, "acme", 5)
	if err := s.Revoke(ctx, tok2.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := check(tok2, "b1", ""); r != provisioning.ReasonTokenRevoked {
		t.Fatalf("revoked: %q", r)
	}
	if r, _ := s.Consume(ctx, rec2, tok2, "b1"); r != provisioning.ReasonTokenRevoked {
		t.Fatalf("consume revoked: %q", r)
	}
	if err := s.Revoke(ctx, strings.Repeat("1", 32)); !errors.Is(err, tokenstore.ErrNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
}

// Many enrolments race for a token's last uses: exactly MaxUses win.
func TestConsumeIsReplaySafeUnderRaces(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	tok, rec := issue(t, s, "acme", 3)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.Consume(ctx, rec, tok, fmt.Sprintf("agent-%d", i))
			if err != nil {
				t.Error(err)
			}
			if r == "" {
				mu.Lock()
				won++
				mu.Unlock()
			} else if r != provisioning.ReasonTokenUsedUp {
				t.Errorf("refusal %q", r)
			}
		}()
	}
	wg.Wait()
	got, _ := s.Get(ctx, tok.ID)
	if won != 3 || got.Uses != 3 || len(got.Agents) != 3 {
		t.Fatalf("won %d, record %+v", won, got)
	}
}

func TestRateLimitPerCustomerPerMinute(t *testing.T) {
	ctx := context.Background()
	s, _, c := newStore(t)
	for i := 0; i < 3; i++ {
		if ok, err := s.TakeRate(ctx, "acme", 3); !ok || err != nil {
			t.Fatalf("take %d: %v %v", i, ok, err)
		}
	}
	if ok, _ := s.TakeRate(ctx, "acme", 3); ok {
		t.Fatal("fourth in one minute admitted")
	}
	if ok, _ := s.TakeRate(ctx, "other", 3); !ok {
		t.Fatal("another customer limited")
	}
	c.Add(time.Minute)
	if ok, _ := s.TakeRate(ctx, "acme", 3); !ok {
		t.Fatal("next minute still limited")
	}
}

func TestListAndPagination(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newStore(t)
	for i := 0; i < 5; i++ {
		issue(t, s, "acme", 1)
	}
	issue(t, s, "globex", 1)
	if _, err := s.TakeRate(ctx, "acme", 10); err != nil {
		t.Fatal(err)
	}
	all, err := s.List(ctx, "")
	if err != nil || len(all) != 6 {
		t.Fatalf("%d %v", len(all), err)
	}
	acme, err := s.List(ctx, "acme")
	if err != nil || len(acme) != 5 {
		t.Fatalf("%d %v", len(acme), err)
	}
}
