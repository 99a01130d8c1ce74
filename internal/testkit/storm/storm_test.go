//go:build linux

package storm

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

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
// reconnects), and that the storm really hit the signalled relay's agents.
func check(t *testing.T, res Result) {
	t.Helper()
	var b bytes.Buffer
	res.Print(&b)
	t.Log("\n" + b.String())
	if res.OnRelay == 0 {
		t.Errorf("the signalled relay carried no agent: no storm")
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
// over AGENTGATE_STORM_PROCESSES processes, SIGTERM and SIGKILL runs,
// with the relays' drain timeout AGENTGATE_STORM_DRAIN (default 11 s, a
// tenth of the deployed 110 s) and AGENTGATE_STORM_RATE agents started per
// second.
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
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[sig], func(t *testing.T) {
			dir := t.TempDir()
			res, err := Run(Config{Agents: agents, Processes: procs, Signal: sig, StartRate: rate, DrainTimeout: drain,
				Dir: dir, Log: t.Logf, Patience: 15 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res)
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
