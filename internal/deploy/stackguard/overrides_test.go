package stackguard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const reason = "address 2 retired after every customer moved to address 3 (OPS-41)"

func TestParseOverrides(t *testing.T) {
	good := `{"overrides":[{"resource":"agentgate-euw1-addresses/AddressesAddress27D08E6FC","reason":"` + reason + `"}]}`
	got, err := ParseOverrides([]byte(good))
	if err != nil || len(got) != 1 || got[0].Resource != "agentgate-euw1-addresses/AddressesAddress27D08E6FC" {
		t.Fatalf("good file: %v %v", got, err)
	}
	if got, err := ParseOverrides([]byte(`{"overrides":[]}`)); err != nil || len(got) != 0 {
		t.Errorf("empty list: %v %v", got, err)
	}
	bad := []struct{ name, doc, want string }{
		{"not JSON", `{overrides`, "overrides: invalid character"},
		{"wrong shape", `{"overrides":{"resource":"a/B"}}`, "cannot unmarshal"},
		{"unknown field", `{"overrides":[{"resource":"a/B","reason":"` + reason + `","expires":"never"}]}`, `unknown field "expires"`},
		{"trailing data", `{"overrides":[]} {"overrides":[]}`, "trailing data"},
		{"no stack", `{"overrides":[{"resource":"AddressesAddress1","reason":"` + reason + `"}]}`, `overrides[0].resource: "AddressesAddress1"; allowed: STACK/LOGICAL_ID`},
		{"wildcard", `{"overrides":[{"resource":"agentgate-euw1-addresses/*","reason":"` + reason + `"}]}`, `overrides[0].resource: "agentgate-euw1-addresses/*"`},
		{"path traversal", `{"overrides":[{"resource":"../x/Y","reason":"` + reason + `"}]}`, `overrides[0].resource: "../x/Y"`},
		{"duplicate", `{"overrides":[{"resource":"a/B","reason":"` + reason + `"},{"resource":"a/B","reason":"` + reason + `"}]}`, `overrides[1].resource: "a/B"; allowed: each resource once`},
		{"no reason", `{"overrides":[{"resource":"a/B"}]}`, `overrides[0].reason: ""; allowed: a sentence`},
		{"token reason", `{"overrides":[{"resource":"a/B","reason":"   ok, approved      "}]}`, `overrides[0].reason`},
		{"oversize", `{"overrides":[` + strings.Repeat(" ", maxOverridesBytes) + `]}`, "allowed: at most 65536"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOverrides([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	_, err = ParseOverrides([]byte(`{"overrides":[{"resource":"x","reason":"short"},{"resource":"y/Z"}]}`))
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three problems, one per line: %v", err)
	}
}

func TestReadOverrides(t *testing.T) {
	dir := t.TempDir()
	if got, err := ReadOverrides(filepath.Join(dir, "missing.json")); err != nil || got != nil {
		t.Errorf("missing file means none: %v %v", got, err)
	}
	p := filepath.Join(dir, "o.json")
	if err := os.WriteFile(p, []byte(`{"overrides":[{"resource":"a/B","reason":"no"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOverrides(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error should name the file: %v", err)
	}
}

func TestOnlyOverridesAddedByTheChangeApply(t *testing.T) {
	merged := Override{"net/NatEip1", reason}
	added := Override{"net/NatEip2", "the second NAT gateway is removed with its zone (ADR 7)"}
	got := NewOverrides([]Override{merged}, []Override{merged, added})
	if len(got) != 1 || got[0] != added {
		t.Errorf("got %v, want only the added override", got)
	}
	// Rewording an old override is a new decision, made in this change.
	reworded := Override{"net/NatEip1", "removed again after review with the network team (OPS-77)"}
	if got := NewOverrides([]Override{merged}, []Override{reworded}); len(got) != 1 {
		t.Errorf("reworded override: %v", got)
	}
}

func TestApplyOverrides(t *testing.T) {
	findings := []Finding{
		{"net", "NatEip1", "AWS::EC2::EIP", "removed"},
		{"net", "NatEip2", "AWS::EC2::EIP", "removed"},
	}
	blocking, allowed, unused := ApplyOverrides(findings, []Override{{"net/NatEip1", reason}, {"net/Typo", reason}})
	if len(blocking) != 1 || blocking[0].LogicalID != "NatEip2" {
		t.Errorf("blocking %v, want NatEip2", blocking)
	}
	if len(allowed) != 1 || allowed[0].LogicalID != "NatEip1" || allowed[0].Reason != reason {
		t.Errorf("allowed %v", allowed)
	}
	if len(unused) != 1 || unused[0].Resource != "net/Typo" {
		t.Errorf("unused %v", unused)
	}
}

func FuzzParseOverrides(f *testing.F) {
	f.Add([]byte(`{"overrides":[{"resource":"a/B","reason":"` + reason + `"}]}`))
	f.Add([]byte(`{"overrides":[]}`))
	f.Add([]byte(`{"overrides":[{"resource":"a/B","reason":""}],"x":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseOverrides(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, o := range got {
			if !resourceRef.MatchString(o.Resource) || seen[o.Resource] || len(strings.TrimSpace(o.Reason)) < minReasonLen {
				t.Fatalf("accepted a bad override %+v", o)
			}
			seen[o.Resource] = true
		}
	})
}
