//go:build linux

package agent_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// dialOnce makes one connection attempt with cfg and returns its error.
func dialOnce(t *testing.T, cfg agent.Config) error {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := a.Dial(ctx)
	if c != nil {
		c.Close()
	}
	return err
}

func otherCA(t *testing.T) *testpki.CA {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// TestClearErrors: each failure an operator meets in the field is reported
// as its own kind, with text that says what was seen and what to check.
func TestClearErrors(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	rogue := otherCA(t)
	rogueCert, err := rogue.ClientLeaf(agentlab.ThingName) // right name, CA unknown to IoT
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := l.CA.ClientLeaf(agentlab.ThingName)
	if err != nil {
		t.Fatal(err)
	}
	mismatched := tls.Certificate{Certificate: l.AgentCert.Certificate, PrivateKey: otherKey.PrivateKey}

	cases := []struct {
		name  string
		setup func(*agent.Config)
		lab   func()
		undo  func()
		want  error
		text  []string
	}{
		{name: "certificate from an unknown CA", setup: func(c *agent.Config) { c.Certificate = rogueCert },
			want: agenterr.ErrBadCertificate, text: []string{"refused the client certificate", "remote error: tls:", "registered in IoT"}},
		{name: "key not the certificate's pair", setup: func(c *agent.Config) { c.Certificate = mismatched },
			want: agenterr.ErrBadCertificate, text: []string{"refused the client certificate", "is the key its pair"}},
		{name: "server certificate from another CA", setup: func(c *agent.Config) { c.RootCAs = rogue.Pool },
			want: agenterr.ErrServerCertificate, text: []string{"does not verify", "root CA bundle"}},
		{name: "relay unreachable", lab: func() { l.DNS.SetAnswers(netip.MustParseAddr("127.0.0.9")) },
			undo: func() { l.DNS.SetAnswers(agentlab.RelayIPs...) },
			want: agenterr.ErrUnreachable, text: []string{"via relay " + agentlab.RelayName, "127.0.0.9:" + l.RelayPort + ": connect: connection refused"}},
		{name: "relay name does not resolve", setup: func(c *agent.Config) { c.Dialer.RelayName = "nowhere.agentgate.test" },
			want: agenterr.ErrUnreachable, text: []string{"resolving nowhere.agentgate.test"}},
		{name: "credentials provider answers expired credentials", lab: func() { l.Creds.SetExpiredAnswers(true) },
			undo: func() { l.Creds.SetExpiredAnswers(false) },
			want: agenterr.ErrCredentialsExpired, text: []string{"credentials expired at", "check the local clock"}},
		{name: "local clock 10 min fast (seen in the provider's Date)", setup: func(c *agent.Config) {
			c.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
		}, want: agenterr.ErrClockSkew, text: []string{"ahead of AWS's", "fix NTP"}},
		{name: "gateway's clock 10 min ahead (signature expired)", lab: func() { l.Gateway.SetClockOffset(10 * time.Minute) },
			undo: func() { l.Gateway.SetClockOffset(0) },
			want: agenterr.ErrClockSkew, text: []string{"Signature expired:", "off by more than 5 minutes"}},
		{name: "gateway's clock 10 min behind (signature not yet current)", lab: func() { l.Gateway.SetClockOffset(-10 * time.Minute) },
			undo: func() { l.Gateway.SetClockOffset(0) },
			want: agenterr.ErrClockSkew, text: []string{"Signature not yet current:"}},
		{name: "wrong role alias", setup: func(c *agent.Config) { c.RoleAlias = "someone-else" },
			want: agenterr.ErrRefused, text: []string{"HTTP 404", `role alias "someone-else" does not exist`}},
		{name: "thing name not the certificate's thing", setup: func(c *agent.Config) { c.ThingName = "dev-0001" },
			want: agenterr.ErrRefused, text: []string{"HTTP 403", "Access Denied", `thing "dev-0001"`}},
		{name: "wrong region in the signature", setup: func(c *agent.Config) { c.Region = "us-east-1" },
			want: agenterr.ErrRefused, text: []string{"HTTP 403", "Credential should be scoped"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := labConfig(l, newRecorder(), "")
			if tc.setup != nil {
				tc.setup(&cfg)
			}
			if tc.lab != nil {
				tc.lab()
			}
			if tc.undo != nil {
				defer tc.undo()
			}
			err := dialOnce(t, cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, s := range tc.text {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	// After all that, the lab itself is fine: a correct agent connects.
	if err := dialOnce(t, labConfig(l, newRecorder(), "")); err != nil {
		t.Fatalf("correct agent: %v", err)
	}
}

// TestExpiredSessionTokenAtTheGateway: credentials that were valid when
// fetched but expired by the time IoT sees them are named as such, not as a
// signature problem.
func TestExpiredSessionTokenAtTheGateway(t *testing.T) {
	l := startLab(t, agentlab.Options{CredentialsDuration: 90 * time.Second})
	l.Gateway.SetClockOffset(3 * time.Minute) // within SigV4's 5 min, past the token's life
	err := dialOnce(t, labConfig(l, newRecorder(), ""))
	if !errors.Is(err, agenterr.ErrCredentialsExpired) || !strings.Contains(err.Error(), "The security token included in the request is expired") {
		t.Fatalf("error %v", err)
	}
}

// TestCredentialsRefreshBeforeExpiry: the agent's credentials are an
// aws.CredentialsCache that serves cached credentials while they have more
// than the refresh window left and fetches new ones inside it.
func TestCredentialsRefreshBeforeExpiry(t *testing.T) {
	for _, tc := range []struct {
		life     time.Duration
		requests int
	}{
		{time.Hour, 1},       // well outside the 5 min window: cached
		{2 * time.Minute, 3}, // inside it: every Retrieve fetches
	} {
		t.Run(tc.life.String(), func(t *testing.T) {
			l := startLab(t, agentlab.Options{CredentialsDuration: tc.life})
			a, err := agent.New(labConfig(l, newRecorder(), ""))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				c, err := a.Credentials().Retrieve(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if !c.CanExpire || c.Source != "IoTCredentialsProvider" {
					t.Fatalf("credentials %+v", c)
				}
			}
			if got := l.Creds.Requests(agentlab.ThingName); got != tc.requests {
				t.Errorf("credentials lasting %s: %d requests for 3 retrievals, want %d", tc.life, got, tc.requests)
			}
		})
	}
}

// TestCertificatePathBadCertificate: with TLS 1.3 the server refuses a
// client certificate after the client's handshake has finished, so the
// refusal surfaces when CONNACK is read; the agent still names it.
func TestCertificatePathBadCertificate(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	rogueCert, err := otherCA(t).ClientLeaf(agentlab.ThingName)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	cfg.Certificate, cfg.Transport, cfg.CredentialsEndpoint, cfg.RoleAlias = rogueCert, agent.TransportCertificate, "", ""
	runAgent(t, cfg)
	var got error
	rec.wait(t, "a refused certificate", func() bool {
		for _, e := range rec.events {
			if e.Step == agent.StepConnect && e.Err != nil {
				got = e.Err
				return true
			}
		}
		return false
	})
	if !errors.Is(got, agenterr.ErrBadCertificate) || !strings.Contains(got.Error(), agentlab.IoTHost+" refused the client certificate") {
		t.Fatalf("error %v", got)
	}
}
