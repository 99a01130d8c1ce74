package stackguard

import (
	"fmt"
	"strings"
	"testing"
)

func render(t *testing.T, r Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReportPutsBlockingChangesFirst(t *testing.T) {
	r := Report{
		BaseRef: "origin/main",
		Diffs: []StackDiff{
			ParseCdkDiff("agentgate-euw1-control", readDiff(t, "lambda-code.txt")),
			ParseCdkDiff("agentgate-euw1-addresses", readDiff(t, "eip-renamed.txt")),
			ParseCdkDiff("agentgate-euw1-edge", readDiff(t, "no-differences.txt")),
		},
		RemovedStacks: []string{"agentgate-old-edge"},
		Blocking:      []Finding{{"agentgate-euw1-addresses", "AddressesIp1XXXX", "AWS::EC2::EIP", "removed | renamed"}},
	}
	md := render(t, r)
	if !strings.HasPrefix(md, ReportMarker+"\n") {
		t.Error("the report must start with its marker")
	}
	order := []string{
		"❌ **stackguard blocks this change: 1 destructive change to stateful resources.**",
		"| `agentgate-euw1-addresses/AddressesIp1XXXX` | AWS::EC2::EIP | removed \\| renamed |",
		OverridesFile,
		"### Replacements and deletions (2)",
		"| agentgate-old-edge | (whole stack) | | | stack removed |",
		"| agentgate-euw1-addresses | Addresses/Address1 | `AddressesIp1XXXX` | AWS::EC2::EIP | removed (orphan) |",
		"### Stacks: 2 changed, 1 unchanged",
		"<b>agentgate-euw1-addresses</b>: 1 removed, 1 added",
		"<b>agentgate-euw1-control</b>: 1 modified",
		".S3Key:",
		"Unchanged: agentgate-euw1-edge.",
	}
	at := 0
	for _, want := range order {
		i := strings.Index(md[at:], want)
		if i < 0 {
			t.Fatalf("report lacks %q after offset %d:\n%s", want, at, md)
		}
		at += i + len(want)
	}
}

func TestReportWithoutDifferences(t *testing.T) {
	md := render(t, Report{BaseRef: "HEAD", Diffs: []StackDiff{
		ParseCdkDiff("a", readDiff(t, "no-differences.txt")),
		ParseCdkDiff("b", readDiff(t, "no-differences.txt")),
	}})
	for _, want := range []string{"✅ **stackguard: no destructive change", "No resource is replaced or deleted.", "**No differences** in any of the 2 stacks."} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "<details>") {
		t.Error("an unchanged stack has no diff section")
	}
}

func TestReportShowsOverridesAndFitsOneComment(t *testing.T) {
	huge := "Stack big\nResources\n[~] AWS::Lambda::Function F F\n" + strings.Repeat("x", 3*maxStackChars) + "\n"
	var diffs []StackDiff
	for _, s := range []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"} {
		diffs = append(diffs, ParseCdkDiff(s, huge))
	}
	md := render(t, Report{
		Diffs:   diffs,
		Allowed: []Overridden{{Finding{"net", "NatEip1", "AWS::EC2::EIP", "removed"}, reason}},
		Unused:  []Override{{"net/Typo", reason}},
	})
	if len(md) > 65536 {
		t.Errorf("report is %d characters; a GitHub comment holds 65,536", len(md))
	}
	for _, want := range []string{"✅", "| `net/NatEip1` | AWS::EC2::EIP | removed | " + reason + " |", "- `net/Typo`: ", "(truncated;", "(diff omitted to fit one comment"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestFenceOutlastsBackticksInTheDiff(t *testing.T) {
	if got := fenceFor("a ```` b"); got != "`````" {
		t.Errorf("fence %q", got)
	}
	if got := fenceFor("plain"); got != "```" {
		t.Errorf("fence %q", got)
	}
}

func TestHugeTablesStillFitOneComment(t *testing.T) {
	var r Report
	for i := range 500 {
		id := fmt.Sprintf("Bucket%03d", i)
		r.Blocking = append(r.Blocking, Finding{"s", id, "AWS::S3::Bucket", strings.Repeat("removed ", 30)})
		r.Diffs = append(r.Diffs, StackDiff{Stack: "s" + id, Changes: []Change{{Op: "-", Type: "AWS::S3::Bucket", Path: strings.Repeat("p/", 40), LogicalID: id, Impact: "destroy"}}})
	}
	md := render(t, r)
	if len(md) > 65536 {
		t.Errorf("report is %d characters; a GitHub comment holds 65,536", len(md))
	}
	for _, want := range []string{"… and 300 more", "❌ **stackguard blocks this change: 500 destructive changes"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
