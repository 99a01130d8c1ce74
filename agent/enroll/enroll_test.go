package enroll

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/provisioning"
)

func validToken(t *testing.T) string {
	t.Helper()
	tok, err := provisioning.NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok.String()
}

// Refusals that need no network come first, with their reason.
func TestLocalRefusals(t *testing.T) {
	claim := tls.Certificate{Certificate: [][]byte{{1}}}
	base := Config{IoTEndpoint: "example-ats.iot.eu-west-1.amazonaws.com", ClaimCertificate: claim, Token: validToken(t)}
	for name, c := range map[string]struct {
		mutate func(*Config)
		want   string
	}{
		"malformed token":       {func(c *Config) { c.Token = "agt1.abc" }, "malformed"},
		"oversize token":        {func(c *Config) { c.Token = strings.Repeat("a", 300) }, "oversize"},
		"bad agent ID":          {func(c *Config) { c.AgentID = "a/b" }, "outside"},
		"bad expected customer": {func(c *Config) { c.ExpectedCustomerID = "x#" }, "outside"},
		"bad template":          {func(c *Config) { c.TemplateName = "a b" }, "template"},
		"no claim certificate":  {func(c *Config) { c.ClaimCertificate = tls.Certificate{} }, "claim certificate"},
		"URL as endpoint":       {func(c *Config) { c.IoTEndpoint = "https://x/" }, "host[:port]"},
	} {
		cfg := base
		cfg.Dir = filepath.Join(t.TempDir(), "state")
		c.mutate(&cfg)
		_, err := Enrol(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
		if strings.Contains(name, "token") && !errors.Is(err, ErrToken) {
			t.Errorf("%s: %v is not ErrToken", name, err)
		}
	}
}

// The agent ID and key are chosen once per directory and kept: a second
// run enrols the same agent with the same key; another ID is refused.
func TestAgentIDAndKeyAreKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	cfg := Config{IoTEndpoint: "127.0.0.1.invalid:1", ClaimCertificate: tls.Certificate{Certificate: [][]byte{{1}}}, Token: validToken(t), Dir: dir}
	cfg.Attempts = 1
	_, err := Enrol(context.Background(), cfg) // fails at the network
	if !errors.Is(err, ErrConnection) {
		t.Fatalf("first run: %v", err)
	}
	first, err := agentIDFor(cfg)
	if err != nil || !strings.HasPrefix(first, "agent-") {
		t.Fatalf("agent ID %q %v", first, err)
	}
	key1, err := loadOrCreateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Enrol(context.Background(), cfg); !errors.Is(err, ErrConnection) {
		t.Fatalf("second run: %v", err)
	}
	if again, _ := agentIDFor(cfg); again != first {
		t.Fatalf("agent ID changed: %s → %s", first, again)
	}
	if key2, _ := loadOrCreateKey(filepath.Join(dir, KeyFile)); !key2.Equal(key1) {
		t.Fatal("key changed between runs")
	}
	cfg.AgentID = "someone-else"
	if _, err := Enrol(context.Background(), cfg); !errors.Is(err, ErrState) {
		t.Fatalf("another agent ID in the same directory: %v", err)
	}
	for _, f := range []string{KeyFile, agentFile} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, st.Mode(), err)
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory %v", st.Mode())
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left over %s", e.Name())
		}
	}
}

func TestDamagedStateIsReported(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{IoTEndpoint: "x:1", ClaimCertificate: tls.Certificate{Certificate: [][]byte{{1}}}, Token: validToken(t), Dir: dir}
	for name, c := range map[string]struct{ file, content string }{
		"result not JSON":      {ResultFile, "{"},
		"result for a bad ID":  {ResultFile, `{"agentId":"a/b","customerId":"acme"}`},
		"agent file damaged":   {agentFile, `{"agentId":"#"}`},
		"key not PEM":          {KeyFile, "nope"},
		"oversize result file": {ResultFile, strings.Repeat(" ", 70<<10)},
	} {
		os.RemoveAll(dir)
		os.MkdirAll(dir, 0o700)
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Enrol(context.Background(), cfg); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v, want ErrState", name, err)
		}
	}
}

func TestFinishedEnrolmentIsReturnedWithoutNetwork(t *testing.T) {
	dir := t.TempDir()
	if err := writeAtomic(filepath.Join(dir, ResultFile), []byte(`{"agentId":"a1","customerId":"acme","certificateId":"c"}`)); err != nil {
		t.Fatal(err)
	}
	r, err := Enrol(context.Background(), Config{Dir: dir, IoTEndpoint: "unreachable.invalid"})
	if err != nil || !r.AlreadyEnrolled || r.AgentID != "a1" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := Enrol(context.Background(), Config{Dir: dir, AgentID: "a2"}); !errors.Is(err, ErrState) {
		t.Fatalf("another ID: %v", err)
	}
}
