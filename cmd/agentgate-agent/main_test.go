//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

func startLab(t *testing.T) *agentlab.Lab {
	t.Helper()
	l, err := agentlab.Start(t.TempDir(), agentlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

func publishConfig(t *testing.T, l *agentlab.Lab, version int64, doc string) {
	t.Helper()
	cfg, err := envelope.CompactObject([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := envelope.Encode(cfg, version, time.UnixMilli(version))
	if err := l.Broker.Publish(topics.ConfigTopic(agentlab.CustomerID, agentlab.ThingName), b, true, 1); err != nil {
		t.Fatal(err)
	}
}

// labEnv is the lab's settings as environment variables, the way an
// operator would put them in a unit file.
func labEnv(l *agentlab.Lab) map[string]string {
	return map[string]string{
		"AGENTGATE_CUSTOMER": agentlab.CustomerID, "AGENTGATE_THING": agentlab.ThingName,
		"AGENTGATE_IOT_ENDPOINT": agentlab.IoTHost, "AGENTGATE_CREDENTIALS_ENDPOINT": agentlab.CredsHost,
		"AGENTGATE_ROLE_ALIAS": agentlab.RoleAlias,
		"AGENTGATE_CERT":       l.CertFile, "AGENTGATE_KEY": l.KeyFile, "AGENTGATE_CA": l.CAFile,
		"AGENTGATE_RELAY": agentlab.RelayName, "AGENTGATE_RELAY_PORT": l.RelayPort, "AGENTGATE_DNS_SERVER": l.DNS.Addr,
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func runCLI(t *testing.T, ctx context.Context, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(ctx, args, lookup(env), &out, &errOut)
	return code, out.String(), errOut.String()
}

// stepLines returns "status step" for each reported step line.
func stepLines(out string) []string {
	re := regexp.MustCompile(`(?m)^(ok  |FAIL)  (\S+)`)
	var s []string
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		s = append(s, strings.TrimSpace(m[1])+" "+m[2])
	}
	return s
}

func TestSmokePassesAgainstTheLab(t *testing.T) {
	l := startLab(t)
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	// The smoke publish lands on the agent's up/ topic.
	up := make(chan string, 1)
	if err := l.Broker.Subscribe(topics.UpTopic(agentlab.CustomerID, agentlab.ThingName, "smoke"), 7,
		func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			select {
			case up <- string(pk.Payload):
			default:
			}
		}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, context.Background(), labEnv(l), "smoke", "--timeout", "20s")
	t.Log("\n" + out)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	select {
	case p := <-up:
		if !strings.HasPrefix(p, "agentgate smoke ") {
			t.Errorf("up/smoke carried %q", p)
		}
	case <-time.After(10 * time.Second): // a deadlock guard: the broker routes before or right after its PUBACK
		t.Error("the smoke publish (PUBACK ok) did not reach " + topics.UpTopic(agentlab.CustomerID, agentlab.ThingName, "smoke"))
	}
	want := []string{"ok load", "ok resolve", "ok tls-via-relay", "ok tcp", "ok credentials", "ok presign", "ok tcp",
		"ok tls+websocket", "ok mqtt-connect", "ok subscribe", "ok retained-config", "ok publish"}
	if got := stepLines(out); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("steps %v\nwant %v", got, want)
	}
	for _, s := range []string{"127.0.0.2:" + l.RelayPort + ", 127.0.0.3:" + l.RelayPort, "version 1764406800000", "result: ok",
		"warning: connects as " + agentlab.ThingName + " with clean start"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
}

func TestSmokeCertificatePath(t *testing.T) {
	l := startLab(t)
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	env := labEnv(l)
	delete(env, "AGENTGATE_CREDENTIALS_ENDPOINT")
	code, out, errOut := runCLI(t, context.Background(), env, "smoke", "--transport", "mqtts")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	want := []string{"ok load", "ok resolve", "ok tls-via-relay", "ok tcp", "ok tls", "ok mqtt-connect", "ok subscribe", "ok retained-config", "ok publish"}
	if got := stepLines(out); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("steps %v\nwant %v\n%s", got, want, out)
	}
}

// TestSmokeReportsTheFailingStep: each broken setting fails at its own
// step, with the reason, and the exit status is 1.
func TestSmokeReportsTheFailingStep(t *testing.T) {
	l := startLab(t)
	dir := t.TempDir()
	rogue, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	rogueCA := filepath.Join(dir, "rogue-ca.pem")
	os.WriteFile(rogueCA, rogue.CertPEM(), 0o600)
	for _, tc := range []struct {
		name     string
		args     []string
		step     string
		reason   string
		noConfig bool
	}{
		{"wrong role alias", []string{"--role-alias", "nope"}, "credentials", `role alias "nope" does not exist`, false},
		{"no retained config", nil, "retained-config", "has the config publisher written one", true},
		{"unknown relay name", []string{"--relay", "nowhere.agentgate.test"}, "resolve", "resolving nowhere.agentgate.test", false},
		{"wrong CA bundle", []string{"--ca", rogueCA}, "tls-via-relay", "does not verify", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.noConfig {
				publishConfig(t, l, 1764406800000, `{"a":1}`)
			} else {
				// An empty retained publish deletes the retained message.
				l.Broker.Publish(topics.ConfigTopic(agentlab.CustomerID, agentlab.ThingName), nil, true, 1)
			}
			code, out, _ := runCLI(t, context.Background(), labEnv(l), append([]string{"smoke", "--timeout", "2s"}, tc.args...)...)
			if code != 1 {
				t.Fatalf("exit %d\n%s", code, out)
			}
			lines := stepLines(out)
			if len(lines) == 0 || lines[len(lines)-1] != "FAIL "+tc.step {
				t.Fatalf("steps %v, want the last to be FAIL %s\n%s", lines, tc.step, out)
			}
			if !strings.Contains(out, tc.reason) || !strings.Contains(out, "result: FAIL") {
				t.Fatalf("output lacks %q\n%s", tc.reason, out)
			}
		})
	}
}

func TestFlagAndFileErrors(t *testing.T) {
	l := startLab(t)
	other, err := l.CA.ClientLeaf("other")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := testpki.PEM(other)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrongKey := filepath.Join(dir, "other.key")
	os.WriteFile(wrongKey, otherKey, 0o600)
	notPEM := filepath.Join(dir, "garbage.pem")
	os.WriteFile(notPEM, []byte("not a certificate\x00\xff"), 0o600)
	missing := filepath.Join(dir, "thing.crt")
	hugeCA := filepath.Join(dir, "huge-ca.pem")
	if err := os.WriteFile(hugeCA, bytes.Repeat([]byte("A"), agent.MaxCertificateFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"no command", nil, nil, 2, "usage: agentgate-agent run|smoke"},
		{"unknown command", nil, []string{"fly"}, 2, `unknown command "fly"`},
		{"nothing set", map[string]string{}, []string{"run"}, 2, "missing --cert, --credentials-endpoint, --customer, --iot-endpoint, --key, --thing"},
		{"bad duration in env", map[string]string{"AGENTGATE_KEEP_ALIVE": "soon"}, []string{"run"}, 2, `AGENTGATE_KEEP_ALIVE="soon"`},
		{"stray argument", labEnv(l), []string{"run", "extra"}, 2, `unexpected arguments ["extra"]`},
		{"key not the certificate's", merge(labEnv(l), "AGENTGATE_KEY", wrongKey), []string{"run"}, 2,
			"agentgate-agent run: certificate file " + l.CertFile + " and key file " + wrongKey + " are not a usable pair: tls: private key does not match public key\n"},
		{"certificate file not PEM", merge(labEnv(l), "AGENTGATE_CERT", notPEM), []string{"run"}, 2, "certificate file " + notPEM + " and key file"},
		{"certificate file missing", labEnv(l), []string{"run", "--cert", missing}, 2,
			"agentgate-agent run: cannot read certificate file " + missing + ": no such file or directory\n"},
		{"key file missing", labEnv(l), []string{"run", "--key", missing}, 2,
			"agentgate-agent run: cannot read key file " + missing + ": no such file or directory\n"},
		{"CA file missing", labEnv(l), []string{"run", "--ca", missing}, 2, "cannot read CA file " + missing + ": no such file or directory"},
		{"CA bundle not PEM", merge(labEnv(l), "AGENTGATE_CA", notPEM), []string{"run"}, 2, "CA file " + notPEM + " holds no PEM certificate"},
		{"CA bundle oversize", labEnv(l), []string{"run", "--ca", hugeCA}, 2, "CA file " + hugeCA + " is larger than 1048576 bytes"},
		{"keep-alive above the VPC endpoint cap", labEnv(l), []string{"run", "--keep-alive", "5m"}, 2, "in 1s..3m50s (the IoT VPC endpoint's cap)"},
		{"backoff floor negative", labEnv(l), []string{"run", "--backoff-floor", "-1s"}, 2, "backoff floor -1s"},
		{"backoff floor not below max", labEnv(l), []string{"run", "--backoff-floor", "3m"}, 2, "backoff floor 3m0s: want 0 < floor < max 2m0s"},
		{"backoff floor not a duration", merge(labEnv(l), "AGENTGATE_BACKOFF_FLOOR", "soon"), []string{"run"}, 2, `AGENTGATE_BACKOFF_FLOOR="soon"`},
		{"reconnect spread negative", labEnv(l), []string{"run", "--reconnect-spread", "-1s"}, 2, "reconnect spread -1s: want 0 < spread ≤ backoff max 2m0s"},
		{"reconnect spread above max", labEnv(l), []string{"run", "--reconnect-spread", "10s", "--backoff-max", "5s"}, 2, "reconnect spread 10s: want 0 < spread ≤ backoff max 5s"},
		{"reconnect spread huge", merge(labEnv(l), "AGENTGATE_RECONNECT_SPREAD", "99999999999h"), []string{"run"}, 2, `AGENTGATE_RECONNECT_SPREAD="99999999999h"`},
		{"reconnect spread not a duration", merge(labEnv(l), "AGENTGATE_RECONNECT_SPREAD", "12"), []string{"run"}, 2, `AGENTGATE_RECONNECT_SPREAD="12"`},
		{"bad log level", labEnv(l), []string{"run", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{"customer reserved", merge(labEnv(l), "AGENTGATE_CUSTOMER", "agentgate"), []string{"run"}, 2, "reserved"},
		{"bad transport", labEnv(l), []string{"run", "--transport", "http"}, 2, `transport "http"`},
		{"help", nil, []string{"smoke", "-h"}, 0, "-expect-config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, context.Background(), tc.env, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Fatalf("exit %d, output %q%q; want %d and %q", code, out, errOut, tc.code, tc.want)
			}
			if strings.Contains(out+errOut, "refused") {
				t.Errorf("a local file problem reported as a refusal: %q%q", out, errOut)
			}
		})
	}
	// smoke reports the same message at its first step, and fails.
	code, out, _ := runCLI(t, context.Background(), labEnv(l), "smoke", "--cert", missing)
	if lines := stepLines(out); code != 1 || len(lines) != 1 || lines[0] != "FAIL load" ||
		!strings.Contains(out, "cannot read certificate file "+missing+": no such file or directory") {
		t.Fatalf("smoke with a missing certificate file: exit %d\n%s", code, out)
	}
}

func merge(env map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return env
}

// TestRunAppliesConfigAndKeepsState: the run command connects, applies the
// retained config into its state file and exits 0 on cancellation.
func TestRunAppliesConfigAndKeepsState(t *testing.T) {
	l := startLab(t)
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"run", "--state-file", state, "--log-level", "info"}, lookup(labEnv(l)), &bytes.Buffer{}, &errOut)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(state)
		if err == nil {
			env, err := envelope.Parse(b)
			if err != nil || env.Version != 1764406800000 {
				t.Fatalf("state %s: %v", b, err)
			}
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no state file; log:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), `"msg":"configuration applied","version":1764406800000`) {
		t.Errorf("log lacks the applied configuration:\n%s", errOut.String())
	}
}

// TestReconnectSpreadReachesTheAgent: --reconnect-spread and
// AGENTGATE_RECONNECT_SPREAD set agent.Config.ReconnectSpread (the flag
// wins); unset, it stays 0, the agent's default.
func TestReconnectSpreadReachesTheAgent(t *testing.T) {
	l := startLab(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want time.Duration
	}{
		{labEnv(l), nil, 0},
		{merge(labEnv(l), "AGENTGATE_RECONNECT_SPREAD", "30s"), nil, 30 * time.Second},
		{merge(labEnv(l), "AGENTGATE_RECONNECT_SPREAD", "30s"), []string{"--reconnect-spread", "7s"}, 7 * time.Second},
	} {
		o, err := parseFlags("run", tc.args, lookup(tc.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := agentConfig(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ReconnectSpread; got != tc.want {
			t.Errorf("env %v args %v: spread %s, want %s", tc.env["AGENTGATE_RECONNECT_SPREAD"], tc.args, got, tc.want)
		}
	}
}
