package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A customer's whole life against the IoT stand-in: add (idempotent),
// list, deprecate, add again undoes it, delete refused while it has agents,
// before deprecation and within five minutes of it, then deleted, and a
// second delete is a no-op.
func TestCustomerLifecycle(t *testing.T) {
	s := startIoT(t)
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := t0
	s.aws.SetIoTClock(func() time.Time { return clock })
	customerNow = func() time.Time { return clock }

	code, out, errOut := s.run(t, nil, "customer", "add", "acme", "--json")
	var rows []customerRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Result != "created" || rows[0].State != "active" {
		t.Fatalf("add: %d %v %s%s", code, err, out, errOut)
	}
	if code, out, _ := s.run(t, nil, "customer", "add", "acme"); code != 0 || !strings.Contains(out, "exists") || s.aws.Count("CreateThingType") != 1 {
		t.Errorf("add again: %d %s (CreateThingType %d)", code, out, s.aws.Count("CreateThingType"))
	}
	s.aws.AddThingType("has:colon") // a thing type that is not a customer ID
	code, out, errOut = s.run(t, nil, "customer", "list")
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "active") || strings.Contains(out, "has:colon") || !strings.Contains(errOut, "skipped 1") {
		t.Errorf("list: %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = s.run(t, nil, "customer", "delete", "acme")
	if code != 1 || !strings.Contains(errOut, "not deprecated") || !strings.Contains(errOut, "customer deprecate acme") {
		t.Errorf("delete before deprecation: %d %s", code, errOut)
	}
	if code, out, _ := s.run(t, nil, "customer", "deprecate", "acme"); code != 0 || !strings.Contains(out, "deprecated") {
		t.Fatalf("deprecate: %d %s", code, out)
	}
	if code, out, _ := s.run(t, nil, "customer", "deprecate", "acme"); code != 0 || !strings.Contains(out, "already deprecated") {
		t.Errorf("deprecate again: %d %s", code, out)
	}
	if code, out, _ := s.run(t, nil, "customer", "add", "acme"); code != 0 || !strings.Contains(out, "deprecation undone") {
		t.Errorf("add undeprecates: %d %s", code, out)
	}
	if _, dep := s.aws.ThingTypeState("acme"); dep {
		t.Error("still deprecated after add")
	}
	s.run(t, nil, "customer", "deprecate", "acme")

	clock = t0.Add(3 * time.Minute)
	code, _, errOut = s.run(t, nil, "customer", "delete", "acme")
	if code != 1 || !strings.Contains(errOut, "retry at or after 2026-03-01T10:05:00Z") || !strings.Contains(errOut, "in 2m0s") {
		t.Errorf("delete 3 minutes after deprecation: %d %s", code, errOut)
	}
	if s.aws.Count("DeleteThingType") != 0 {
		t.Error("DeleteThingType called before the wait was over")
	}

	s.aws.Enrol("pc-1", "acme", strings.Repeat("a", 64), "agentgate-agent")
	s.aws.Enrol("pc-2", "acme", strings.Repeat("b", 64), "agentgate-agent")
	clock = t0.Add(6 * time.Minute)
	code, _, errOut = s.run(t, nil, "customer", "delete", "acme")
	if code != 1 || !strings.Contains(errOut, "still has 2 agent(s) (pc-1, pc-2)") || !strings.Contains(errOut, "agent delete --customer acme --all") {
		t.Errorf("delete with agents: %d %s", code, errOut)
	}
	if code, _, errOut := s.run(t, nil, "agent", "delete", "--customer", "acme", "--all"); code != 0 {
		t.Fatalf("agent delete --all: %d %s", code, errOut)
	}
	code, out, errOut = s.run(t, nil, "customer", "delete", "acme")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %s%s", code, out, errOut)
	}
	if exists, _ := s.aws.ThingTypeState("acme"); exists {
		t.Error("thing type left")
	}
	code, out, errOut = s.run(t, nil, "customer", "delete", "acme")
	if code != 0 || !strings.Contains(out, "already deleted") || !strings.Contains(errOut, "does not exist") {
		t.Errorf("delete again: %d %s%s", code, out, errOut)
	}
	if code, _, errOut := s.run(t, nil, "customer", "deprecate", "nosuch"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("deprecate missing: %d %s", code, errOut)
	}
}

// Throttled calls are retried with backoff until they pass; a throttle
// that never ends fails after retryMaxAttempts calls.
func TestCustomerCallsRetryThrottling(t *testing.T) {
	s := startIoT(t)
	n := 0
	s.aws.SetFault(func(op, _ string) awsFault {
		if op == "CreateThingType" {
			if n++; n <= 3 {
				return awsFault{Status: 429}
			}
		}
		return awsFault{}
	})
	if code, _, errOut := s.run(t, nil, "customer", "add", "acme"); code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	if got := s.aws.Count("CreateThingType fault"); got != 3 {
		t.Errorf("throttled %d times, want 3", got)
	}
	s.aws.SetFault(func(op, _ string) awsFault {
		if op == "ListThingTypes" {
			return awsFault{Status: 429}
		}
		return awsFault{}
	})
	code, _, errOut := s.run(t, nil, "customer", "list")
	if code != 1 || !strings.Contains(errOut, "ThrottlingException") || s.aws.Count("ListThingTypes") != retryMaxAttempts {
		t.Errorf("endless throttle: %d %s after %d calls", code, errOut, s.aws.Count("ListThingTypes"))
	}
}

// Malformed, oversize and hostile arguments are usage errors (exit 2) that
// reach no AWS API.
func TestCustomerRefusesBadArguments(t *testing.T) {
	s := startIoT(t)
	bad := [][]string{
		{"customer"},
		{"customer", "nosuch", "acme"},
		{"customer", "add"},
		{"customer", "add", "acme", "other"},
		{"customer", "list", "acme"},
		{"customer", "add", "a/b"},
		{"customer", "add", "../acme"},
		{"customer", "add", "acme%2F..%2Fx"},
		{"customer", "add", "agentgate"},
		{"customer", "add", "AgentGate"},
		{"customer", "add", "has:colon"},
		{"customer", "add", "+"},
		{"customer", "delete", "#"},
		{"customer", "add", "acme\n"},
		{"customer", "add", ""},
		{"customer", "add", strings.Repeat("a", 65)},
		{"customer", "add", strings.Repeat("a", 1<<20)},
		{"customer", "add", "-acme"},
		{"customer", "add", "acme", "--nope"},
		{"customer", "deprecate", "acme", "--json=maybe"},
	}
	for _, args := range bad {
		if code, _, _ := s.run(t, nil, args...); code != 2 {
			t.Errorf("%.60q: exit %d, want 2", args, code)
		}
	}
	for _, op := range []string{"CreateThingType", "DescribeThingType", "DeprecateThingType", "DeleteThingType", "ListThingTypes"} {
		if n := s.aws.Count(op); n != 0 {
			t.Errorf("%s called %d times for refused arguments", op, n)
		}
	}
	if code, _, errOut := s.run(t, nil, "customer", "-h"); code != 0 || !strings.Contains(errOut, "deprecate CUSTOMER") {
		t.Errorf("-h: %d %s", code, errOut)
	}
	if code, out, _ := s.run(t, nil, "customer", "add", "--json", "--", "acme"); code != 0 || !strings.Contains(out, `"created"`) {
		t.Errorf("-- then the ID: %d %s", code, out)
	}
}

// Listings follow nextToken: more customers and agents than one page.
func TestListingsPage(t *testing.T) {
	s := startIoT(t)
	for i := 0; i < 260; i++ {
		s.aws.AddThingType(fmt.Sprintf("c%03d", i))
		s.aws.AddThing(fmt.Sprintf("pc-%03d", i), "c000")
	}
	code, out, errOut := s.run(t, nil, "customer", "list", "--json")
	var rows []customerRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 260 || s.aws.Count("ListThingTypes") != 2 {
		t.Fatalf("customer list: %d %v %d rows, %d calls %s", code, err, len(rows), s.aws.Count("ListThingTypes"), errOut)
	}
	code, out, errOut = s.run(t, nil, "agent", "list", "--customer", "c000", "--json")
	var agents []agentRow
	if err := json.Unmarshal([]byte(out), &agents); code != 0 || err != nil || len(agents) != 260 || s.aws.Count("ListThings") != 2 {
		t.Fatalf("agent list: %d %v %d rows, %d calls %s", code, err, len(agents), s.aws.Count("ListThings"), errOut)
	}
}
