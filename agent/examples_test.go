//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// buildExample builds the Go module in dir with go build from inside it, so
// the module boundary is real: the example reaches this module only through
// its replace directive and exported names, and an internal type in the
// public API would not compile. GOFLAGS carries no -mod=mod and GOPROXY is
// off: the example's go.mod and go.sum must be complete and everything it
// needs must already be in the module cache (make setup puts it there).
func buildExample(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(dir))
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off", "GOPROXY=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in %s: %v\n%s", dir, err, out)
	}
	return bin
}

// TestVendorAgentExample builds examples/vendoragent, a vendor's agent in a
// module of its own, and runs it against the lab: through DNS and the relay
// it fetches role credentials, connects, receives and applies its retained
// configuration, publishes its status, fetches credentials again with the
// credentials package, and exits 0. A missing certificate file makes it exit
// 1 with the hint its errors.Is check on agenterr.ErrCertificateFile chose.
func TestVendorAgentExample(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	bin := buildExample(t, filepath.Join("..", "examples", "vendoragent"))
	v1 := publishConfig(t, l, 1764406800000, `{"interval":60}`)
	status := make(chan []byte, 1)
	if err := l.Broker.Subscribe(topics.UpTopic(agentlab.CustomerID, agentlab.ThingName, "status"), 1,
		func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			select {
			case status <- pk.Payload:
			default:
			}
		}); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-customer", agentlab.CustomerID, "-thing", agentlab.ThingName,
		"-iot-endpoint", agentlab.IoTHost, "-credentials-endpoint", agentlab.CredsHost, "-role-alias", agentlab.RoleAlias,
		"-cert", l.CertFile, "-key", l.KeyFile, "-ca", l.CAFile,
		"-relay", agentlab.RelayName, "-relay-port", l.RelayPort, "-dns-server", l.DNS.Addr,
		"-timeout", "60s",
	}
	// A deadlock guard, not a performance threshold: the example gives up
	// after its own -timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vendoragent: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	for _, want := range []string{
		"applied config version 1764406800000: interval 60s\n",
		`published status: {"appliedVersion":1764406800000,"sha256":"` + v1.SHA256 + `"}` + "\n",
		"role credentials valid until ",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, &stdout)
		}
	}
	select {
	case b := <-status:
		var got struct {
			AppliedVersion int64  `json:"appliedVersion"`
			SHA256         string `json:"sha256"`
		}
		if err := json.Unmarshal(b, &got); err != nil || got.AppliedVersion != v1.Version || got.SHA256 != v1.SHA256 {
			t.Errorf("broker got status %s (%v), want version %d sha256 %s", b, err, v1.Version, v1.SHA256)
		}
	case <-ctx.Done():
		t.Error("the broker never delivered the example's status publish (the example saw a PUBACK)")
	}
	// Everything went through the first relay, routed by SNI: one IoT
	// connection, and two credentials fetches (the agent's before it
	// connected, and the example's own with the credentials package).
	r0 := l.Relays[0]
	if n := metric(t, r0, "agentgate_relay_connections_total", "route="+agentlab.IoTHost); n != 1 {
		t.Errorf("relay 127.0.0.2 relayed %v IoT connections, want 1", n)
	}
	if n := metric(t, r0, "agentgate_relay_connections_total", "route="+agentlab.CredsHost); n != 2 {
		t.Errorf("relay 127.0.0.2 relayed %v credentials connections, want 2", n)
	}

	t.Run("missing certificate file", func(t *testing.T) {
		bad := append(append([]string(nil), args...), "-cert", filepath.Join(t.TempDir(), "missing.crt"))
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, bad...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("vendoragent with a missing certificate: %v, want exit status 1\nstderr:\n%s", err, &stderr)
		}
		if want := "hint: check the certificate and key files on this host"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, &stderr)
		}
	})
}
