//go:build linux

package storm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// TestMain runs this test binary as a storm client process when ClientEnv
// is set (Run starts its clients from its own executable).
func TestMain(m *testing.M) {
	if os.Getenv(ClientEnv) != "" {
		os.Exit(ClientMain())
	}
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

// check asserts what every storm must show, whatever its size: every agent
// back, no QoS 1 message lost, no credentials call (they are reused across
// reconnects), and that the storm really hit the signalled relay's agents
// (each offered a new attempt and the broker saw its CONNECT).
func check(t *testing.T, res Result) {
	t.Helper()
	var b bytes.Buffer
	res.Print(&b)
	t.Log("\n" + b.String())
	if res.OnRelay == 0 {
		t.Errorf("the signalled relay carried no agent: no storm")
	}
	if res.Rates.Offered < int64(res.OnRelay) {
		t.Errorf("the agents offered %d connection attempts during the storm for %d agents cut off", res.Rates.Offered, res.OnRelay)
	}
	if res.Rates.Connects < int64(res.OnRelay) {
		t.Errorf("%d MQTT CONNECTs during the storm for %d agents cut off", res.Rates.Connects, res.OnRelay)
	}
	if res.Lost != 0 || res.BrokerDropped != 0 {
		t.Errorf("%d QoS 1 messages lost, %d dropped by the broker", res.Lost, res.BrokerDropped)
	}
	if res.Rates.Credentials != 0 {
		t.Errorf("%d credentials calls during the storm: the agents should reuse their cached credentials", res.Rates.Credentials)
	}
}

// TestQuickStorm: a few dozen agents in two processes, SIGKILL and then
// SIGTERM to the relay carrying about half of them. No timing assertion.
func TestQuickStorm(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig], func(t *testing.T) {
			res, err := Run(Config{Agents: 32, Processes: 2, Signal: sig, StartRate: 400, Dir: t.TempDir(), Log: t.Logf, Patience: 2 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res)
		})
	}
}

// TestStorm is `make storm`: AGENTGATE_STORM_AGENTS agents (unset: skipped)
// over AGENTGATE_STORM_PROCESSES processes, the runs AGENTGATE_STORM_SIGNAL
// names (SIGTERM, SIGKILL or both, comma-separated; unset: both), with the
// relays' drain timeout AGENTGATE_STORM_DRAIN (default 11 s, a tenth of
// the deployed 110 s), AGENTGATE_STORM_RATE agents started per second and
// the agents' reconnect spread AGENTGATE_STORM_SPREAD (unset:
// DefaultSpread); AGENTGATE_STORM_TIMELINE names a CSV file for each run's
// timeline, slot by slot (the signal goes before its extension).
func TestStorm(t *testing.T) {
	agents, _ := strconv.Atoi(os.Getenv("AGENTGATE_STORM_AGENTS"))
	if agents == 0 {
		t.Skip("AGENTGATE_STORM_AGENTS unset: run `make storm`")
	}
	procs, _ := strconv.Atoi(os.Getenv("AGENTGATE_STORM_PROCESSES"))
	if procs == 0 {
		procs = max(2, (agents+1999)/2000)
	}
	drain := 11 * time.Second
	if d, err := time.ParseDuration(os.Getenv("AGENTGATE_STORM_DRAIN")); err == nil {
		drain = d
	}
	rate, _ := strconv.ParseFloat(os.Getenv("AGENTGATE_STORM_RATE"), 64)
	signals, err := parseSignals(os.Getenv("AGENTGATE_STORM_SIGNAL"))
	if err != nil {
		t.Fatal(err)
	}
	spread, err := parseSpread(os.Getenv("AGENTGATE_STORM_SPREAD"))
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range signals {
		t.Run(map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig], func(t *testing.T) {
			dir := t.TempDir()
			res, err := Run(Config{Agents: agents, Processes: procs, Signal: sig, StartRate: rate, DrainTimeout: drain,
				ReconnectSpread: spread, Dir: dir, Log: t.Logf, Patience: 15 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res)
			if path := os.Getenv("AGENTGATE_STORM_TIMELINE"); path != "" && res.Timeline != nil {
				if err := writeTimeline(timelinePath(path, res.Signal), res.Timeline); err != nil {
					t.Error(err)
				}
			}
			if out := os.Getenv("AGENTGATE_STORM_OUT"); out != "" {
				var b bytes.Buffer
				res.Print(&b)
				f, err := os.OpenFile(filepath.Clean(out), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err == nil {
					f.Write(append(b.Bytes(), '\n'))
					f.Close()
				}
			}
		})
	}
}

// timelinePath is where a run's timeline CSV goes: AGENTGATE_STORM_TIMELINE
// with the signal before its extension (storm.csv: storm-SIGKILL.csv).
func timelinePath(path, signal string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + signal + ext
}

func writeTimeline(path string, tl *Timeline) error {
	f, err := os.Create(filepath.Clean(path))
	if err != nil {
		return err
	}
	if err := tl.WriteCSV(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseSignals reads AGENTGATE_STORM_SIGNAL: empty is both runs, SIGTERM
// first; otherwise SIGTERM and SIGKILL, comma-separated, each once.
func parseSignals(v string) ([]syscall.Signal, error) {
	if v == "" {
		return []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}, nil
	}
	var out []syscall.Signal
	seen := map[syscall.Signal]bool{}
	for _, name := range strings.Split(v, ",") {
		sig, ok := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL}[strings.TrimSpace(name)]
		if !ok || seen[sig] {
			return nil, fmt.Errorf("AGENTGATE_STORM_SIGNAL=%q: want SIGTERM, SIGKILL or both, comma-separated, each once", v)
		}
		seen[sig] = true
		out = append(out, sig)
	}
	return out, nil
}

// parseSpread reads AGENTGATE_STORM_SPREAD: empty is 0 (Run takes
// DefaultSpread); otherwise a Go duration Run accepts.
func parseSpread(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > agent.DefaultBackoffMax {
		return 0, fmt.Errorf("AGENTGATE_STORM_SPREAD=%q: want a duration in (0, %s]", v, agent.DefaultBackoffMax)
	}
	return d, nil
}

func TestStormEnvParsing(t *testing.T) {
	for v, want := range map[string]int{"": 2, "SIGKILL": 1, "SIGTERM, SIGKILL": 2} {
		if got, err := parseSignals(v); err != nil || len(got) != want {
			t.Errorf("parseSignals(%q) = %v, %v", v, got, err)
		}
	}
	for _, v := range []string{"KILL", "SIGKILL,SIGKILL", "SIGHUP", ",", "SIGKILL,", strings.Repeat("SIGKILL,", 1000)} {
		if _, err := parseSignals(v); err == nil {
			t.Errorf("parseSignals(%q) accepted", v)
		}
	}
	if d, err := parseSpread("10s"); err != nil || d != 10*time.Second {
		t.Errorf("parseSpread(10s) = %s, %v", d, err)
	}
	for _, v := range []string{"10", "-1s", "0s", "3m", "99999999999h", "soon\x00"} {
		if _, err := parseSpread(v); err == nil {
			t.Errorf("parseSpread(%q) accepted", v)
		}
	}
}

// TestDefaultSpread: half the fleet over the default budget's 250
// reconnects/s, in whole seconds, at least 1 s.
func TestDefaultSpread(t *testing.T) {
	for agents, want := range map[int]time.Duration{1: time.Second, 32: time.Second, 501: 2 * time.Second, 5000: 10 * time.Second, 6000: 12 * time.Second} {
		if got := DefaultSpread(agents); got != want {
			t.Errorf("DefaultSpread(%d) = %s, want %s", agents, got, want)
		}
	}
}
