package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPRDiffScript runs scripts/pr-diff.sh (what `make pr-diff` and the
// pull-request workflow run) in a throwaway clone of this repository's
// HEAD, with real synths, real `cdk diff` and real commits:
//
//   - BASE=HEAD on a clean tree reports no differences at all (asset
//     hashes are stable across checkouts);
//   - a commit renaming the static-address construct and changing a
//     Lambda's code fails the guard, names every released address, and
//     shows the Lambda's new code as a harmless modification;
//   - the same change passes when it adds overrides for the four
//     addresses, and fails when the overrides were already on the base;
//   - a base that is not a commit is an error.
//
// It synthesizes three times: the clean tree as head and as base (both by
// the script, the base into PR_DIFF_CACHE), and the changed tree once. The
// other runs take those assemblies through PR_DIFF_CACHE, PR_DIFF_HEAD_OUT
// and PR_DIFF_BASE_OUT: the app does not read
// stacks/stackguard-overrides.json (only the guard does), so commits that
// differ only in that file synthesize the same. Every guard rule is
// covered on fixtures by this package's other tests and by
// internal/deploy/stackguard.
func TestPRDiffScript(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes the app three times")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules/.bin/cdk")); err != nil {
		t.Fatalf("the pinned CDK CLI is missing (%v): run `make setup`", err)
	}
	clone := filepath.Join(t.TempDir(), "repo")
	git := func(t *testing.T, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=pr-diff test", "GIT_AUTHOR_EMAIL=test@example.invalid",
			"GIT_COMMITTER_NAME=pr-diff test", "GIT_COMMITTER_EMAIL=test@example.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "clone", "--quiet", "--shared", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if err := os.Symlink(filepath.Join(root, "node_modules"), filepath.Join(clone, "node_modules")); err != nil {
		t.Fatal(err)
	}
	edit := func(t *testing.T, file, old, new string) {
		t.Helper()
		p := filepath.Join(clone, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s no longer contains %q: update this test", file, old)
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Base synths are cached across runs (the head never is, so BASE=HEAD
	// still compares two independent synths).
	cache := t.TempDir()
	// prDiff runs the script against base with env added; it returns the
	// exit status, the report and the script's own messages.
	prDiff := func(t *testing.T, base string, env ...string) (int, string, string) {
		t.Helper()
		report := filepath.Join(t.TempDir(), "pr-diff.md")
		cmd := exec.Command("scripts/pr-diff.sh", base, report)
		cmd.Dir = clone
		cmd.Env = append(append(os.Environ(), "PR_DIFF_CACHE="+cache), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		md, rerr := os.ReadFile(report)
		if rerr != nil {
			t.Fatalf("no report (exit %d): %v\n%s", code, rerr, out)
		}
		t.Logf("pr-diff %s: exit %d", base, code)
		return code, string(md), string(out)
	}
	mustContain := func(t *testing.T, md string, wants ...string) {
		t.Helper()
		for _, w := range wants {
			if !strings.Contains(md, w) {
				t.Errorf("report lacks %q:\n%s", w, md)
			}
		}
	}
	// The clone runs this working tree's guard and script, not only what
	// is committed, so the test checks the code under test.
	tooling := git(t, "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", ".gitignore", "scripts", "cmd/stackguard", "internal/deploy/stackguard")
	for _, f := range strings.Fields(tooling) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(clone, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(clone, f), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if git(t, "status", "--porcelain") != "" {
		git(t, "add", "-A")
		git(t, "commit", "--quiet", "-m", "the working tree's pull-request tooling")
	}
	original := git(t, "rev-parse", "HEAD")

	// originalOut is the clean tree's assembly, which the first run leaves
	// in the cache; changedOut is the changed tree's.
	var originalOut, changedOut string
	changedDir := t.TempDir() // outlives the subtest that fills it

	t.Run("unchanged", func(t *testing.T) {
		if status := git(t, "status", "--porcelain"); status != "" {
			t.Fatalf("the clone is not clean:\n%s", status)
		}
		code, md, _ := prDiff(t, "HEAD")
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		mustContain(t, md, "✅", "No resource is replaced or deleted.", "**No differences** in any of the")
		if strings.Contains(md, "<details>") {
			t.Errorf("an unchanged tree shows a stack diff:\n%s", md)
		}
		entries, err := os.ReadDir(cache)
		if err != nil || len(entries) != 1 {
			t.Fatalf("the cache holds %v (%v), want the base's synth alone", entries, err)
		}
		originalOut = filepath.Join(cache, entries[0].Name())
	})

	// change renames the static-address construct, which gives every
	// address a new logical ID, and changes the config publisher's code.
	change := func(t *testing.T) {
		t.Helper()
		edit(t, "constructs/staticips/staticips.go", `fmt.Sprintf("Address%d", i)`, `fmt.Sprintf("StaticAddress%d", i)`)
		edit(t, "lambda/configpublisher/main.go", `lambdakit.NewMetrics("agentgate/ControlPlane", "configpublisher")`, `lambdakit.NewMetrics("agentgate/ControlPlane", "configpublisher-v2")`)
		git(t, "commit", "--quiet", "-am", "rename the static address construct; change the config publisher's code")
	}
	// Both control stacks show the Lambda's new code, and nothing but the
	// four addresses of each fleet is replaced or deleted.
	lambdaShown := func(t *testing.T, md string) {
		t.Helper()
		mustContain(t, md, "### Replacements and deletions (4)",
			"<b>agentgate-euw1-control</b>: 1 modified", "<b>agentgate-use1-control</b>: 1 modified",
			"ControlPlane/ConfigPublisher/Resource", ".S3Key:")
	}

	t.Run("address construct renamed", func(t *testing.T) {
		change(t)
		changedOut = filepath.Join(changedDir, "cdk.out")
		// As the script synthesizes: offline, the pinned CLI.
		cmd := exec.Command(filepath.Join(root, "node_modules/.bin/cdk"), "synth", "--quiet", "-o", changedOut)
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "PATH="+filepath.Join(root, "node_modules/.bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
			"AWS_EC2_METADATA_DISABLED=true", "CDK_DISABLE_VERSION_CHECK=true", "CDK_DISABLE_CLI_TELEMETRY=true",
			"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			changedOut = ""
			t.Fatalf("synth of the changed tree: %v\n%s", err, out)
		}
		code, md, out := prDiff(t, original, "PR_DIFF_HEAD_OUT="+changedOut)
		if code != 1 {
			t.Errorf("exit %d, want 1 (the guard must fail)", code)
		}
		if !strings.Contains(out, "cached synth") {
			t.Errorf("the base was not taken from the cache:\n%s", out)
		}
		mustContain(t, md, "❌ **stackguard blocks this change: 4 destructive changes",
			"`agentgate-euw1-addresses/AddressesAddress12EAACCE8` | AWS::EC2::EIP | removed or its logical ID changed",
			"`agentgate-euw1-addresses/AddressesAddress27D08E6FC`",
			"| agentgate-euw1-addresses | Addresses/Address1 | `AddressesAddress12EAACCE8` | AWS::EC2::EIP | removed (orphan) |")
		lambdaShown(t, md)
		// The verdict comes before any stack's diff.
		if strings.Index(md, "### Blocking") > strings.Index(md, "<details>") {
			t.Error("blocking changes must come first")
		}
	})

	overrides := `{"overrides": [
  {"resource": "agentgate-euw1-addresses/AddressesAddress12EAACCE8", "reason": "test: every customer has allowlisted the new addresses"},
  {"resource": "agentgate-euw1-addresses/AddressesAddress27D08E6FC", "reason": "test: every customer has allowlisted the new addresses"},
  {"resource": "agentgate-use1-addresses/AddressesAddress12EAACCE8", "reason": "test: every customer has allowlisted the new addresses"},
  {"resource": "agentgate-use1-addresses/AddressesAddress27D08E6FC", "reason": "test: every customer has allowlisted the new addresses"}
]}`
	writeOverrides := func(t *testing.T) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(clone, "stacks/stackguard-overrides.json"), []byte(overrides), 0o644); err != nil {
			t.Fatal(err)
		}
		git(t, "add", "stacks/stackguard-overrides.json")
	}

	t.Run("rename with overrides added by the change", func(t *testing.T) {
		if changedOut == "" {
			t.Skip("no synth of the changed tree")
		}
		writeOverrides(t)
		git(t, "commit", "--quiet", "-m", "override: the addresses are replaced on purpose")
		code, md, _ := prDiff(t, original, "PR_DIFF_HEAD_OUT="+changedOut)
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		mustContain(t, md, "✅", "### Allowed by this change's overrides",
			"| `agentgate-use1-addresses/AddressesAddress27D08E6FC` | AWS::EC2::EIP | removed or its logical ID changed; CloudFormation would delete or orphan it and create a new one | test: every customer")
		lambdaShown(t, md)
	})

	t.Run("overrides already on the base excuse nothing", func(t *testing.T) {
		if changedOut == "" || originalOut == "" {
			t.Skip("no synth of the clean or the changed tree")
		}
		git(t, "checkout", "--quiet", "--detach", original)
		writeOverrides(t)
		git(t, "commit", "--quiet", "-m", "overrides merged with an earlier change")
		base := git(t, "rev-parse", "HEAD")
		change(t)
		code, md, _ := prDiff(t, base, "PR_DIFF_HEAD_OUT="+changedOut, "PR_DIFF_BASE_OUT="+originalOut)
		if code != 1 {
			t.Errorf("exit %d, want 1: an override from the base must not apply again", code)
		}
		mustContain(t, md, "❌ **stackguard blocks this change: 4 destructive changes")
		if strings.Contains(md, "### Allowed") {
			t.Errorf("an override from the base was applied:\n%s", md)
		}
	})

	t.Run("not a revision", func(t *testing.T) {
		cmd := exec.Command("scripts/pr-diff.sh", "no-such-revision", filepath.Join(t.TempDir(), "r.md"))
		cmd.Dir = clone
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "no-such-revision is not a commit") {
			t.Errorf("err %v, want exit 2 and a clear message:\n%s", err, out)
		}
	})

	t.Run("not a cloud assembly", func(t *testing.T) {
		cmd := exec.Command("scripts/pr-diff.sh", original, filepath.Join(t.TempDir(), "r.md"))
		cmd.Dir = clone
		cmd.Env = append(os.Environ(), "PR_DIFF_HEAD_OUT="+t.TempDir())
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "is not a cloud assembly") {
			t.Errorf("err %v, want exit 2 and a clear message:\n%s", err, out)
		}
	})
}
