package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write creates files under dir from name → content.
func write(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	twoAddresses = `{"Resources":{
	  "Address1":{"Type":"AWS::EC2::EIP","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain","Properties":{"Domain":"vpc","Tags":[{"Key":"agentgate:allowlisted","Value":"true"}]}},
	  "Address2":{"Type":"AWS::EC2::EIP","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain","Properties":{"Domain":"vpc","Tags":[{"Key":"agentgate:allowlisted","Value":"true"}]}}}}`
	oneAddress = `{"Resources":{
	  "Address1":{"Type":"AWS::EC2::EIP","DeletionPolicy":"Retain","UpdateReplacePolicy":"Retain","Properties":{"Domain":"vpc","Tags":[{"Key":"agentgate:allowlisted","Value":"true"}]}}}}`
	retire = `{"overrides":[{"resource":"fleet-addresses/Address2","reason":"address 2 retired: every customer moved to address 1 (OPS-41)"}]}`
)

type result struct {
	code           int
	stdout, stderr string
	report         string
}

func runGuard(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb strings.Builder
	report := filepath.Join(t.TempDir(), "report.md")
	code := run(append([]string{"-report", report}, args...), &out, &errb)
	md, _ := os.ReadFile(report)
	return result{code, out.String(), errb.String(), string(md)}
}

func TestRemovingAnAddressFailsUnlessThisChangeOverridesIt(t *testing.T) {
	base := write(t, t.TempDir(), map[string]string{"fleet-addresses.template.json": twoAddresses})
	head := write(t, t.TempDir(), map[string]string{"fleet-addresses.template.json": oneAddress})
	dir := t.TempDir()
	none := filepath.Join(dir, "none.json")
	withRetire := write(t, dir, map[string]string{"retire.json": retire})
	withRetire = filepath.Join(withRetire, "retire.json")

	r := runGuard(t, "-overrides", none, base, head)
	if r.code != 1 || !strings.Contains(r.stdout, "fleet-addresses/Address2 (AWS::EC2::EIP): removed") || !strings.Contains(r.report, "❌") {
		t.Errorf("no override: code %d\n%s\n%s", r.code, r.stdout, r.report)
	}

	r = runGuard(t, "-base-overrides", none, "-overrides", withRetire, base, head)
	if r.code != 0 || !strings.Contains(r.stdout, "allowed by override: fleet-addresses/Address2") || !strings.Contains(r.report, "OPS-41") {
		t.Errorf("override added by the change: code %d\n%s\n%s", r.code, r.stdout, r.report)
	}

	// The same override already on the base branch excuses nothing now.
	r = runGuard(t, "-base-overrides", withRetire, "-overrides", withRetire, base, head)
	if r.code != 1 {
		t.Errorf("an override merged earlier must not apply again: code %d\n%s", r.code, r.stdout)
	}
}

func TestDiffsFeedTheReportAndTheGuard(t *testing.T) {
	bucket := `{"Resources":{"Logs":{"Type":"AWS::S3::Bucket","DeletionPolicy":"Retain","Properties":{}}}}`
	base := write(t, t.TempDir(), map[string]string{"s.template.json": bucket})
	head := write(t, t.TempDir(), map[string]string{"s.template.json": bucket})
	// cdk diff knows a replacement the template comparison cannot see
	// (e.g. a property missing from the guard's table).
	diffs := write(t, t.TempDir(), map[string]string{"s.diff": "Stack s\nResources\n[~] AWS::S3::Bucket Logs Logs replace\n └─ [~] Something (requires replacement)\n"})
	r := runGuard(t, "-diffs", diffs, base, head)
	if r.code != 1 || !strings.Contains(r.stdout, "s/Logs (AWS::S3::Bucket): cdk diff predicts: replace") {
		t.Errorf("code %d\n%s", r.code, r.stdout)
	}
	// A stack without its diff file is an error, not a silent pass.
	r = runGuard(t, "-diffs", t.TempDir(), base, head)
	if r.code != 2 || !strings.Contains(r.stderr, "s.diff") {
		t.Errorf("missing diff: code %d %s", r.code, r.stderr)
	}
}

func TestUsageAndInputErrors(t *testing.T) {
	good := write(t, t.TempDir(), map[string]string{"s.template.json": oneAddress})
	badOverrides := filepath.Join(write(t, t.TempDir(), map[string]string{"o.json": `{"overrides":[{"resource":"*","reason":"x"}]}`}), "o.json")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "usage: stackguard"},
		{"one argument", []string{good}, "usage: stackguard"},
		{"unknown flag", []string{"-allow", "x", good, good}, "flag provided but not defined: -allow"},
		{"empty head", []string{good, t.TempDir()}, "head: "},
		{"missing base", []string{filepath.Join(t.TempDir(), "nope"), good}, "base: "},
		{"bad overrides", []string{"-overrides", badOverrides, good, good}, `overrides[0].resource: "*"`},
		{"bad base overrides", []string{"-base-overrides", badOverrides, good, good}, "base overrides:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("code %d, stderr %q; want 2 and %q", code, errb.String(), tc.want)
			}
		})
	}
	// A base without an app ("-") has nothing to protect.
	r := runGuard(t, "-", good)
	if r.code != 0 || !strings.Contains(r.report, "✅") {
		t.Errorf("new app: code %d %s", r.code, r.stderr)
	}
}
