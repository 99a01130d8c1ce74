package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func testEnv() (*environment, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &environment{stdout: &out, stderr: &errb, getenv: func(string) (string, bool) { return "", false }}, &out, &errb
}

func TestDispatch(t *testing.T) {
	var got []string
	subjects["testsubject"] = subject{summary: "for the test", run: func(_ context.Context, _ *environment, args []string) error {
		got = args
		switch args[0] {
		case "bad":
			return usageError{"bad usage"}
		case "fail":
			return errors.New("failed")
		}
		return nil
	}}
	t.Cleanup(func() { delete(subjects, "testsubject") })

	cases := []struct {
		args []string
		want int
		msg  string
	}{
		{nil, 2, "usage: agentgate-admin"},
		{[]string{"-h"}, 0, "testsubject"},
		{[]string{"nosuch"}, 2, `unknown subject "nosuch"`},
		{[]string{"testsubject", "ok", "x"}, 0, ""},
		{[]string{"testsubject", "bad"}, 2, "bad usage"},
		{[]string{"testsubject", "fail"}, 1, "agentgate-admin testsubject: failed"},
	}
	for _, c := range cases {
		env, _, errb := testEnv()
		if code := run(context.Background(), c.args, env); code != c.want {
			t.Errorf("run(%q) = %d, want %d (stderr %q)", c.args, code, c.want, errb)
		}
		if !strings.Contains(errb.String(), c.msg) {
			t.Errorf("run(%q) stderr %q lacks %q", c.args, errb, c.msg)
		}
	}
	if strings.Join(got, " ") != "fail" {
		t.Errorf("subject saw args %q", got)
	}
}

func TestPrintRows(t *testing.T) {
	type row struct {
		Name string `json:"name"`
	}
	var b bytes.Buffer
	if err := printRows(&b, false, nil, []string{"NAME", "STATE"}, [][]string{{"a", "active"}, {"longer", "x"}}); err != nil {
		t.Fatal(err)
	}
	if want := "NAME    STATE\na       active\nlonger  x\n"; b.String() != want {
		t.Errorf("table:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	if err := printRows(&b, true, []row{{"a"}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if want := "[\n  {\n    \"name\": \"a\"\n  }\n]\n"; b.String() != want {
		t.Errorf("json: %q", b.String())
	}
}
