package status

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestValidateVersion(t *testing.T) {
	for _, v := range []string{"0.0.0", "1.5.0", "1.5.0-rc.1+build.7", "v2", "2026.12.04_3", "1~beta", strings.Repeat("9", MaxVersionLen)} {
		if err := ValidateVersion(v); err != nil {
			t.Errorf("ValidateVersion(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"", " 1.0", "1.0 ", "-1", ".1", "1/2", "1\n2", "1\x00", "é1", "1;rm", `1"`, "a#b", strings.Repeat("9", MaxVersionLen+1)} {
		if err := ValidateVersion(v); err == nil {
			t.Errorf("ValidateVersion(%q) accepted", v)
		}
	}
}

func TestMarshalAndTopic(t *testing.T) {
	b, err := Status{Version: "1.2.3", ConnectedAt: 1764406800000}.Marshal()
	if err != nil || string(b) != `{"version":"1.2.3","connectedAt":1764406800000}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	if _, err := (Status{Version: "1 2"}).Marshal(); err == nil {
		t.Error("invalid version marshalled")
	}
	if _, err := (Status{Version: "1", ConnectedAt: -1}).Marshal(); err == nil {
		t.Error("negative connectedAt marshalled")
	}
	if got := Topic("acme", "pc-1"); got != "acme/pc-1/up/status" {
		t.Errorf("Topic = %q", got)
	}
	if !strings.Contains(SQL, " FROM '+/+/up/status' WHERE isUndefined(version) = false") || strings.Contains(SQL, "*") {
		t.Errorf("SQL %q must select named fields from the status topic", SQL)
	}
}

const good = `{"version":"1.2.3","connectedAt":1764406800000,"customer":"acme","thing":"pc-1","receivedAt":1764406800123}`

func TestParseRecord(t *testing.T) {
	r, err := ParseRecord([]byte(good))
	if err != nil || r.Version != "1.2.3" || r.Customer != "acme" || r.Thing != "pc-1" || r.ReceivedAt != 1764406800123 || r.ConnectedAt != 1764406800000 {
		t.Fatalf("ParseRecord = %+v, %v", r, err)
	}
	if r, err := ParseRecord([]byte(`{"version":"1","customer":"acme","thing":"pc-1","receivedAt":5}`)); err != nil || r.ConnectedAt != 0 {
		t.Errorf("no connectedAt: %+v, %v", r, err)
	}
}

func TestParseRecordRefusesHostileInput(t *testing.T) {
	rest := `"customer":"acme","thing":"pc-1","receivedAt":5`
	for name, in := range map[string]string{
		"empty":               ``,
		"null":                `null`,
		"array":               `[]`,
		"string":              `"1.2.3"`,
		"no version":          `{` + rest + `}`,
		"null version":        `{"version":null,` + rest + `}`,
		"number version":      `{"version":1,` + rest + `}`,
		"object version":      `{"version":{"a":1},` + rest + `}`,
		"control in version":  `{"version":"1\u0000",` + rest + `}`,
		"newline in version":  `{"version":"1\n2",` + rest + `}`,
		"long version":        `{"version":"` + strings.Repeat("1", MaxVersionLen+1) + `",` + rest + `}`,
		"negative connected":  `{"version":"1","connectedAt":-1,` + rest + `}`,
		"string connectedAt":  `{"version":"1","connectedAt":"x",` + rest + `}`,
		"no receivedAt":       `{"version":"1","customer":"acme","thing":"pc-1"}`,
		"zero receivedAt":     `{"version":"1","customer":"acme","thing":"pc-1","receivedAt":0}`,
		"wildcard customer":   `{"version":"1","customer":"+","thing":"pc-1","receivedAt":5}`,
		"reserved customer":   `{"version":"1","customer":"agentgate","thing":"releases","receivedAt":5}`,
		"slash thing":         `{"version":"1","customer":"acme","thing":"a/b","receivedAt":5}`,
		"no thing":            `{"version":"1","customer":"acme","receivedAt":5}`,
		"forged event fields": `{"version":"1","eventType":"connected","clientId":"x",` + rest + `}`,
		"trailing":            good + ` {}`,
		"oversize":            `{"version":"1",` + rest + `,"pad":"` + strings.Repeat("x", MaxMessageBytes) + `"}`,
		"truncated":           good[:len(good)-3],
	} {
		if r, err := ParseRecord([]byte(in)); err == nil {
			t.Errorf("%s: accepted %+v", name, r)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{good, `{"version":"1","customer":"acme","thing":"pc-1","receivedAt":5}`, `{"version":"1 ","customer":"acme","thing":"pc-1","receivedAt":5}`, `null`, `{"version":"1"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		if ValidateVersion(r.Version) != nil || r.ReceivedAt <= 0 || r.ConnectedAt < 0 || strings.ContainsAny(r.Customer+r.Thing, "/#+$") {
			t.Fatalf("accepted %+v from %q", r, b)
		}
		// What was accepted survives a round trip unchanged.
		out, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ParseRecord(out); err != nil || again != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, again, err)
		}
	})
}

func TestRouteAndSelect(t *testing.T) {
	for topic, want := range map[string]bool{
		"acme/pc-1/up/status": true, "acme/pc-1/up/status/x": false, "acme/pc-1/down/status": false, "+/pc-1/up/status": false,
		"agentgate/releases/up/status": false, "$aws/rules/x/acme/pc-1/up/status": false, "acme/pc-1/up/telemetry": false,
	} {
		if _, _, ok := Route(topic); ok != want {
			t.Errorf("Route(%q) ok=%v", topic, ok)
		}
	}
	msg, _ := Status{Version: "1.2.3", ConnectedAt: 7}.Marshal()
	rec, matched, err := Select(msg, "acme", "pc-1", time.UnixMilli(9))
	if err != nil || !matched {
		t.Fatalf("Select = %s, %v, %v", rec, matched, err)
	}
	r, err := ParseRecord(rec)
	if err != nil || r != (Record{Status: Status{Version: "1.2.3", ConnectedAt: 7}, Customer: "acme", Thing: "pc-1", ReceivedAt: 9}) {
		t.Errorf("the rule's record of the agent's message: %+v, %v", r, err)
	}
	// Fields the agent adds never pass; the topic's identity always wins.
	rec, _, _ = Select([]byte(`{"version":"1","customer":"globex","thing":"x","eventType":"connected","receivedAt":1}`), "acme", "pc-1", time.UnixMilli(9))
	if r, err := ParseRecord(rec); err != nil || r.Customer != "acme" || r.Thing != "pc-1" || r.ReceivedAt != 9 {
		t.Errorf("forged fields: %s → %+v, %v", rec, r, err)
	}
	// A vendor's own status without a version does not match the WHERE clause.
	if _, matched, err := Select([]byte(`{"appliedVersion":3,"sha256":"ab"}`), "acme", "pc-1", time.UnixMilli(9)); matched || err != nil {
		t.Errorf("a status without version matched=%v, %v", matched, err)
	}
	for _, bad := range []string{``, `[]`, `null`, `"x"`, `{"version":"1"} {}`} {
		if _, matched, err := Select([]byte(bad), "acme", "pc-1", time.UnixMilli(9)); err == nil || matched {
			t.Errorf("Select(%q) matched=%v err=%v", bad, matched, err)
		}
	}
}

func FuzzSelect(f *testing.F) {
	for _, s := range []string{`{"version":"1.2.3","connectedAt":7}`, `{"version":null,"customer":"x"}`, `{"appliedVersion":3}`, `[]`, `{"version":"1"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		rec, matched, err := Select(payload, "acme", "pc-1", time.UnixMilli(5))
		if err != nil || !matched {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(rec, &m); err != nil {
			t.Fatalf("Select(%q) = %q: not JSON: %v", payload, rec, err)
		}
		if string(m["customer"]) != `"acme"` || string(m["thing"]) != `"pc-1"` || string(m["receivedAt"]) != "5" || len(m) > 5 {
			t.Fatalf("Select(%q) = %s: the topic's identity did not win, or extra fields passed", payload, rec)
		}
	})
}
