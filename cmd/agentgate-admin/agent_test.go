package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/presence"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

func certID(n int) string { return fmt.Sprintf("%064x", n) }

// setPresence writes one agent's presence item the way the presence Lambda
// does (the attributes of contract/presence).
func setPresence(t *testing.T, ddb *awsstandin.DynamoDB, customer, thing string, connected bool, since string) {
	t.Helper()
	c := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.URL) })
	if _, err := c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String("presence"),
		Key: map[string]types.AttributeValue{presence.KeyCustomer: &types.AttributeValueMemberS{Value: customer},
			presence.KeyThing: &types.AttributeValueMemberS{Value: thing}},
		UpdateExpression:         aws.String("SET #c = :c, #s = :s"),
		ExpressionAttributeNames: map[string]string{"#c": presence.AttrConnected, "#s": presence.AttrSince},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberBOOL{Value: connected},
			":s": &types.AttributeValueMemberN{Value: since}}}); err != nil {
		t.Fatal(err)
	}
}

// list and show: only the customer's things, joined with presence; show
// refuses an agent of another customer.
func TestAgentListAndShow(t *testing.T) {
	s := startIoT(t)
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	s.aws.Enrol("pc-2", "acme", certID(2), "agentgate-agent")
	s.aws.Enrol("pc-9", "other", certID(9), "agentgate-agent")
	ddb := awsstandin.StartDynamoDB()
	defer ddb.Close()
	ddb.CreateTableWithSortKey("presence", presence.KeyCustomer, presence.KeyThing) // as constructs/dataplane creates it
	setPresence(t, ddb, "acme", "pc-1", true, "1573002230757")
	setPresence(t, ddb, "acme", "pc-2", false, "1573002340451")
	pres := map[string]string{"AWS_ENDPOINT_URL_DYNAMODB": ddb.URL, EnvPresenceTable: "presence"}

	code, out, errOut := s.run(t, nil, "agent", "list", "--customer", "acme")
	if code != 0 || !strings.Contains(out, "pc-1") || !strings.Contains(out, "pc-2") || strings.Contains(out, "pc-9") || strings.Contains(out, "CONNECTED") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}
	s.aws.AddThing("untyped", "")
	code, out, errOut = s.run(t, nil, "agent", "list", "--json")
	var all []agentRow
	if err := json.Unmarshal([]byte(out), &all); code != 0 || err != nil || len(all) != 3 ||
		all[0].Customer+"/"+all[0].Agent != "acme/pc-1" || all[2].Customer+"/"+all[2].Agent != "other/pc-9" || all[0].Connected != nil {
		t.Fatalf("list every customer: %d %v %+v %s", code, err, all, errOut)
	}
	code, out, errOut = s.run(t, pres, "agent", "list", "--customer", "acme", "--online", "--json")
	var rows []agentRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Agent != "pc-1" || !*rows[0].Connected || rows[0].Since != "2019-11-06T01:03:50Z" {
		t.Fatalf("list --online: %d %v %+v\n%s%s", code, err, rows, out, errOut)
	}
	code, out, _ = s.run(t, pres, "agent", "list", "--customer", "acme")
	if code != 0 || !strings.Contains(out, "CONNECTED") || !strings.Contains(out, "false") {
		t.Errorf("list with the table: %d\n%s", code, out)
	}

	code, out, errOut = s.run(t, pres, "agent", "show", "acme", "pc-1", "--json")
	rows = nil
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || len(rows[0].Certificates) != 1 ||
		rows[0].Certificates[0].ID != certID(1) || rows[0].Certificates[0].Status != "ACTIVE" || !*rows[0].Connected {
		t.Fatalf("show: %d %v\n%s%s", code, err, out, errOut)
	}
	if code, out, _ := s.run(t, nil, "agent", "show", "acme", "pc-2"); code != 0 || !strings.Contains(out, "unknown (no presence table)") {
		t.Errorf("show without table: %d %s", code, out)
	}
	if code, _, errOut := s.run(t, nil, "agent", "show", "acme", "pc-9"); code != 1 || !strings.Contains(errOut, `not customer acme's (its thing type is "other")`) {
		t.Errorf("show another customer's agent: %d %s", code, errOut)
	}
	if code, _, errOut := s.run(t, nil, "agent", "show", "acme", "pc-404"); code != 1 || !strings.Contains(errOut, "no such agent") {
		t.Errorf("show missing: %d %s", code, errOut)
	}
}

// revoke: certificate REVOKED, live connection cut, retained config
// cleared, thing kept; again: nothing left to do, still exit 0. delete: the
// certificate detached and deleted, the thing gone; again: no-op. An agent
// named under the wrong customer is untouched.
func TestAgentRevokeThenDelete(t *testing.T) {
	s := startIoT(t)
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	s.aws.Enrol("pc-x", "other", certID(2), "agentgate-agent")
	s.aws.SetConnected("pc-1", true)
	s.aws.SetConnected("pc-x", true)
	cfgTopic := topics.ConfigTopic("acme", "pc-1")
	publishRetained(t, s, cfgTopic)

	code, out, errOut := s.run(t, nil, "agent", "revoke", "acme", "pc-1", "--json")
	var rows []agentRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Result != "revoked" || rows[0].Connection != "cut" || rows[0].Config != "cleared" {
		t.Fatalf("revoke: %d %v\n%s%s", code, err, out, errOut)
	}
	if st := s.aws.CertificateStatus(certID(1)); st != "REVOKED" {
		t.Errorf("certificate %s", st)
	}
	if _, ok := s.aws.Retained(cfgTopic); ok || s.aws.Connected("pc-1") || !s.aws.HasThing("pc-1") {
		t.Errorf("after revoke: retained %v connected %v thing %v", ok, s.aws.Connected("pc-1"), s.aws.HasThing("pc-1"))
	}
	updates := s.aws.Count("UpdateCertificate")
	code, out, errOut = s.run(t, nil, "agent", "revoke", "acme", "pc-1")
	if code != 0 || !strings.Contains(out, "not connected") || s.aws.Count("UpdateCertificate") != updates {
		t.Errorf("revoke again: %d %s%s (UpdateCertificate %d→%d)", code, out, errOut, updates, s.aws.Count("UpdateCertificate"))
	}

	code, _, errOut = s.run(t, nil, "agent", "revoke", "acme", "pc-x")
	if code != 1 || !strings.Contains(errOut, "not customer acme's") || s.aws.CertificateStatus(certID(2)) != "ACTIVE" || !s.aws.Connected("pc-x") {
		t.Errorf("revoke across customers: %d %s, cert %s", code, errOut, s.aws.CertificateStatus(certID(2)))
	}
	if code, _, _ := s.run(t, nil, "agent", "delete", "acme", "pc-x"); code != 1 || !s.aws.HasThing("pc-x") {
		t.Errorf("delete across customers: %d", code)
	}

	code, out, errOut = s.run(t, nil, "agent", "delete", "acme", "pc-1")
	if code != 0 || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %d %s%s", code, out, errOut)
	}
	if s.aws.HasThing("pc-1") || s.aws.CertificateStatus(certID(1)) != "" || s.aws.Count("DetachPolicy") != 1 || s.aws.Count("DetachThingPrincipal") != 1 {
		t.Errorf("after delete: thing %v cert %q detach policy %d principal %d", s.aws.HasThing("pc-1"), s.aws.CertificateStatus(certID(1)),
			s.aws.Count("DetachPolicy"), s.aws.Count("DetachThingPrincipal"))
	}
	if code, out, _ := s.run(t, nil, "agent", "delete", "acme", "pc-1"); code != 0 || !strings.Contains(out, "already deleted") {
		t.Errorf("delete again: %d %s", code, out)
	}
	if code, _, errOut := s.run(t, nil, "agent", "revoke", "acme", "pc-1"); code != 1 || !strings.Contains(errOut, "no such agent") {
		t.Errorf("revoke a deleted agent: %d %s", code, errOut)
	}
}

// DetachThingPrincipal is asynchronous: DeleteCertificate right after it
// may still find the certificate attached. delete waits it out, up to
// deleteConflictAttempts calls; a server error (500) is retried as well.
func TestAgentDeleteWaitsOutDetachPropagation(t *testing.T) {
	s := startIoT(t)
	s.aws.Enrol("pc-1", "acme", certID(1), "agentgate-agent")
	s.aws.Enrol("pc-2", "acme", certID(2), "agentgate-agent")
	s.aws.SetDetachLag(2)
	failed := false
	s.aws.SetFault(func(op, _ string) awsFault {
		if op == "DeleteThing" && !failed {
			failed = true
			return awsFault{Status: 500}
		}
		return awsFault{}
	})
	if code, out, errOut := s.run(t, nil, "agent", "delete", "acme", "pc-1"); code != 0 || s.aws.HasThing("pc-1") {
		t.Fatalf("delete: %d %s%s", code, out, errOut)
	}
	if got := s.aws.Count("DeleteCertificate"); got != 3 {
		t.Errorf("DeleteCertificate called %d times, want 3 (2 conflicts)", got)
	}
	if got := s.aws.Count("DeleteThing fault"); got != 1 {
		t.Errorf("DeleteThing 500s: %d", got)
	}
	s.aws.SetDetachLag(deleteConflictAttempts)
	code, _, errOut := s.run(t, nil, "agent", "delete", "acme", "pc-2")
	if code != 1 || !strings.Contains(errOut, "DeleteConflictException") || !s.aws.HasThing("pc-2") ||
		!strings.Contains(errOut, "aws iot delete-certificate --certificate-id "+certID(2)) {
		t.Fatalf("endless conflict: %d %s", code, errOut)
	}
	s.aws.SetDetachLag(0)
	// The re-run no longer reaches the detached certificate through the
	// thing (the error above named it) and deletes the thing.
	if code, out, errOut := s.run(t, nil, "agent", "delete", "acme", "pc-2"); code != 0 || s.aws.HasThing("pc-2") || s.aws.CertificateStatus(certID(2)) != "REVOKED" {
		t.Fatalf("re-run: %d %s%s", code, out, errOut)
	}
}

func publishRetained(t *testing.T, s *iotStandins, topic string) {
	t.Helper()
	a, err := newIoTAdmin(t.Context(), &environment{getenv: func(k string) (string, bool) {
		return map[string]string{"AWS_ENDPOINT_URL_IOT_DATA_PLANE": s.aws.DataURL}[k], k == "AWS_ENDPOINT_URL_IOT_DATA_PLANE"
	}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.dataPlane(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Publish(t.Context(), &iotdataplane.PublishInput{Topic: aws.String(topic), Qos: 1, Retain: true, Payload: []byte(`{"v":1}`)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.aws.Retained(topic); !ok {
		t.Fatal("retained config not stored")
	}
}

// Bulk revoke of a customer's agents under throttling: every agent
// revoked, the throttled calls retried, another customer's agent untouched,
// progress on stderr. Then a bulk delete from a file.
func TestAgentBulkRevokeAndDelete(t *testing.T) {
	s := startIoT(t)
	prev := progressEvery
	progressEvery = 10
	t.Cleanup(func() { progressEvery = prev })
	const n = 30
	for i := 0; i < n; i++ {
		s.aws.Enrol(fmt.Sprintf("pc-%02d", i), "acme", certID(i+1), "agentgate-agent")
	}
	s.aws.Enrol("pc-other", "other", certID(1000), "agentgate-agent")
	var mu sync.Mutex
	throttled := 0
	s.aws.SetFault(func(op, _ string) awsFault {
		if op == "UpdateCertificate" || op == "ListThingPrincipals" || op == "DeleteConnection" {
			mu.Lock()
			defer mu.Unlock()
			throttled++
			if throttled%4 == 0 {
				return awsFault{Status: 429}
			}
		}
		return awsFault{}
	})
	code, out, errOut := s.run(t, nil, "agent", "revoke", "--customer", "acme", "--all", "--parallel", "3")
	if code != 0 {
		t.Fatalf("bulk revoke: %d\n%s%s", code, out, errOut)
	}
	for i := 0; i < n; i++ {
		if st := s.aws.CertificateStatus(certID(i + 1)); st != "REVOKED" {
			t.Errorf("pc-%02d: %s", i, st)
		}
	}
	if s.aws.CertificateStatus(certID(1000)) != "ACTIVE" {
		t.Error("another customer's agent revoked")
	}
	faults := s.aws.Count("UpdateCertificate fault") + s.aws.Count("ListThingPrincipals fault") + s.aws.Count("DeleteConnection fault")
	if faults == 0 || !strings.Contains(errOut, fmt.Sprintf("%d/%d done, 0 failed, %d throttled", n, n, faults)) ||
		!strings.Contains(errOut, "10/30 done") || !strings.Contains(errOut, "1/30 done") {
		t.Errorf("progress (%d faults):\n%s", faults, errOut)
	}
	s.aws.SetFault(nil)

	file := filepath.Join(t.TempDir(), "agents.txt")
	body := "# offboard\npc-00\n\npc-01\npc-01\n  pc-02  \npc-404\npc-other\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = s.run(t, nil, "agent", "delete", "--customer", "acme", "--from", file, "--json")
	var rows []agentRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 1 || len(rows) != 5 {
		t.Fatalf("bulk delete: %d %v\n%s%s", code, err, out, errOut)
	}
	want := map[string]string{"pc-00": "deleted", "pc-01": "deleted", "pc-02": "deleted", "pc-404": "already deleted", "pc-other": "failed"}
	for _, r := range rows {
		if want[r.Agent] != r.Result {
			t.Errorf("%s: %s (%s), want %s", r.Agent, r.Result, r.Error, want[r.Agent])
		}
	}
	if !strings.Contains(errOut, "1 of 5 agents failed") || !s.aws.HasThing("pc-other") || s.aws.HasThing("pc-00") || !s.aws.HasThing("pc-03") {
		t.Errorf("after bulk delete: %s", errOut)
	}
}

// Malformed, oversize and hostile arguments and files: exit 2, no AWS call.
func TestAgentRefusesBadArguments(t *testing.T) {
	s := startIoT(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	traversal := write("traversal", "pc-1\n../../etc/passwd\n")
	wildcard := write("wildcard", "pc-+\n")
	empty := write("empty", "# nothing\n\n")
	longLine := write("longline", strings.Repeat("a", 5000)+"\n")
	big := write("big", strings.Repeat("pc-1\n", maxAgentFileBytes/5+1))
	bad := [][]string{
		{"agent"},
		{"agent", "nosuch"},
		{"agent", "list", "--customer", "a/b"},
		{"agent", "list", "--customer", "acme", "extra"},
		{"agent", "list", "--customer", "acme", "--online"}, // no table
		{"agent", "show", "acme"},
		{"agent", "show", "acme", "pc-1", "pc-2"},
		{"agent", "show", "acme", "../pc-1"},
		{"agent", "show", "agentgate", "releases"},
		{"agent", "revoke", "acme"},
		{"agent", "revoke", "acme", "pc/1"},
		{"agent", "revoke", "acme", "#"},
		{"agent", "revoke", "acme", strings.Repeat("a", 129)},
		{"agent", "revoke", "acme", "pc-1", "--all"},
		{"agent", "revoke", "--all"},
		{"agent", "revoke", "--customer", "acme"},
		{"agent", "revoke", "--customer", "acme", "acme", "pc-1"},
		{"agent", "revoke", "--customer", "acme", "--all", "--from", empty},
		{"agent", "revoke", "--customer", "acme", "--all", "--parallel", "0"},
		{"agent", "revoke", "--customer", "acme", "--all", "--parallel", "1000"},
		{"agent", "revoke", "--customer", "a+", "--all"},
		{"agent", "delete", "--customer", "acme", "--from", traversal},
		{"agent", "delete", "--customer", "acme", "--from", wildcard},
		{"agent", "delete", "--customer", "acme", "--from", empty},
		{"agent", "delete", "--customer", "acme", "--from", longLine},
		{"agent", "delete", "--customer", "acme", "--from", big},
		{"agent", "delete", "--customer", "acme", "--from", filepath.Join(dir, "missing")},
		{"agent", "delete", "acme", "pc-1", "--force"},
	}
	for _, args := range bad {
		if code, _, errOut := s.run(t, nil, args...); code != 2 {
			t.Errorf("%.80q: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	for _, op := range []string{"ListThings", "DescribeThing", "ListThingPrincipals", "UpdateCertificate", "DeleteThing", "DeleteConnection", "Publish"} {
		if c := s.aws.Count(op); c != 0 {
			t.Errorf("%s called %d times for refused arguments", op, c)
		}
	}
	if code, _, errOut := s.run(t, nil, "agent", "-h"); code != 0 || !strings.Contains(errOut, "revoke --customer C (--all | --from FILE)") {
		t.Errorf("-h: %d %s", code, errOut)
	}
}

// BenchmarkBulkRevokeAtDocumentedRates revokes b.N agents of one customer
// with the real per-API rates (apiQuotas as shipped) against the stand-in:
// ListThingPrincipals and the undocumented APIs (10 TPS) bound it at about
// 10 agents a second whatever --parallel is. Reports agents/s.
func BenchmarkBulkRevokeAtDocumentedRates(b *testing.B) {
	a := awsstandin.Start()
	defer a.Close()
	prev := awsConfig
	awsConfig = func(context.Context) (aws.Config, error) { return awsstandin.Config(), nil }
	defer func() { awsConfig = prev }()
	for i := 0; i < b.N; i++ {
		a.Enrol(fmt.Sprintf("pc-%06d", i), "acme", certID(i+1), "agentgate-agent")
	}
	var out, errb strings.Builder
	vars := map[string]string{"AWS_ENDPOINT_URL_IOT": a.IoTURL, "AWS_ENDPOINT_URL_IOT_DATA_PLANE": a.DataURL}
	env := &environment{stdout: &out, stderr: &errb, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	b.ResetTimer()
	if code := run(context.Background(), []string{"agent", "revoke", "--customer", "acme", "--all", "--parallel", "8"}, env); code != 0 {
		b.Fatalf("exit %d: %s", code, errb.String())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "agents/s")
}
