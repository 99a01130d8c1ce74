package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

// ownershipStore is the token table agent revoke and delete use in s.
func ownershipStore(s *iotStandins) *tokenstore.Store {
	db := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(s.tokens.URL) })
	return &tokenstore.Store{DB: db, Table: "tokens"}
}

// claim admits agent for a new token of customer, as the hook does.
func claim(t *testing.T, st *tokenstore.Store, customer, agent string) {
	t.Helper()
	ctx := context.Background()
	_, rec, err := st.Issue(ctx, tokenstore.IssueParams{Customer: customer, Validity: time.Hour, MaxUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := st.Claim(ctx, rec, agent, false); r != "" || err != nil {
		t.Fatalf("claim %s: %q %v", agent, r, err)
	}
}

// revoke marks the agent ID's ownership record revoked (also for an
// admitted enrolment whose thing was never created); delete removes it
// once the thing is gone; another customer's record is never touched.
func TestAgentRevokeAndDeleteActOnTheOwnershipRecord(t *testing.T) {
	s := startIoT(t)
	st := ownershipStore(s)
	ctx := context.Background()
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	claim(t, st, "acme", "pc-1")
	claim(t, st, "acme", "pc-2") // admitted, RegisterThing never ran
	claim(t, st, "globex", "pc-3")

	if code, out, errOut := s.run(t, nil, "agent", "revoke", "acme", "pc-1"); code != 0 {
		t.Fatalf("revoke: %d %s%s", code, out, errOut)
	}
	if o, found, err := st.Owner(ctx, "pc-1"); !found || err != nil || !o.Revoked || o.Customer != "acme" {
		t.Fatalf("after revoke: %+v %v %v", o, found, err)
	}
	code, _, errOut := s.run(t, nil, "agent", "revoke", "acme", "pc-2")
	if code != 1 || !strings.Contains(errOut, "no such agent") || !strings.Contains(errOut, "marked revoked") {
		t.Fatalf("revoke of an admitted enrolment: %d %s", code, errOut)
	}
	if o, _, _ := st.Owner(ctx, "pc-2"); !o.Revoked {
		t.Fatalf("pending enrolment not revoked: %+v", o)
	}
	if code, _, _ := s.run(t, nil, "agent", "revoke", "acme", "pc-404"); code != 1 {
		t.Fatalf("revoke of an unknown agent: %d", code)
	}
	if _, found, _ := st.Owner(ctx, "pc-404"); found {
		t.Fatal("revoke of an unknown agent created an ownership record")
	}

	for _, agent := range []string{"pc-1", "pc-2"} {
		if code, out, errOut := s.run(t, nil, "agent", "delete", "acme", agent); code != 0 {
			t.Fatalf("delete %s: %d %s%s", agent, code, out, errOut)
		}
		if _, found, _ := st.Owner(ctx, agent); found {
			t.Errorf("%s: ownership record left after delete", agent)
		}
	}
	if s.aws.HasThing("pc-1") {
		t.Fatal("thing left")
	}
	// The ID is free for a new token once deleted.
	claim(t, st, "globex", "pc-1")

	code, _, errOut = s.run(t, nil, "agent", "delete", "acme", "pc-3")
	if code != 1 || !strings.Contains(errOut, tokenstore.ErrOtherCustomer.Error()) {
		t.Fatalf("delete of another customer's pending agent ID: %d %s", code, errOut)
	}
	if o, found, _ := st.Owner(ctx, "pc-3"); !found || o.Customer != "globex" || o.Revoked {
		t.Fatalf("another customer's record changed: %+v %v", o, found)
	}
}

// Without the token table revoke and delete refuse to run: a revoke that
// leaves the agent ID enrollable again would not be one.
func TestAgentRevokeNeedsTheTokenTable(t *testing.T) {
	s := startIoT(t)
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	for _, verb := range []string{"revoke", "delete"} {
		code, _, errOut := s.run(t, map[string]string{TableEnv: ""}, "agent", verb, "acme", "pc-1")
		if code != 2 || !strings.Contains(errOut, TableEnv) {
			t.Errorf("%s without the token table: %d %s", verb, code, errOut)
		}
	}
	if s.aws.CertificateStatus(certID(1)) != "ACTIVE" {
		t.Fatal("the certificate changed although the command was refused")
	}
	if code, out, errOut := s.run(t, map[string]string{TableEnv: ""}, "agent", "revoke", "acme", "pc-1", "--token-table", "tokens"); code != 0 {
		t.Fatalf("--token-table: %d %s%s", code, out, errOut)
	}
}

// --all sweeps the agents admitted for the customer whose enrolment has
// not created a thing yet, not only its things: a repeat within the retry
// window could otherwise finish one after the sweep. Another customer's
// pending agent is left alone.
func TestAgentRevokeAllIncludesPendingEnrolments(t *testing.T) {
	s := startIoT(t)
	st := ownershipStore(s)
	ctx := context.Background()
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	claim(t, st, "acme", "pc-1")
	claim(t, st, "acme", "pc-2") // admitted, RegisterThing never ran
	claim(t, st, "globex", "pc-3")
	code, out, errOut := s.run(t, nil, "agent", "revoke", "--customer", "acme", "--all", "--json")
	if code != 0 || !strings.Contains(out, `"pc-2"`) || !strings.Contains(out, "enrolment revoked (no thing)") {
		t.Fatalf("revoke --all: %d\n%s%s", code, out, errOut)
	}
	for _, ag := range []string{"pc-1", "pc-2"} {
		if o, _, _ := st.Owner(ctx, ag); !o.Revoked {
			t.Errorf("%s not revoked: %+v", ag, o)
		}
	}
	if o, _, _ := st.Owner(ctx, "pc-3"); o.Revoked || o.Customer != "globex" {
		t.Errorf("another customer's pending agent changed: %+v", o)
	}
}
