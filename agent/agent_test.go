package agent

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

func testCert(t *testing.T) tls.Certificate {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ClientLeaf("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func baseConfig(t *testing.T) Config {
	return Config{CustomerID: "acme", ThingName: "dev-1", IoTEndpoint: "abc-ats.iot.eu-west-1.amazonaws.com",
		CredentialsEndpoint: "c1.credentials.iot.eu-west-1.amazonaws.com", RoleAlias: "agentgate-agent", Certificate: testCert(t)}
}

func TestNewNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.CustomerID = "agentgate" }, "reserved"},
		{func(c *Config) { c.ThingName = "a/b" }, "thing name"},
		{func(c *Config) { c.Transport = "http" }, `transport "http"`},
		{func(c *Config) { c.IoTEndpoint = "" }, "iot endpoint is empty"},
		{func(c *Config) { c.IoTEndpoint = "wss://x/mqtt" }, "not a URL or an IP"},
		{func(c *Config) { c.IoTEndpoint = "10.0.0.1" }, "not a URL or an IP"},
		{func(c *Config) { c.Certificate = tls.Certificate{} }, "no client certificate"},
		{func(c *Config) { c.KeepAlive = 231 * time.Second }, "keep-alive 3m51s must be whole seconds in 1s..3m50s"},
		{func(c *Config) { c.KeepAlive = 1500 * time.Millisecond }, "whole seconds"},
		{func(c *Config) { c.SessionExpiry = -time.Second }, "session expiry"},
		{func(c *Config) { c.BackoffBase, c.BackoffMax = 2*time.Second, time.Second }, "backoff"},
		{func(c *Config) { c.IoTEndpoint = "mqtt.example.com" }, "region: cannot take it"},
		{func(c *Config) { c.RoleAlias = "" }, "role alias is empty"},
		{func(c *Config) { c.CredentialsEndpoint = "" }, "credentials endpoint is empty"},
	} {
		cfg := baseConfig(t)
		tc.mut(&cfg)
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New = %v, want %q", err, tc.want)
		}
	}
	cfg := baseConfig(t)
	cfg.Transport, cfg.CredentialsEndpoint, cfg.RoleAlias = TransportCertificate, "", ""
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("certificate transport needs no credentials endpoint: %v", err)
	}
	if a.Credentials() != nil {
		t.Error("certificate transport has role credentials")
	}
}

func TestBackoffBounds(t *testing.T) {
	base, max := 100*time.Millisecond, 3*time.Second
	floor := base // min(DefaultBackoffFloor, base)
	for n := 0; n < 80; n++ {
		window := max - floor
		if n < 5 {
			window = base << n
		}
		lo, hi := floor+window, time.Duration(0)
		for range 200 {
			d := Backoff(base, max, n)
			if d < floor || d >= floor+window {
				t.Fatalf("Backoff(%d) = %s outside [%s, %s)", n, d, floor, floor+window)
			}
			lo, hi = min(lo, d), max2(hi, d)
		}
		if hi-lo < window/4 {
			t.Fatalf("Backoff(%d) barely jitters: %s..%s", n, lo, hi)
		}
	}
}

func max2(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func encode(t *testing.T, version int64, doc string) []byte {
	t.Helper()
	cfg, err := envelope.CompactObject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := envelope.Encode(cfg, version, time.UnixMilli(version))
	return b
}

func TestHandleConfigOrderHashAndState(t *testing.T) {
	dir := t.TempDir()
	cfg := baseConfig(t)
	cfg.StateFile = filepath.Join(dir, "state.json")
	var applied []int64
	fail := false
	cfg.OnConfig = func(e envelope.Envelope) error {
		if fail {
			return errors.New("disk full")
		}
		applied = append(applied, e.Version)
		return nil
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	step := func(b []byte, wantApplied bool, wantErr string) {
		t.Helper()
		ok, err := a.HandleConfig(b)
		if ok != wantApplied || (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("HandleConfig = %v, %v; want %v, %q", ok, err, wantApplied, wantErr)
		}
	}
	step(encode(t, 2000, `{"a":1}`), true, "")
	step(encode(t, 1000, `{"a":0}`), false, "")
	step(encode(t, 2000, `{"a":1}`), false, "") // the same again
	tampered := strings.Replace(string(encode(t, 3000, `{"a":2}`)), `{"a":2}`, `{"a":3}`, 1)
	step([]byte(tampered), false, "does not match its config")
	step(make([]byte, topics.MaxMessageBytes+1), false, "at most 131072")
	fail = true
	step(encode(t, 4000, `{"a":4}`), false, "disk full")
	fail = false
	step(encode(t, 4000, `{"a":4}`), true, "")
	if len(applied) != 2 || applied[1] != 4000 {
		t.Fatalf("applied %v", applied)
	}
	// A new agent on the same state file starts from version 4000.
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cur, ok := b.Current(); !ok || cur.Version != 4000 || string(cur.Config) != `{"a":4}` {
		t.Fatalf("state %+v", cur)
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("state dir holds %d entries", len(entries))
	}
	// A corrupt state file is refused with advice, not silently ignored.
	os.WriteFile(cfg.StateFile, []byte(`{"version":1,`), 0o600)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "is corrupt (delete it to accept the retained config again)") {
		t.Fatalf("corrupt state: %v", err)
	}
}
