package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestQualifierFromCDKJSON(t *testing.T) {
	// The repository's own cdk.json sets no qualifier.
	if q, err := QualifierFromCDKJSON("../../../cdk.json", false); err != nil || q != DefaultQualifier {
		t.Errorf("repository cdk.json: %q, %v; want %q", q, err, DefaultQualifier)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body, want, err string
	}{
		{"custom", `{"app":"x","context":{"@aws-cdk/core:bootstrapQualifier":"agentgt1"}}`, "agentgt1", ""},
		{"no context", `{"app":"x"}`, DefaultQualifier, ""},
		{"number", `{"context":{"@aws-cdk/core:bootstrapQualifier":7}}`, "", `context "@aws-cdk/core:bootstrapQualifier" is 7; allowed: 1..10 lowercase letters and digits`},
		{"too long", `{"context":{"@aws-cdk/core:bootstrapQualifier":"abcdefghijk"}}`, "", `is "abcdefghijk"; allowed`},
		{"uppercase", `{"context":{"@aws-cdk/core:bootstrapQualifier":"ABC"}}`, "", `is "ABC"`},
		{"path characters", `{"context":{"@aws-cdk/core:bootstrapQualifier":"../x"}}`, "", `is "../x"`},
		{"not JSON", `{"context":`, "", "invalid JSON"},
		{"context not an object", `{"context":[1]}`, "", "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := QualifierFromCDKJSON(write(tc.name+".json", tc.body), false)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %q, %v; want error containing %q", q, err, tc.err)
				}
				return
			}
			if err != nil || q != tc.want {
				t.Fatalf("got %q, %v; want %q", q, err, tc.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if q, err := QualifierFromCDKJSON(filepath.Join(dir, "none.json"), true); err != nil || q != DefaultQualifier {
			t.Errorf("optional missing file: %q, %v", q, err)
		}
		if _, err := QualifierFromCDKJSON(filepath.Join(dir, "none.json"), false); err == nil {
			t.Error("a cdk.json named on the command line but missing must be an error")
		}
	})
	t.Run("oversize", func(t *testing.T) {
		p := write("big.json", `{"app":"`+strings.Repeat("x", maxCDKJSONBytes)+`"}`)
		if _, err := QualifierFromCDKJSON(p, false); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("oversize cdk.json: %v", err)
		}
	})
}

// Whatever a cdk.json holds, the qualifier read from it is either valid
// (and so safe in an SSM parameter name and a command line) or an error
// that fits on one line.
func FuzzQualifierFromJSON(f *testing.F) {
	f.Add([]byte(`{"context":{"@aws-cdk/core:bootstrapQualifier":"agentgt1"}}`))
	f.Add([]byte(`{"context":{"@aws-cdk/core:bootstrapQualifier":"a\nb"}}`))
	f.Add([]byte(`{"context":{"@aws-cdk/core:bootstrapQualifier":{"x":1}}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := qualifierFromJSON(data)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("multi-line error %q", err)
			}
			return
		}
		if !qualifierRe.MatchString(q) {
			t.Errorf("accepted qualifier %q", q)
		}
	})
}

// A rendered line never contains a control character and stays bounded,
// whatever AWS put in a message.
func FuzzLine(f *testing.F) {
	f.Add("scope", "message", "fix")
	f.Add("s\r\n", "a\x00b\u2028c", "")
	f.Add("", strings.Repeat("é", 700), "x\ty")
	f.Fuzz(func(t *testing.T, scope, msg, fix string) {
		line := Result{Check: CheckHostedZone, Scope: scope, Status: Fail, Message: msg, Fix: fix}.Line()
		for _, r := range line {
			if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("line has %U: %q", r, line)
			}
		}
		if n := utf8.RuneCountInString(line); n > 3*maxField+100 {
			t.Fatalf("line has %d runes", n)
		}
	})
}
