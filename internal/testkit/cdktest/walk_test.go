package cdktest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestLookupNamesTheStepThatFailed(t *testing.T) {
	var tmpl any
	if err := json.Unmarshal([]byte(`{"Resources":{"Q":{"Type":"AWS::SQS::Queue","Properties":{"Tags":[{"Key":"a","Value":"b"}]}}}}`), &tmpl); err != nil {
		t.Fatal(err)
	}
	if v, err := Lookup(tmpl, "Resources", "Q", "Properties", "Tags", 0, "Value"); err != nil || v != "b" {
		t.Errorf("Lookup = %v, %v; want b", v, err)
	}
	for _, c := range []struct {
		path []any
		want string
	}{
		{[]any{"Resources", "R"}, `.Resources: no key "R"`},
		{[]any{"Resources", "Q", "Properties", "Tags", 1}, ".Resources.Q.Properties.Tags: index 1 out of a list of 1"},
		{[]any{"Resources", "Q", "Type", "x"}, `.Resources.Q.Type: want an object to read "x", found string`},
		{[]any{"Resources", 0}, ".Resources: want a list to read [0], found map"},
		{[]any{1.5}, "path step 0 is a float64"},
	} {
		if _, err := Lookup(tmpl, c.path...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Lookup(%v) error %v; want it to mention %q", c.path, err, c.want)
		}
	}
}

// recorder is a testing.TB that records a Fatal instead of stopping the test.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	panic(r)
}
func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

func TestGetFailsWithTheTypeFound(t *testing.T) {
	tmpl := map[string]any{"Port": float64(443)}
	if got := Get[float64](t, tmpl, "Port"); got != 443 {
		t.Errorf("Get = %v", got)
	}
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("Get did not fail the test: %v", p)
			}
		}()
		Get[string](r, tmpl, "Port")
	}()
	if !strings.Contains(r.msg, ".Port: want string, found float64 443") {
		t.Errorf("failure %q; want the path, the wanted type and what was found", r.msg)
	}
}
