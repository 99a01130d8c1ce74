//go:build linux

package relayproc

import (
	"context"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// quick are flags that keep a test relay's drain short and its probes out
// of the way.
var quick = []string{"--route", "a.example.com=127.0.0.1:9", "--probe-interval", "1h", "--unready-delay", "0s", "--drain-timeout", "2s"}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serves checks both addresses: the agent port accepts, the admin port
// answers /healthz.
func serves(t *testing.T, p *Process) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Listen, 5*time.Second)
	if err != nil {
		t.Fatalf("agent port %s: %v", p.Listen, err)
	}
	c.Close()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + p.Admin + "/healthz")
	if err != nil {
		t.Fatalf("admin port %s: %v", p.Admin, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /healthz: %d", resp.StatusCode)
	}
}

func TestStartReadsTheAddressesItBound(t *testing.T) {
	p, err := Start(context.Background(), Options{Args: quick})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if strings.HasSuffix(p.Listen, ":0") || strings.HasSuffix(p.Admin, ":0") {
		t.Fatalf("addresses %q, %q: want the bound ports", p.Listen, p.Admin)
	}
	serves(t, p)
	p.Stop(10 * time.Second)
	if err := p.ExitErr(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs())
	}
	if err := p.WaitLog("drained", time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs())
	}
}

// The bench's relay logs at warn, so there is no start line: fixed
// addresses and a dial are how Start knows it serves.
func TestStartWithFixedAddressesAndNoStartLine(t *testing.T) {
	listen, admin := freeAddr(t), freeAddr(t)
	p, err := Start(context.Background(), Options{Listen: listen, Admin: admin, Args: append([]string{"--log-level", "warn"}, quick...)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	if p.Listen != listen || p.Admin != admin {
		t.Fatalf("addresses %q, %q, want %q, %q", p.Listen, p.Admin, listen, admin)
	}
	if strings.Contains(p.Logs(), StartedLogMessage) {
		t.Fatalf("a start line at --log-level warn:\n%s", p.Logs())
	}
	serves(t, p)
}

// The agent lab's relays get their whole configuration from RELAY_*.
func TestStartFromTheEnvironmentAlone(t *testing.T) {
	p, err := Start(context.Background(), Options{AddressesFromEnv: true, Env: []string{
		"RELAY_LISTEN=127.0.0.1:0", "RELAY_ADMIN=127.0.0.1:0", "RELAY_ROUTE=a.example.com=127.0.0.1:9", "RELAY_PROBE_INTERVAL=1h",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	serves(t, p)
}

func TestStartFailureCarriesTheLog(t *testing.T) {
	_, err := Start(context.Background(), Options{Args: []string{"--no-such-flag"}})
	if err == nil {
		t.Fatal("a relay with an unknown flag started")
	}
	if !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("error %q does not carry the relay's message", err)
	}
	if !strings.Contains(err.Error(), "exited at start") {
		t.Fatalf("error %q: want the exit at start", err)
	}
}
