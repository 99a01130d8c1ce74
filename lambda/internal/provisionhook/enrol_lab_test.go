package provisionhook_test

// End to end in the lab: an agent with nothing but a claim certificate and
// an install token enrols through the relay (certificate path, ALPN
// x-amzn-mqtt-ca) against the fleet-provisioning stand-in, which calls this
// package's hook as IoT calls the Lambda; then it connects with its new
// certificate and receives its configuration.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/enroll"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/provisionstandin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

type enrolLab struct {
	*world
	lab   *agentlab.Lab
	fleet *provisionstandin.StandIn
	claim tls.Certificate
}

func startEnrolLab(t *testing.T) *enrolLab {
	t.Helper()
	l, err := agentlab.Start(t.TempDir(), agentlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	w := newWorld(t)
	w.now = time.Now() // the lab's certificates are issued on the wall clock
	fleet := provisionstandin.New(provisioning.DefaultTemplateName, "agentgate-agent", templateARN, w.h.Handle, l.CA.Sign)
	fleet.OnThing = func(th provisionstandin.Thing) { w.aws.AddThing(th.Name, th.Type) }
	fleet.AddThingType("acme")
	fleet.AddThingType("globex")
	if err := l.Broker.AddHook(fleet, nil); err != nil {
		t.Fatal(err)
	}
	claim, err := l.CA.ClientLeaf("claim-installer-build-7")
	if err != nil {
		t.Fatal(err)
	}
	return &enrolLab{world: w, lab: l, fleet: fleet, claim: claim}
}

func (e *enrolLab) config(dir, token string) enroll.Config {
	return enroll.Config{
		IoTEndpoint: agentlab.IoTHost, ClaimCertificate: e.claim, RootCAs: e.lab.CA.Pool,
		Dialer: &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: e.lab.RelayPort, Resolver: e.lab.DNS.Resolver(), Timeout: 2 * time.Second},
		Token:  token, Dir: dir, Timeout: 20 * time.Second,
	}
}

func TestFreshAgentEnrolsThroughTheRelayThenReceivesItsConfig(t *testing.T) {
	e := startEnrolLab(t)
	tok := e.issue(t, "acme", 1)
	dir := filepath.Join(t.TempDir(), "agent")
	cfg := e.config(dir, tok.String())
	cfg.AgentID = "site7-agent"
	cfg.ExpectedCustomerID = "acme"
	res, err := enroll.Enrol(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.AgentID != "site7-agent" || res.CustomerID != "acme" || res.AlreadyEnrolled {
		t.Fatalf("result %+v", res)
	}
	things := e.fleet.Things()
	if len(things) != 1 || things["site7-agent"].Type != "acme" || e.fleet.CertificateStatus(res.CertificateID) != "ACTIVE" {
		t.Fatalf("things %+v", things)
	}
	if e.lab.Gateway.CertificateConnections() != 1 {
		t.Errorf("%d certificate connections at the gateway, want the enrolment's", e.lab.Gateway.CertificateConnections())
	}
	for _, f := range []string{enroll.KeyFile, enroll.CertFile, enroll.ResultFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v", st.Mode())
	}
	// A second run does nothing and says so.
	again, err := enroll.Enrol(context.Background(), cfg)
	if err != nil || !again.AlreadyEnrolled || again.CertificateID != res.CertificateID || e.fleet.Calls("RegisterThing") != 1 {
		t.Fatalf("second run: %+v %v", again, err)
	}

	// The agent connects with its new certificate and gets its configuration.
	doc, _ := envelope.CompactObject([]byte(`{"enrolled":true}`))
	b, _ := envelope.Encode(doc, 1764406800000, time.UnixMilli(1764406800000))
	if err := e.lab.Broker.Publish(topics.ConfigTopic(res.CustomerID, res.AgentID), b, true, 1); err != nil {
		t.Fatal(err)
	}
	cert, err := agent.LoadCertificate(res.CertFile, res.KeyFile, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan envelope.Envelope, 1)
	a, err := agent.New(agent.Config{
		CustomerID: res.CustomerID, ThingName: res.AgentID, Transport: agent.TransportCertificate,
		IoTEndpoint: agentlab.IoTHost, Certificate: cert, RootCAs: e.lab.CA.Pool, Dialer: cfg.Dialer,
		KeepAlive: 30 * time.Second, ConnectTimeout: 10 * time.Second,
		OnConfig: func(env envelope.Envelope) error { got <- env; return nil },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case env := <-got:
		if string(env.Config) != `{"enrolled":true}` {
			t.Fatalf("config %s", env.Config)
		}
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(30 * time.Second): // deadlock guard, not a threshold
		t.Fatal("no configuration")
	}
}

func TestHostileEnrolments(t *testing.T) {
	e := startEnrolLab(t)
	ctx := context.Background()
	used := e.issue(t, "acme", 1)
	if _, err := enroll.Enrol(ctx, e.config(t.TempDir(), used.String())); err != nil {
		t.Fatal(err)
	}
	expired := e.issue(t, "acme", 5)
	e.mu.Lock()
	e.now = e.now.Add(2 * time.Hour) // the hook's clock: every token issued so far is expired
	e.mu.Unlock()
	fresh := e.issue(t, "acme", 5)
	revoked := e.issue(t, "acme", 5)
	if err := e.store.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	wrongCustomer := e.config(t.TempDir(), fresh.String())
	wrongCustomer.ExpectedCustomerID = "globex"
	takenByGlobex := e.config(t.TempDir(), fresh.String())
	takenByGlobex.AgentID = "globex-agent"
	e.fleet.AddThing("globex-agent", "globex")
	e.aws.AddThing("globex-agent", "globex")
	for name, c := range map[string]struct {
		cfg  enroll.Config
		want error
	}{
		"replayed token":           {e.config(t.TempDir(), used.String()), enroll.ErrRefused},
		"expired token":            {e.config(t.TempDir(), expired.String()), enroll.ErrRefused},
		"revoked token":            {e.config(t.TempDir(), revoked.String()), enroll.ErrRefused},
		"wrong customer":           {wrongCustomer, enroll.ErrRefused},
		"another customer's agent": {takenByGlobex, enroll.ErrRefused},
		"malformed token":          {e.config(t.TempDir(), "agt1.not-a-token"), enroll.ErrToken},
	} {
		before := len(e.fleet.Things())
		_, err := enroll.Enrol(ctx, c.cfg)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if got := len(e.fleet.Things()); got != before {
			t.Errorf("%s: a thing was created", name)
		}
	}
	if th := e.fleet.Things()["globex-agent"]; th.Type != "globex" || len(th.Certificates) != 0 {
		t.Errorf("another customer's thing changed: %+v", th)
	}
	if rec, _ := e.store.Get(ctx, fresh.ID); rec.Uses != 0 {
		t.Errorf("refused enrolments used the fresh token: %+v", rec)
	}
}

// A tampered CSR (its signature no longer matches) is rejected by
// CreateCertificateFromCsr; nothing is registered.
func TestTamperedCSRIsRejected(t *testing.T) {
	e := startEnrolLab(t)
	payload, _ := json.Marshal(provisioning.CreateCertificateFromCSRRequest{CertificateSigningRequest: tamperedCSR(t)})
	answer, status := e.fleet.CreateCertificate(payload)
	var rej provisioning.ErrorResponse
	if status != 400 || json.Unmarshal(answer, &rej) != nil || rej.ErrorCode != "InvalidCSR" {
		t.Fatalf("%d %s", status, answer)
	}
	// A certificate for another key than the agent's is refused by the agent.
	e.fleet.TamperCertificates = true
	tok := e.issue(t, "acme", 1)
	if _, err := enroll.Enrol(context.Background(), e.config(t.TempDir(), tok.String())); !errors.Is(err, enroll.ErrCertificate) {
		t.Fatalf("swapped certificate: %v", err)
	}
	if len(e.fleet.Things()) != 0 || e.fleet.Calls("RegisterThing") != 0 {
		t.Fatal("registered with a certificate of another key")
	}
}

// tamperedCSR is a valid CSR with one byte of its subject changed after
// signing.
func tamperedCSR(t *testing.T) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "agent-aaaa"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(der, []byte("agent-aaaa"))
	der[i+len("agent-")] = 'b'
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// Interrupted enrolments: a crash after the certificate arrived, and an
// answer to RegisterThing lost after IoT registered the thing. The next
// run finishes with the same agent ID and key; one thing only, one use.
func TestInterruptedEnrolmentFinishesOnTheNextRun(t *testing.T) {
	e := startEnrolLab(t)
	ctx := context.Background()
	t.Run("crash before RegisterThing", func(t *testing.T) {
		tok := e.issue(t, "acme", 1)
		dir := t.TempDir()
		e.fleet.CutBefore("RegisterThing", 1)
		crash := e.config(dir, tok.String())
		crash.Attempts = 1 // the process dies with its connection
		if _, err := enroll.Enrol(ctx, crash); !errors.Is(err, enroll.ErrConnection) {
			t.Fatalf("first run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "pending.json")); err != nil {
			t.Fatalf("no stored certificate: %v", err)
		}
		csrs := e.fleet.Calls("CreateCertificateFromCsr")
		res, err := enroll.Enrol(ctx, e.config(dir, tok.String()))
		if err != nil {
			t.Fatal(err)
		}
		if e.fleet.Calls("CreateCertificateFromCsr") != csrs {
			t.Error("the second run asked for another certificate instead of registering the stored one")
		}
		if th := e.fleet.Things()[res.AgentID]; len(th.Certificates) != 1 {
			t.Errorf("thing %+v", th)
		}
	})
	t.Run("answer lost after registration", func(t *testing.T) {
		tok := e.issue(t, "acme", 1)
		dir := t.TempDir()
		e.fleet.CutAfter("RegisterThing", 1)
		crash := e.config(dir, tok.String())
		crash.Attempts = 1
		if _, err := enroll.Enrol(ctx, crash); !errors.Is(err, enroll.ErrConnection) {
			t.Fatalf("first run: %v", err)
		}
		things := len(e.fleet.Things())
		res, err := enroll.Enrol(ctx, e.config(dir, tok.String()))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.fleet.Things()) != things {
			t.Error("the second run created another thing")
		}
		th := e.fleet.Things()[res.AgentID]
		if th.Type != "acme" || len(th.Certificates) != 2 || e.fleet.CertificateStatus(res.CertificateID) != "ACTIVE" {
			t.Errorf("thing %+v", th)
		}
		if rec, _ := e.store.Get(ctx, tok.ID); rec.Uses != 1 {
			t.Errorf("uses %d, want 1", rec.Uses)
		}
	})
	t.Run("connection lost, retried in the same run", func(t *testing.T) {
		tok := e.issue(t, "acme", 1)
		csrs, regs := e.fleet.Calls("CreateCertificateFromCsr"), e.fleet.Calls("RegisterThing")
		e.fleet.CutBefore("RegisterThing", 1)
		res, err := enroll.Enrol(ctx, e.config(t.TempDir(), tok.String()))
		if err != nil {
			t.Fatal(err)
		}
		if e.fleet.Calls("CreateCertificateFromCsr")-csrs != 1 || e.fleet.Calls("RegisterThing")-regs != 2 {
			t.Errorf("calls: %d CSR, %d RegisterThing", e.fleet.Calls("CreateCertificateFromCsr")-csrs, e.fleet.Calls("RegisterThing")-regs)
		}
		if th := e.fleet.Things()[res.AgentID]; len(th.Certificates) != 1 {
			t.Errorf("thing %+v", th)
		}
	})
}

// A token for a customer whose thing type does not exist (not onboarded,
// or deleted) is admitted by the hook but RegisterThing fails; once the
// type exists the next run finishes the same enrolment with the same use.
func TestCustomerWithoutThingType(t *testing.T) {
	e := startEnrolLab(t)
	ctx := context.Background()
	tok := e.issue(t, "initech", 1)
	dir := t.TempDir()
	if _, err := enroll.Enrol(ctx, e.config(dir, tok.String())); !errors.Is(err, enroll.ErrRejected) {
		t.Fatalf("no thing type: %v", err)
	}
	if len(e.fleet.Things()) != 0 {
		t.Fatal("a thing without its type was created")
	}
	e.fleet.AddThingType("initech")
	res, err := enroll.Enrol(ctx, e.config(dir, tok.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.CustomerID != "initech" || e.fleet.Things()[res.AgentID].Type != "initech" {
		t.Fatalf("%+v", res)
	}
	if rec, _ := e.store.Get(ctx, tok.ID); rec.Uses != 1 {
		t.Fatalf("uses %d", rec.Uses)
	}
}

// A broken or hostile broker: every malformed, mismatched or oversize
// answer is refused with its reason, and nothing is written as enrolled.
func TestHostileAnswersAreRefused(t *testing.T) {
	e := startEnrolLab(t)
	big := strings.Repeat("x", provisioning.MaxMessageBytes+10)
	for name, c := range map[string]struct {
		rewrite func(op string, answer []byte, status int) ([]byte, bool)
		want    error
	}{
		"certificate answer not JSON": {func(op string, a []byte, _ int) ([]byte, bool) {
			if op == "CreateCertificateFromCsr" {
				return []byte("{"), false
			}
			return a, false
		}, enroll.ErrRejected},
		"registered another thing": {func(op string, a []byte, _ int) ([]byte, bool) {
			if op == "RegisterThing" {
				return []byte(`{"thingName":"someone-else","deviceConfiguration":{"CustomerId":"acme"}}`), false
			}
			return a, false
		}, enroll.ErrRejected},
		"registered without a customer": {func(op string, a []byte, _ int) ([]byte, bool) {
			if op == "RegisterThing" {
				var r provisioning.RegisterThingResponse
				json.Unmarshal(a, &r)
				r.DeviceConfiguration = nil
				b, _ := json.Marshal(r)
				return b, false
			}
			return a, false
		}, enroll.ErrRejected},
		"rejection not JSON":                {func(op string, a []byte, _ int) ([]byte, bool) { return []byte("nope"), true }, enroll.ErrRejected},
		"answer above the parser's bound":   {func(op string, a []byte, _ int) ([]byte, bool) { return []byte(big), false }, enroll.ErrRejected},
		"packet above the declared maximum": {func(op string, a []byte, _ int) ([]byte, bool) { return []byte(big + big), false }, enroll.ErrConnection},
	} {
		e.fleet.Rewrite = c.rewrite
		tok := e.issue(t, "acme", 1)
		dir := t.TempDir()
		cfg := e.config(dir, tok.String())
		cfg.Attempts, cfg.Timeout = 1, 3*time.Second // the oversize answer never arrives: bounded wait
		_, err := enroll.Enrol(context.Background(), cfg)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if _, err := enroll.Load(dir); err == nil {
			t.Errorf("%s: written as enrolled", name)
		}
	}
}

// BenchmarkEnrolThroughTheRelay is one whole enrolment per op (key pair,
// TLS through the relay, CreateCertificateFromCsr, RegisterThing with the
// hook on the DynamoDB and IoT stand-ins, files written); it reports the
// fleet-provisioning requests per agent.
func BenchmarkEnrolThroughTheRelay(b *testing.B) {
	e := startBenchLab(b)
	w, fleet := e.world, e.fleet
	tok := w.issue(b, "acme", 10000)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := enroll.Enrol(context.Background(), e.config(filepath.Join(b.TempDir(), fmt.Sprint(i)), tok.String())); err != nil {
			b.Fatalf("enrolment %d of %d: %v", i, b.N, err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(fleet.Calls("CreateCertificateFromCsr"))/n, "CreateCertificateFromCsr/agent")
	b.ReportMetric(float64(fleet.Calls("RegisterThing"))/n, "RegisterThing/agent")
	b.ReportMetric(float64(w.db.Count("GetItem")+w.db.Count("UpdateItem"))/n, "DynamoDB/agent")
	b.ReportMetric(float64(e.lab.Gateway.CertificateConnections())/n, "connections/agent")
	if len(fleet.Things()) != b.N {
		b.Fatalf("%d things for %d enrolments", len(fleet.Things()), b.N)
	}
}

// startBenchLab is the enrolment lab for benchmarks: the hook's own
// per-customer rate limit out of the way.
func startBenchLab(b *testing.B) *enrolLab {
	l, err := agentlab.Start(b.TempDir(), agentlab.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(l.Close)
	w := newWorld(b)
	w.now = time.Now()
	w.h.RatePerMinute = 1 << 30
	fleet := provisionstandin.New(provisioning.DefaultTemplateName, "agentgate-agent", templateARN, w.h.Handle, l.CA.Sign)
	fleet.OnThing = func(th provisionstandin.Thing) { w.aws.AddThing(th.Name, th.Type) }
	fleet.AddThingType("acme")
	if err := l.Broker.AddHook(fleet, nil); err != nil {
		b.Fatal(err)
	}
	claim, err := l.CA.ClientLeaf("claim")
	if err != nil {
		b.Fatal(err)
	}
	return &enrolLab{world: w, lab: l, fleet: fleet, claim: claim}
}
