package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const example = "../../agentgate.example.json"

func runCapture(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The report of the example: the numbers capacity's tests work out by hand
// reach the page (derived deployment, storms against the budget, the full
// reconnect time, the cost columns and their totals).
func TestReportOfTheExample(t *testing.T) {
	code, out, errs := runCapture("-config", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{
		"Reconnect budget (per account and region): 500 connects/s, 500 subscriptions/s, 500 credential calls/s",
		"at most 166.7 reconnects/s",
		"Fleet euw1 (eu-west-1, 2 zones, DNS weight 100)",
		"holds           24000 agents: relays 8 tasks × 3000 = 24000, iot.data endpoint 1 × 100000 = 100000",
		// capacity.TestMaxAgentsWithinTheBudget: 166.7/s × 67.5 s.
		"One reconnect costs 1 connect, 3 subscriptions, 1 credential call: at most 166.7 reconnects/s.",
		"expected        11000 agents (fleets[].expectedAgents); the budget admits up to 11250",
		"minimumHealthyPercent 100, maximumPercent 200, relay drain 110 s (closes spread over 67.5 s)",
		// 11,000 agents over 67.5 s = 163.0/s; 3 subscriptions each.
		"peak 163.0 connects/s, 488.9 subscriptions/s, 163.0 credential calls/s: fits",
		// 35 + 67.5 = 102.5 s.
		"worst at 4 tasks: 1 wave(s) of 4 task(s), 2750 agents a task, 1 wave(s) closing at once, ≥ 102 s",
		// 3 of 5 tasks in one zone: 6600 agents over 60 s.
		"peak 110.0 connects/s, 330.0 subscriptions/s, 110.0 credential calls/s: fits",
		"worst at 5 tasks: 6600 agents of one zone",
		// One task of 3000 killed, its agents back over the default 18 s:
		// 166.7/s, exactly the budget; 3000 / 166.7 = 18 s needed.
		"task killed     peak 166.7 connects/s, 500.0 subscriptions/s, 166.7 credential calls/s: fits",
		"3000 agents of one task back over agentReconnectSpreadSec 18 s; set your agents' --reconnect-spread to at least 18 s",
		// 11,000 / 166.7 = 66 s.
		"full reconnect  66 s: 11000 agents at the budget's 166.7 reconnects/s",
		// use1: minTasks 2 × target 2000.
		"expected        4000 agents",
		"Total: holds 48000 agents, expects 15000; every fleet's agents back at the budget within 66 s",
		"us-east-1 list prices of 2026-12-04",
		"60 messages an hour of 512 bytes",
		// 10,000 agents: 5 tasks × 0.5 vCPU × 730 h × $0.03238 = $59.09.
		"euw1: Fargate vCPU        $59.09        $590.93",
		// 438 million messages; 4.38 billion = $1000 + 3380 × $0.80.
		"IoT Core messaging       $438.00       $3704.00",
		"At 100000 agents, over capacity",
		"euw1 (100000 agents need 50 tasks; it holds 24000 on 8)",
		"https://aws.amazon.com/fargate/pricing/",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
	// Every cost line of the first column adds up to the total printed.
	if !strings.Contains(out, "total       $851.00       $5113.44") {
		t.Errorf("totals changed:\n%s", out)
	}
}

// A configuration synth refuses is refused here, with synth's messages.
func TestOverBudgetConfigIsRefused(t *testing.T) {
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.json")
	edited := strings.Replace(string(data), `"project": "agentgate",`, `"project": "agentgate", "budget": {"connectsPerSecond": 150},`, 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCapture("-config", path)
	if code != 1 || out != "" || !strings.Contains(errs, "fleets[0].expectedAgents") || !strings.Contains(errs, "budget.connectsPerSecond") {
		t.Errorf("exit %d, stdout %q, stderr %s", code, out, errs)
	}
}

func TestBadFlagsAndFiles(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-config", "/no/such/file.json"}, "no such file"},
		{[]string{"-agents", "0"}, `-agents: "0" is not a whole number from 1 to 10000000`},
		{[]string{"-agents", "10000001"}, "from 1 to 10000000"},
		{[]string{"-agents", "1e4"}, `"1e4" is not a whole number`},
		{[]string{"-agents", ""}, `"" is not a whole number`},
		{[]string{"-agents", "1,2,3,4,5,6,7"}, "at most 6 counts, got 7"},
		{[]string{"-agents", strings.Repeat("9", 5000)}, "…"},
		{[]string{"-messages-per-hour", "NaN"}, "-messages-per-hour NaN"},
		{[]string{"-messages-per-hour", "-1"}, "want 0..360000"},
		{[]string{"-messages-per-hour", "+Inf"}, "-messages-per-hour +Inf"},
		{[]string{"-message-bytes", "0"}, "want 1..131072"},
		{[]string{"-message-bytes", "131073"}, "want 1..131072"},
		{[]string{"-new-flows-per-hour", "3601"}, "want 0..3600"},
		{[]string{"-nosuchflag"}, "flag provided but not defined"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, c := range cases {
		args := append([]string{"-config", example}, c.args...)
		code, out, errs := runCapture(args...)
		if code != 1 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.args, code, out, errs, c.want)
		}
		if len(errs) > 4000 {
			t.Errorf("%v: stderr of %d bytes echoes the input", c.args, len(errs))
		}
	}
	if code, _, _ := runCapture("-h"); code != 0 {
		t.Errorf("-h exits %d, want 0", code)
	}
}

func FuzzParseCounts(f *testing.F) {
	for _, s := range []string{"10000,100000", "1", "", ",", "0", "-1", "1,,2", " 5 , 6 ", "99999999999999999999", "1,2,3,4,5,6,7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		counts, err := parseCounts(s)
		if err != nil {
			if counts != nil {
				t.Errorf("parseCounts(%q) returned counts with an error", s)
			}
			if len(err.Error()) > 200 {
				t.Errorf("parseCounts(%q): error of %d bytes", s, len(err.Error()))
			}
			return
		}
		if len(counts) < 1 || len(counts) > maxAgentCounts {
			t.Errorf("parseCounts(%q) = %v", s, counts)
		}
		for _, n := range counts {
			if n < 1 || n > maxAgents {
				t.Errorf("parseCounts(%q) = %v: %d out of range", s, counts, n)
			}
		}
	})
}

// docs/capacity.md shows the report of the example as the command prints
// it: a change to the arithmetic, the prices or the example shows there.
func TestDocsSampleIsTheCommandsOutput(t *testing.T) {
	doc, err := os.ReadFile("../../docs/capacity.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Sample report")
	if !ok {
		t.Fatal(`docs/capacity.md has no "## Sample report"`)
	}
	_, rest, ok = strings.Cut(rest, "```text\n")
	sample, _, closed := strings.Cut(rest, "```")
	if !ok || !closed {
		t.Fatal("docs/capacity.md: no ```text block under Sample report")
	}
	code, out, errs := runCapture("-config", example)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// make capacity passes the default config's name as given.
	out = strings.Replace(out, example, DefaultConfig, 1)
	if sample != out {
		t.Errorf("docs/capacity.md's sample differs from the report; regenerate it with make capacity:\n--- doc\n%s\n--- command\n%s", sample, out)
	}
}

// The report prints the spread the config states and the least that fits.
func TestReportPrintsTheAgentsSpread(t *testing.T) {
	data, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.json")
	edited := strings.Replace(string(data), `"expectedAgents": 11000,`, `"expectedAgents": 11000, "agentReconnectSpreadSec": 20,`, 1)
	if edited == string(data) {
		t.Fatal("the example no longer sets expectedAgents 11000")
	}
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCapture("-config", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// 3000 / 20 = 150/s; still 18 s needed.
	for _, want := range []string{"task killed     peak 150.0 connects/s, 450.0 subscriptions/s, 150.0 credential calls/s: fits",
		"3000 agents of one task back over agentReconnectSpreadSec 20 s; set your agents' --reconnect-spread to at least 18 s"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
}
