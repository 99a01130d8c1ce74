//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/command"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// TestSaaSBackendExample builds examples/saasbackend, a backend in a
// module of its own using package command, and has it send a command to
// the reference agent behind the relay: it prints the agent's result and
// exits 0. A command to an agent that never answers exits 1 at its
// deadline.
func TestSaaSBackendExample(t *testing.T) {
	l := startLab(t, agentlab.Options{})
	bin := buildExample(t, filepath.Join("..", "examples", "saasbackend"))
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	rec := newRecorder()
	a, err := agent.New(labConfig(l, rec, ""))
	if err != nil {
		t.Fatal(err)
	}
	_ = a.HandleCommand("echo", func(_ context.Context, args json.RawMessage) (json.RawMessage, error) { return args, nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	rec.wait(t, "connected", func() bool { return hasEvent(rec.events, agent.StepSubscribe, "") })

	run := func(thing string, timeout time.Duration) (string, error) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, "-broker", l.Regions[0].BrokerAddr, "-customer", agentlab.CustomerID, "-thing", thing,
			"-name", "echo", "-args", `{"n":1}`, "-timeout", timeout.String())
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String() + errOut.String(), err
	}
	out, err := run(agentlab.ThingName, time.Minute)
	if err != nil {
		t.Fatalf("saasbackend: %v\n%s", err, out)
	}
	var res command.Result
	if err := json.Unmarshal(bytes.TrimSpace([]byte(out)), &res); err != nil || res.Status != command.StatusOK || string(res.Output) != `{"n":1}` {
		t.Fatalf("saasbackend printed %q (%v)", out, err)
	}
	out, err = run("nobody-home", time.Second)
	if err == nil || !bytes.Contains([]byte(out), []byte("no result before the command's deadline")) {
		t.Errorf("command to an absent agent: %v\n%s", err, out)
	}
}
