package deployconfig

import (
	"bytes"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/internal/deploy/capacity"
)

// decodeEdited decodes the example after edit changed its JSON tree.
func decodeEdited(t *testing.T, edit func(m map[string]any)) (*Config, error) {
	t.Helper()
	m := loadExample(t)
	edit(m)
	return Decode(bytes.NewReader(encode(t, m)))
}

func fleet0(m map[string]any) map[string]any { return m["fleets"].([]any)[0].(map[string]any) }

func relayOf(m map[string]any) map[string]any { return fleet0(m)["relay"].(map[string]any) }

func TestBudgetDefaultsAndExampleRollout(t *testing.T) {
	cfg, err := Load("../../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Budget != (Budget{capacity.DefaultConnectsPerSecond, capacity.DefaultSubscriptionsPerSecond, capacity.DefaultCredentialsPerSecond}) {
		t.Errorf("budget defaults = %+v", cfg.Budget)
	}
	// Fleet euw1: 8 × 3000 = 24,000 agents by default; use1 the same
	// (relay defaults: 4 × minTasks 2 = 8 tasks of 3000).
	for _, f := range cfg.Fleets {
		if f.ExpectedAgents != 24000 {
			t.Errorf("%s: expectedAgents default %d, want 24000", f.Name, f.ExpectedAgents)
		}
		// capacity.TestDeriveExample works these out by hand.
		d, err := cfg.Rollout(f)
		if err != nil || d != (capacity.Deploy{MinHealthyPercent: 100, MaximumPercent: 124, DrainTimeoutSec: 49}) {
			t.Errorf("%s: rollout %+v, %v", f.Name, d, err)
		}
	}
}

func TestBudgetFieldsReadStrictly(t *testing.T) {
	cases := []struct {
		name string
		set  any
		want string
	}{
		{"negative", map[string]any{"connectsPerSecond": -1}, "budget.connectsPerSecond: -1; allowed: 1..1000000"},
		{"too large", map[string]any{"credentialsPerSecond": 2000000}, "budget.credentialsPerSecond: 2000000; allowed: 1..1000000"},
		{"fraction", map[string]any{"subscribesPerSecond": 1.5}, "budget.subscribesPerSecond: 1.5; want a whole number"},
		{"string", map[string]any{"connectsPerSecond": "fast"}, `budget.connectsPerSecond: the string "fast"; want a whole number`},
		{"typo", map[string]any{"connectPerSecond": 100}, `budget.connectPerSecond: unknown field; did you mean "connectsPerSecond"?`},
		{"not an object", 500, "budget: the number 500; want an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeEdited(t, func(m map[string]any) { m["budget"] = c.set })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	cfg, err := decodeEdited(t, func(m map[string]any) {
		m["budget"] = map[string]any{"connectsPerSecond": 1000, "subscribesPerSecond": 2000, "credentialsPerSecond": 700}
	})
	if err != nil || cfg.Budget != (Budget{1000, 2000, 700}) {
		t.Fatalf("budget set = %+v, %v", cfg, err)
	}
}

func TestFleetOverItsEndpointCapIsRefused(t *testing.T) {
	// 40 × 3000 = 120,000 connections > 100,000 one iot.data endpoint
	// carries; 20,000 expected agents keep the budget out of it.
	_, err := decodeEdited(t, func(m map[string]any) {
		relayOf(m)["maxTasks"] = 40
		fleet0(m)["expectedAgents"] = 20000
	})
	msg := errString(err)
	for _, want := range []string{"fleets[0].relay.maxTasks/maxConnsPerTask", "40 × 3000 = 120000 connections", "at most 100000", "iot.data interface endpoint", capacity.IoTVPCEndpointsURL} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "expectedAgents") {
		t.Errorf("only the cap should be refused:\n%s", msg)
	}
}

func TestExpectedAgentsAboveTheRelaysIsRefused(t *testing.T) {
	_, err := decodeEdited(t, func(m map[string]any) { fleet0(m)["expectedAgents"] = 24001 })
	if msg := errString(err); !strings.Contains(msg, "fleets[0].expectedAgents: 24001; allowed: 1..24000") {
		t.Errorf("err = %s", msg)
	}
	_, err = decodeEdited(t, func(m map[string]any) { fleet0(m)["expectedAgents"] = -5 })
	if msg := errString(err); !strings.Contains(msg, "fleets[0].expectedAgents: -5; allowed: 1..24000") {
		t.Errorf("err = %s", msg)
	}
}

func TestZoneLossOverBudgetIsRefused(t *testing.T) {
	// 12,000 agents of one of two zones over 60 s = 200 connects/s, 400
	// subscriptions/s, 200 credential calls/s: over a 150 connects/s budget
	// (and nothing else).
	_, err := decodeEdited(t, func(m map[string]any) {
		m["budget"] = map[string]any{"connectsPerSecond": 150}
	})
	msg := errString(err)
	for _, want := range []string{"fleets[0].expectedAgents: 24000", "12000 agents of one zone (of 2)", "topics.mqttKeepAliveSec 60 s", "200 connects/s, 400 subscriptions/s and 200 credential calls/s", "over budget.connectsPerSecond;"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	// Three zones: ceil(8/3) = 3 tasks, 9000 agents, 150/s: fits, but a
	// rolling deploy of 3000 agents a task needs W ≥ 20 s of close window
	// at 150/s, which overlaps the next wave (20 s apart): refused too.
	_, err = decodeEdited(t, func(m map[string]any) {
		m["budget"] = map[string]any{"connectsPerSecond": 150}
		f := fleet0(m)
		f["availabilityZones"], f["staticIpCount"] = []any{"eu-west-1a", "eu-west-1b", "eu-west-1c"}, 3
		relayOf(m)["minTasks"] = 3
	})
	msg = errString(err)
	if strings.Contains(msg, "fleets[0].expectedAgents: ") || !strings.Contains(msg, "fleets[0].expectedAgents/relay.maxConnsPerTask") {
		t.Errorf("want the rolling deploy, not the zone loss, refused:\n%s", msg)
	}
}

func TestRollingDeployOverBudgetIsRefused(t *testing.T) {
	// 9000 per task (8 tasks, 72,000 agents) with a 230 s keep-alive: a
	// zone's 36,000 agents over 230 s = 156.5/s (313 subscriptions/s) fits,
	// but one task's 9000 agents over the longest close window, 67.5 s,
	// with 4 waves overlapping, make 533/s: no deployment fits.
	_, err := decodeEdited(t, func(m map[string]any) {
		m["topics"].(map[string]any)["mqttKeepAliveSec"] = 230
		relayOf(m)["maxConnsPerTask"], relayOf(m)["targetConnsPerTask"] = 9000, 6000
	})
	msg := errString(err)
	for _, want := range []string{"fleets[0].expectedAgents/relay.maxConnsPerTask: \"72000/9000\"", "9000 agents each", "533 agents/s", "budget.connectsPerSecond", capacity.ECSRollingURL} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "of one zone") {
		t.Errorf("the zone loss fits here:\n%s", msg)
	}
	// Fewer agents fit: 6000 on 2..8 tasks.
	if _, err := decodeEdited(t, func(m map[string]any) {
		m["topics"].(map[string]any)["mqttKeepAliveSec"] = 230
		relayOf(m)["maxConnsPerTask"], relayOf(m)["targetConnsPerTask"] = 9000, 6000
		fleet0(m)["expectedAgents"] = 6000
	}); err != nil {
		t.Errorf("6000 agents: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
