package telemetry

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRuleName(t *testing.T) {
	for _, r := range RuleName {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			t.Fatalf("rule name %q has %q, outside ^[a-zA-Z0-9_]+$", RuleName, r)
		}
	}
	if !strings.Contains(SQL, "FROM '+/+/up/telemetry'") || !strings.Contains(SQL, "topic(1) AS customer") || !strings.Contains(SQL, "topic(2) AS thing") {
		t.Errorf("SQL %q", SQL)
	}
}

func TestRoute(t *testing.T) {
	for topic, want := range map[string][2]string{
		"acme/pc-1/up/telemetry":                                {"acme", "pc-1"},
		"$aws/rules/agentgate_telemetry/acme/pc-1/up/telemetry": {"acme", "pc-1"},
	} {
		c, th, ok := Route(topic)
		if !ok || c != want[0] || th != want[1] {
			t.Errorf("Route(%q) = %q %q %v", topic, c, th, ok)
		}
	}
	for _, topic := range []string{
		"acme/pc-1/up/status", "acme/pc-1/down/telemetry", "acme/pc-1/telemetry", "acme/pc-1/up/telemetry/x", "acme/up/telemetry",
		"$aws/rules/other_rule/acme/pc-1/up/telemetry", "agentgate/pc-1/up/telemetry", "a+/pc/up/telemetry", "", "/pc/up/telemetry",
	} {
		if _, _, ok := Route(topic); ok {
			t.Errorf("Route(%q) accepted", topic)
		}
	}
}

func TestEnrich(t *testing.T) {
	at := time.UnixMilli(1764842400123)
	b, err := Enrich([]byte(`{"seq":3,"boot":"b","records":[{"t":1}],"customer":"forged","thing":"x","receivedAt":1,"eventType":"connected"}`), "acme", "pc-1", at)
	if err != nil {
		t.Fatal(err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Customer != "acme" || r.Thing != "pc-1" || r.ReceivedAt != 1764842400123 || r.Seq != 3 || len(r.Records) != 1 {
		t.Errorf("record %+v", r)
	}
	// Only the selected fields and the topic's identity reach the stream.
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil || len(fields) != 6 || fields["eventType"] != nil {
		t.Errorf("record fields %v (%v), want seq, boot, records, customer, thing, receivedAt", fields, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{`, `{}{}`, `{"a":1} x`, strings.Repeat(" ", 129<<10) + `{}`} {
		if _, err := Enrich([]byte(bad), "acme", "pc-1", at); err == nil {
			t.Errorf("Enrich(%.20q) accepted", bad)
		}
	}
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"acme/pc-1/up/telemetry", "$aws/rules/agentgate_telemetry/a/b/up/telemetry", "#/+/up/telemetry", "a/b/up/telemetry/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		c, th, ok := Route(topic)
		if !ok {
			return
		}
		if Topic(c, th) != topic && BasicIngestTopic(c, th) != topic {
			t.Fatalf("Route(%q) = %q %q, which does not rebuild the topic", topic, c, th)
		}
	})
}

func FuzzEnrich(f *testing.F) {
	for _, s := range []string{`{"seq":1,"boot":"b","records":[1]}`, `{"customer":"x"}`, `[]`, `{"a":1}{}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := Enrich(payload, "acme", "pc-1", time.UnixMilli(5))
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("Enrich produced invalid JSON %q: %v", out, err)
		}
		if string(m["customer"]) != `"acme"` || string(m["thing"]) != `"pc-1"` || string(m["receivedAt"]) != "5" {
			t.Fatalf("Enrich(%q) = %s: the topic's identity did not win", payload, out)
		}
		for k := range m {
			if k != "seq" && k != "boot" && k != "records" && k != "customer" && k != "thing" && k != "receivedAt" {
				t.Fatalf("Enrich(%q) = %s: passes on field %q the rule does not select", payload, out, k)
			}
		}
	})
}

// The rule's SQL and Enrich select the same fields: the lab applies Enrich
// as the deployed rule applies SQL.
func TestSQLSelectsWhatEnrichPassesOn(t *testing.T) {
	want := "SELECT " + strings.Join(selected, ", ") + ", topic(1) AS customer, topic(2) AS thing, timestamp() AS receivedAt FROM "
	if !strings.HasPrefix(SQL, want) {
		t.Errorf("SQL %q does not start with %q", SQL, want)
	}
}
