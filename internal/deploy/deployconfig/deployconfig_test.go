package deployconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/rolealias"
)

func loadExample(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile("../../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExampleIsValidAndDefaultsApply(t *testing.T) {
	cfg, err := Load("../../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Fleets[1].Relay.MinTasks; got != 2 {
		t.Errorf("second fleet minTasks default = %d, want one per zone (2)", got)
	}
	if got := cfg.Fleets[1].Relay.MaxConnsPerSource; got != 1000 {
		t.Errorf("second fleet maxConnsPerSource default = %d, want a third of maxConnsPerTask 3000", got)
	}
	if cfg.DNS.Account != "111111111111" || cfg.DNS.Region != "eu-west-1" {
		t.Errorf("dns stack placement default = %s/%s, want the first fleet's", cfg.DNS.Account, cfg.DNS.Region)
	}
	if got := cfg.StackName("euw1", "network"); got != "agentgate-euw1-network" {
		t.Errorf("StackName = %q", got)
	}
	if got := cfg.StackName("", "dns"); got != "agentgate-dns" {
		t.Errorf("StackName = %q", got)
	}
}

// Each case edits the example with one bad value and expects the error to
// name the field, echo the value and say what is allowed.
func TestEachRuleNamesFieldValueAndAllowed(t *testing.T) {
	fleet0 := func(m map[string]any) map[string]any { return m["fleets"].([]any)[0].(map[string]any) }
	relay0 := func(m map[string]any) map[string]any { return fleet0(m)["relay"].(map[string]any) }
	cases := []struct {
		name, field, value string
		edit               func(m map[string]any)
	}{
		{"project", "project", `"Agent Gate"`, func(m map[string]any) { m["project"] = "Agent Gate" }},
		{"zone", "dns.zoneName", `"localhost"`, func(m map[string]any) { m["dns"].(map[string]any)["zoneName"] = "localhost" }},
		{"zone id", "dns.hostedZoneId", `"zone-1"`, func(m map[string]any) { m["dns"].(map[string]any)["hostedZoneId"] = "zone-1" }},
		{"record outside zone", "dns.recordName", `"agents.example.org"`, func(m map[string]any) { m["dns"].(map[string]any)["recordName"] = "agents.example.org" }},
		{"record suffix trick", "dns.recordName", `"agents.notexample.com"`, func(m map[string]any) { m["dns"].(map[string]any)["recordName"] = "agents.notexample.com" }},
		{"ttl", "dns.ttlSec", "300", func(m map[string]any) { m["dns"].(map[string]any)["ttlSec"] = 300 }},
		{"ttl negative", "dns.ttlSec", "-1", func(m map[string]any) { m["dns"].(map[string]any)["ttlSec"] = -1 }},
		{"health sni", "dns.healthSni", `"health_check"`, func(m map[string]any) { m["dns"].(map[string]any)["healthSni"] = "health_check" }},
		{"health sni an IP literal", "dns.healthSni", `"10.0.0.1"`, func(m map[string]any) { m["dns"].(map[string]any)["healthSni"] = "10.0.0.1" }},
		{"dns account", "dns.account", `"12345"`, func(m map[string]any) { m["dns"].(map[string]any)["account"] = "12345" }},
		{"dns region", "dns.region", `"mars-1"`, func(m map[string]any) { m["dns"].(map[string]any)["region"] = "mars-1" }},
		{"alias", "identity.roleAliasName", `"agent alias"`, func(m map[string]any) { m["identity"].(map[string]any)["roleAliasName"] = "agent alias" }},
		{"duration low", "identity.credentialDurationSec", "600", func(m map[string]any) { m["identity"].(map[string]any)["credentialDurationSec"] = 600 }},
		{"duration high", "identity.credentialDurationSec", "86400", func(m map[string]any) { m["identity"].(map[string]any)["credentialDurationSec"] = 86400 }},
		{"channel wildcard", "topics.releaseChannels[0]", `"#"`, func(m map[string]any) { m["topics"].(map[string]any)["releaseChannels"] = []any{"#"} }},
		{"channel dup", "topics.releaseChannels[1]", `"beta"`, func(m map[string]any) { m["topics"].(map[string]any)["releaseChannels"] = []any{"beta", "beta"} }},
		{"keepalive", "topics.mqttKeepAliveSec", "300", func(m map[string]any) { m["topics"].(map[string]any)["mqttKeepAliveSec"] = 300 }},
		{"fleets empty", "fleets", `[]`, func(m map[string]any) { m["fleets"] = []any{} }},
		{"fleet name", "fleets[0].name", `"EU-West"`, func(m map[string]any) { fleet0(m)["name"] = "EU-West" }},
		{"fleet dup", "fleets[1].name", `"euw1"`, func(m map[string]any) { m["fleets"].([]any)[1].(map[string]any)["name"] = "euw1" }},
		{"account", "fleets[0].account", `"11111111111a"`, func(m map[string]any) { fleet0(m)["account"] = "11111111111a" }},
		{"fleet in another account", "fleets[1].account", `"222222222222"`, func(m map[string]any) { m["fleets"].([]any)[1].(map[string]any)["account"] = "222222222222" }},
		{"region", "fleets[0].region", `"eu-west"`, func(m map[string]any) { fleet0(m)["region"] = "eu-west" }},
		{"second fleet in a region", "fleets[1].region", `"eu-west-1"`, func(m map[string]any) {
			f := m["fleets"].([]any)[1].(map[string]any)
			f["region"], f["availabilityZones"] = "eu-west-1", []any{"eu-west-1a", "eu-west-1b"}
		}},
		{"one zone", "fleets[0].availabilityZones", `["eu-west-1a"]`, func(m map[string]any) { fleet0(m)["availabilityZones"] = []any{"eu-west-1a"} }},
		{"foreign zone", "fleets[0].availabilityZones[1]", `"us-east-1b"`, func(m map[string]any) { fleet0(m)["availabilityZones"] = []any{"eu-west-1a", "us-east-1b"} }},
		{"zone dup", "fleets[0].availabilityZones[1]", `"eu-west-1a"`, func(m map[string]any) { fleet0(m)["availabilityZones"] = []any{"eu-west-1a", "eu-west-1a"} }},
		{"ip count", "fleets[0].staticIpCount", "3", func(m map[string]any) { fleet0(m)["staticIpCount"] = 3 }},
		{"weight", "fleets[0].weight", "256", func(m map[string]any) { fleet0(m)["weight"] = 256 }},
		{"all standby", "fleets[*].weight", "0", func(m map[string]any) { fleet0(m)["weight"] = 0 }},
		{"cidr public", "fleets[0].vpcCidr", `"8.8.0.0/16"`, func(m map[string]any) { fleet0(m)["vpcCidr"] = "8.8.0.0/16" }},
		{"cidr host bits", "fleets[0].vpcCidr", `"10.40.0.1/16"`, func(m map[string]any) { fleet0(m)["vpcCidr"] = "10.40.0.1/16" }},
		{"min tasks", "fleets[0].relay.minTasks", "1", func(m map[string]any) { relay0(m)["minTasks"] = 1 }},
		{"max tasks", "fleets[0].relay.maxTasks", "1", func(m map[string]any) { relay0(m)["maxTasks"] = 1 }},
		{"cpu", "fleets[0].relay.cpu", "300", func(m map[string]any) { relay0(m)["cpu"] = 300 }},
		{"memory", "fleets[0].relay.memoryMiB", "512", func(m map[string]any) { relay0(m)["memoryMiB"] = 512 }},
		{"max conns", "fleets[0].relay.maxConnsPerTask", "-5", func(m map[string]any) { relay0(m)["maxConnsPerTask"] = -5 }},
		{"target conns", "fleets[0].relay.targetConnsPerTask", "3000", func(m map[string]any) { relay0(m)["targetConnsPerTask"] = 3000 }},
		{"conns per source above the task cap", "fleets[0].relay.maxConnsPerSource", "3001", func(m map[string]any) { relay0(m)["maxConnsPerSource"] = 3001 }},
		{"conns per source negative", "fleets[0].relay.maxConnsPerSource", "-1", func(m map[string]any) { relay0(m)["maxConnsPerSource"] = -1 }},
		{"relay idle too short", "fleets[0].relay.idleTimeoutSec/nlbIdleTimeoutSec", `"60/400"`, func(m map[string]any) { relay0(m)["idleTimeoutSec"] = 60 }},
		{"alarm email with name", "alarms.email[0]", `"Ops <ops@example.com>"`, func(m map[string]any) { m["alarms"] = map[string]any{"email": []any{"Ops <ops@example.com>"}} }},
		{"alarm email not an address", "alarms.email[0]", `"ops"`, func(m map[string]any) { m["alarms"] = map[string]any{"email": []any{"ops"}} }},
		{"alarm email list in one", "alarms.email[0]", `"a@example.com,b@example.com"`, func(m map[string]any) { m["alarms"] = map[string]any{"email": []any{"a@example.com,b@example.com"}} }},
		{"alarm email twice", "alarms.email[1]", `"OPS@example.com"`, func(m map[string]any) {
			m["alarms"] = map[string]any{"email": []any{"ops@example.com", "OPS@example.com"}}
		}},
		{"alarm emails too many", "alarms.email", `"11 addresses"`, func(m map[string]any) {
			var list []any
			for i := range 11 {
				list = append(list, fmt.Sprintf("ops%d@example.com", i))
			}
			m["alarms"] = map[string]any{"email": list}
		}},
		{"nlb idle below relay", "fleets[0].relay.idleTimeoutSec/nlbIdleTimeoutSec", `"360/350"`, func(m map[string]any) { relay0(m)["nlbIdleTimeoutSec"] = 350 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := loadExample(t)
			tc.edit(m)
			_, err := Decode(bytes.NewReader(encode(t, m)))
			if err == nil {
				t.Fatalf("accepted %s = %s", tc.field, tc.value)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field+": "+tc.value+"; allowed: ") {
				t.Errorf("error does not name %s = %s with what is allowed:\n%s", tc.field, tc.value, msg)
			}
		})
	}
}

func TestMalformedAndHostileFiles(t *testing.T) {
	cases := map[string]string{
		"not json":        "fleets: [",
		"unknown field":   `{"fleets": [], "fleet": []}`,
		"two documents":   `{} {}`,
		"wrong type":      `{"fleets": "euw1"}`,
		"null":            `null`,
		"oversize":        `{"project": "` + strings.Repeat("a", MaxFileBytes) + `"}`,
		"deep nesting":    strings.Repeat("[", 100000),
		"empty":           ``,
		"number overflow": `{"dns": {"ttlSec": 1e400}}`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(strings.NewReader(in)); err == nil {
				t.Fatalf("accepted %.40q", in)
			}
		})
	}
	if _, err := Load("does-not-exist.json"); err == nil || !strings.Contains(err.Error(), "does-not-exist.json") {
		t.Errorf("missing file error should name the path, got %v", err)
	}
}

func TestAllViolationsReportedTogether(t *testing.T) {
	m := loadExample(t)
	m["project"] = "BAD"
	m["dns"].(map[string]any)["ttlSec"] = 3600
	_, err := Decode(bytes.NewReader(encode(t, m)))
	if err == nil || !strings.Contains(err.Error(), "project:") || !strings.Contains(err.Error(), "dns.ttlSec:") {
		t.Fatalf("want both violations, got %v", err)
	}
}

// FuzzDecode: no input panics; the reader accepts exactly the syntax
// encoding/json accepts (bar nesting beyond maxDepth); whatever is accepted
// validates again unchanged and survives a round trip through encoding/json
// (whose tags the strict reader matches exactly).
func FuzzDecode(f *testing.F) {
	data, _ := os.ReadFile("../../../agentgate.example.json")
	f.Add(data)
	f.Add([]byte(`{"fleets":[{"name":"a","availabilityZones":["x"]}]}`))
	f.Add([]byte(`{"a":1,"a":2,"b":[1,2,],}`))
	f.Add([]byte("project: agentgate\n"))
	f.Add([]byte(`{"s":"\u00e4\ud83d\ude00\"\\","n":-0.5e+3}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _, syntax := readDocument(in)
		valid := json.Valid(in)
		if syntax == nil && !valid {
			t.Fatalf("the reader accepted what encoding/json refuses: %q", in)
		}
		if syntax != nil && valid {
			var root any
			_ = json.Unmarshal(in, &root)
			if _, object := root.(map[string]any); object && !strings.Contains(syntax.msg, "nested deeper than") {
				t.Fatalf("the reader refused a JSON object encoding/json accepts: %s: %s\n%q", syntax.path, syntax.msg, in)
			}
		}
		cfg, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever is accepted must validate again unchanged (defaults are idempotent).
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config fails Validate: %v", err)
		}
		out, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(bytes.NewReader(out))
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, cfg, again)
		}
	})
}

func TestAlarmEmailsAreOptionalAndKept(t *testing.T) {
	m := loadExample(t)
	if _, ok := m["alarms"]; ok {
		t.Error("the example configuration subscribes e-mail to alarms; deploying it would mail a made-up address")
	}
	m["alarms"] = map[string]any{"email": []any{"ops@example.com", "oncall+agentgate@example.org"}}
	cfg, err := Decode(bytes.NewReader(encode(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Alarms.Email) != "[ops@example.com oncall+agentgate@example.org]" {
		t.Errorf("alarms.email = %v", cfg.Alarms.Email)
	}
}

// The per-source cap defaults to a third of the task cap the file sets,
// is taken as given within 1..maxConnsPerTask, and a bad task cap is
// reported once, not again as a per-source problem.
func TestMaxConnsPerSourceFollowsTheTaskCap(t *testing.T) {
	relay0 := func(m map[string]any) map[string]any {
		return m["fleets"].([]any)[0].(map[string]any)["relay"].(map[string]any)
	}
	decode := func(edit func(r map[string]any)) (*Config, error) {
		m := loadExample(t)
		// 6000 agents keep 9000 per task inside the reconnect budget,
		// with agents that spread a killed task's 6000 over 36 s.
		m["fleets"].([]any)[0].(map[string]any)["expectedAgents"] = 6000
		m["fleets"].([]any)[0].(map[string]any)["agentReconnectSpreadSec"] = 36
		edit(relay0(m))
		return Decode(bytes.NewReader(encode(t, m)))
	}
	cfg, err := decode(func(r map[string]any) { r["maxConnsPerTask"], r["targetConnsPerTask"] = 9000, 6000 })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Fleets[0].Relay.MaxConnsPerSource; got != 3000 {
		t.Errorf("maxConnsPerSource default for 9000 per task = %d, want 3000", got)
	}
	cfg, err = decode(func(r map[string]any) { r["maxConnsPerSource"] = 3000 })
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Fleets[0].Relay.MaxConnsPerSource; got != 3000 {
		t.Errorf("maxConnsPerSource = %d, want the 3000 set", got)
	}
	_, err = decode(func(r map[string]any) { r["maxConnsPerTask"] = -5 })
	if err == nil || strings.Contains(err.Error(), "maxConnsPerSource") {
		t.Errorf("a bad maxConnsPerTask: %v", err)
	}
}

// The identity stacks own IoT logging and the Device Defender audit unless
// the file says otherwise, switch by switch; only true or false is taken.
func TestIdentitySingletonSwitches(t *testing.T) {
	decode := func(identity map[string]any) (*Config, error) {
		m := loadExample(t)
		for k, v := range identity {
			m["identity"].(map[string]any)[k] = v
		}
		return Decode(bytes.NewReader(encode(t, m)))
	}
	cfg, err := decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Identity.ManagesIotLogging() || !cfg.Identity.ManagesDeviceDefenderAudit() {
		t.Errorf("defaults: logging %v audit %v, want both managed", cfg.Identity.ManagesIotLogging(), cfg.Identity.ManagesDeviceDefenderAudit())
	}
	cfg, err = decode(map[string]any{"manageIotLogging": false})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Identity.ManagesIotLogging() || !cfg.Identity.ManagesDeviceDefenderAudit() {
		t.Errorf("manageIotLogging false: logging %v audit %v", cfg.Identity.ManagesIotLogging(), cfg.Identity.ManagesDeviceDefenderAudit())
	}
	cfg, err = decode(map[string]any{"manageDeviceDefenderAudit": false, "manageIotLogging": true})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Identity.ManagesIotLogging() || cfg.Identity.ManagesDeviceDefenderAudit() {
		t.Errorf("manageDeviceDefenderAudit false: logging %v audit %v", cfg.Identity.ManagesIotLogging(), cfg.Identity.ManagesDeviceDefenderAudit())
	}
	for value, want := range map[any]string{
		"false": FieldManageIotLogging + `: the string "false"; want true or false`,
		0:       FieldManageIotLogging + ": the number 0; want true or false",
		nil:     FieldManageIotLogging + ": null; leave the field out to take its default",
	} {
		if _, err := decode(map[string]any{"manageIotLogging": value}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("manageIotLogging %#v: %v, want %q", value, err, want)
		}
	}
	if _, err := decode(map[string]any{"manageIoTLogging": false}); err == nil || !strings.Contains(err.Error(), `did you mean "manageIotLogging"? Field names are case-sensitive`) {
		t.Errorf("a key in another case: %v", err)
	}
}

// The config file takes every role alias name CreateRoleAlias takes ('_'
// included) and refuses the others: the rule is rolealias's, as in the
// identity construct, the agent policies and the agent.
func TestRoleAliasNameIsRoleAliasRule(t *testing.T) {
	for name, ok := range map[string]bool{"agentgate_agent": true, "a=b,c@d-e": true, "agent alias": false, "agents/x": false, strings.Repeat("a", 129): false} {
		m := loadExample(t)
		m["identity"].(map[string]any)["roleAliasName"] = name
		_, err := Decode(bytes.NewReader(encode(t, m)))
		if ok != (err == nil) || ok != rolealias.ValidName(name) {
			t.Errorf("%q: config error %v, rolealias.ValidName %v", name, err, rolealias.ValidName(name))
		}
	}
}
