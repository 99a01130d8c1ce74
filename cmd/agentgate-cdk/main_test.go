package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The app is what `cdk synth` runs. A wrong configuration must stop synth
// before any construct exists, with a message that names the field, the
// bad value and what is allowed.
func TestBadConfigurationStopsSynthWithItsField(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the CDK app")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	example, err := os.ReadFile("../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(example, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["fleets"].([]any)[0].(map[string]any)["weight"] = 300
	cfg["dns"].(map[string]any)["ttlSec"] = 3600
	bad := filepath.Join(dir, "bad.json")
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Over the reconnect budget (fleet euw1's 11,000 agents over a 67.5 s
	// close window = 163 connects/s > 150) and over the iot.data
	// endpoint's cap (40 × 3000).
	if err := json.Unmarshal(example, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["budget"] = map[string]any{"connectsPerSecond": 150}
	relay := cfg["fleets"].([]any)[0].(map[string]any)["relay"].(map[string]any)
	relay["maxTasks"] = 40
	overBudget := filepath.Join(dir, "over.json")
	data, _ = json.Marshal(cfg)
	if err := os.WriteFile(overBudget, data, 0o600); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		config string
		want   []string
	}{
		"invalid values": {bad, []string{"fleets[0].weight: 300; allowed: 0..255", "dns.ttlSec: 3600; allowed: 1..60"}},
		"missing file":   {filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		"over budget and endpoint cap": {overBudget, []string{
			`fleets[0].relay.maxTasks/maxConnsPerTask: "40 × 3000 = 120000 connections"; allowed: at most 100000`,
			`fleets[0].expectedAgents/relay.maxConnsPerTask: "11000/3000"; allowed: values whose rolling deployment fits the budget`,
			"over connectsPerSecond",
		}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, _ := json.Marshal(map[string]string{"config": tc.config})
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), "CDK_CONTEXT_JSON="+string(ctx), "CDK_OUTDIR="+filepath.Join(dir, "out"))
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("synth succeeded with %s", tc.config)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
