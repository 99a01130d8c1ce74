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
	// euw1 sets 11,000; use1 takes the default, minTasks 2 × target 2000.
	for i, want := range []int{11000, 4000} {
		if got := cfg.Fleets[i].ExpectedAgents; got != want {
			t.Errorf("fleets[%d].expectedAgents = %d, want %d", i, got, want)
		}
		// Both fit deploying every task at once: at worst 11,000 agents over
		// the 67.5 s close window of a 110 s drain, 163/s, 489
		// subscriptions/s (capacity.TestDeriveDeploysAtOnceWhenThatFits).
		if got := cfg.Fleets[i].AgentReconnectSpreadSec; got != 18 {
			t.Errorf("fleets[%d].agentReconnectSpreadSec = %d, want the agent's default 18", i, got)
		}
		d, err := cfg.Rollout(cfg.Fleets[i])
		if err != nil || d != (capacity.Deploy{MinHealthyPercent: 100, MaximumPercent: 200, DrainTimeoutSec: 110}) {
			t.Errorf("fleets[%d]: rollout %+v, %v", i, d, err)
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
	// carries; 10,000 expected agents keep the budget out of it (all at
	// once over 67.5 s: 148/s).
	_, err := decodeEdited(t, func(m map[string]any) {
		relayOf(m)["maxTasks"] = 40
		fleet0(m)["expectedAgents"] = 10000
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
	// A 10 s keep-alive: euw1's worst zone is 3 of 5 tasks carrying 11,000
	// agents, 6600 agents back over 10 s = 660 connects/s, 1980
	// subscriptions/s, 660 credential calls/s, over all three. Its rolling
	// deploy (11,000 over 67.5 s, 163/s) still fits.
	_, err := decodeEdited(t, func(m map[string]any) {
		m["topics"].(map[string]any)["mqttKeepAliveSec"] = 10
	})
	msg := errString(err)
	for _, want := range []string{"fleets[0].expectedAgents: 11000", "6600 agents of one zone (of 2)", "topics.mqttKeepAliveSec 10 s",
		"660 connects/s, 1980 subscriptions/s and 660 credential calls/s", "over budget.connectsPerSecond, budget.subscribesPerSecond, budget.credentialsPerSecond;"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "fleets[0].expectedAgents/relay.maxConnsPerTask") {
		t.Errorf("euw1's rolling deploy fits:\n%s", msg)
	}
}

func TestRollingDeployOverBudgetIsRefused(t *testing.T) {
	// 15,000 agents on 2..8 tasks: a deploy must start a task at 2 tasks
	// (at least 150 %), so from 5 tasks up every wave closes together:
	// 15,000 agents over at most 67.5 s = 222/s, 667 subscriptions/s. Its
	// zone loss (worst 3 of 5 tasks: 9000 over 60 s, 150/s, 450
	// subscriptions/s) fits.
	_, err := decodeEdited(t, func(m map[string]any) { fleet0(m)["expectedAgents"] = 15000 })
	msg := errString(err)
	for _, want := range []string{`fleets[0].expectedAgents/relay.maxConnsPerTask: "15000/3000"`, "reconnects 222 agents/s at 5 tasks", "over subscribesPerSecond", capacity.ECSRollingURL} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "of one zone") {
		t.Errorf("the zone loss fits here:\n%s", msg)
	}
	// A budget that admits it: 800 subscriptions/s.
	if _, err := decodeEdited(t, func(m map[string]any) {
		fleet0(m)["expectedAgents"] = 15000
		m["budget"] = map[string]any{"subscribesPerSecond": 800}
	}); err != nil {
		t.Errorf("with 800 subscriptions/s: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestKilledTaskOverBudgetIsRefused(t *testing.T) {
	// Agents reconnecting over 6 s after a task of 3000 is killed: 500
	// connects/s (at the budget), 1500 subscriptions/s (over); 18 s needed.
	_, err := decodeEdited(t, func(m map[string]any) { fleet0(m)["agentReconnectSpreadSec"] = 6 })
	msg := errString(err)
	for _, want := range []string{`fleets[0].agentReconnectSpreadSec/relay.maxConnsPerTask: "6/3000"`, "cuts its 3000 agents at once",
		"500 connects/s, 1500 subscriptions/s and 500 credential calls/s, over budget.subscribesPerSecond;", "at least 18 s"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %q:\n%s", want, msg)
		}
	}
	// A raised subscriptions budget lets 6 s fit; 5 s then is over
	// connects too (600/s) and needs 6 s.
	_, err = decodeEdited(t, func(m map[string]any) {
		fleet0(m)["agentReconnectSpreadSec"] = 6
		m["budget"] = map[string]any{"subscribesPerSecond": 1500}
	})
	if err != nil {
		t.Errorf("6 s with 1500 subscriptions/s: %v", err)
	}
	_, err = decodeEdited(t, func(m map[string]any) {
		fleet0(m)["agentReconnectSpreadSec"] = 5
		m["budget"] = map[string]any{"subscribesPerSecond": 1500}
	})
	if msg := errString(err); !strings.Contains(msg, "600 connects/s") || !strings.Contains(msg, "over budget.connectsPerSecond, budget.subscribesPerSecond, budget.credentialsPerSecond;") || !strings.Contains(msg, "at least 6 s") {
		t.Errorf("5 s: %s", msg)
	}
	// 6000 connections a task need 36 s.
	_, err = decodeEdited(t, func(m map[string]any) {
		relayOf(m)["maxConnsPerTask"] = 6000
		relayOf(m)["maxTasks"] = 4
		fleet0(m)["expectedAgents"] = 6000
	})
	if msg := errString(err); !strings.Contains(msg, `agentReconnectSpreadSec/relay.maxConnsPerTask: "18/6000"`) || !strings.Contains(msg, "at least 36 s") {
		t.Errorf("6000 a task: %s", msg)
	}
}

func TestAgentReconnectSpreadReadStrictly(t *testing.T) {
	for _, c := range []struct {
		set  any
		want string
	}{
		{-1, "fleets[0].agentReconnectSpreadSec: -1; allowed: 1..120 seconds"},
		{121, "fleets[0].agentReconnectSpreadSec: 121; allowed: 1..120 seconds"},
		{1e300, "fleets[0].agentReconnectSpreadSec"},
		{2.5, "fleets[0].agentReconnectSpreadSec: 2.5; want a whole number"},
		{"12s", `fleets[0].agentReconnectSpreadSec: the string "12s"; want a whole number`},
	} {
		_, err := decodeEdited(t, func(m map[string]any) { fleet0(m)["agentReconnectSpreadSec"] = c.set })
		if msg := errString(err); !strings.Contains(msg, c.want) {
			t.Errorf("%v: %s, want %q", c.set, msg, c.want)
		}
	}
	cfg, err := decodeEdited(t, func(m map[string]any) { fleet0(m)["agentReconnectSpreadSec"] = 30 })
	if err != nil || cfg.Fleets[0].AgentReconnectSpreadSec != 30 || cfg.CapacityFleet(cfg.Fleets[0]).ReconnectSpreadSec != 30 {
		t.Fatalf("30 s: %+v, %v", cfg, err)
	}
}
