package stackguard

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The testdata are outputs of the pinned CDK CLI's
// `cdk diff --exclusively --template BASE STACK` run on this app's
// synthesized stacks, with BASE a copy of the stack's template edited to
// simulate the change (hence IDs like AddressesIp1XXXX and deadbeef.zip).
// inline-code-then-replace.txt joins two such outputs: a change to an
// inline Lambda's multi-line code, then the replacements of
// bucket-replaced.txt.
func readDiff(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "cdkdiff", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParseCdkDiff(t *testing.T) {
	cases := []struct {
		file   string
		noDiff bool
		want   []Change
	}{
		{"no-differences.txt", true, nil},
		{"eip-renamed.txt", false, []Change{
			{Op: "-", Type: "AWS::EC2::EIP", Path: "Addresses/Address1", LogicalID: "AddressesIp1XXXX", Impact: "orphan"},
			{Op: "+", Type: "AWS::EC2::EIP", Path: "Addresses/Address1", LogicalID: "AddressesAddress12EAACCE8"},
		}},
		{"lambda-code.txt", false, []Change{
			{Op: "~", Type: "AWS::Lambda::Function", Path: "ControlPlane/ConfigPublisher/Resource", LogicalID: "ControlPlaneConfigPublisher56564D3B"},
		}},
		{"bucket-replaced.txt", false, []Change{
			{Op: "~", Type: "AWS::S3::Bucket", Path: "ControlPlane/AccessLogs", LogicalID: "ControlPlaneAccessLogsF316084C", Impact: "replace"},
			{Op: "~", Type: "AWS::S3::BucketPolicy", Path: "ControlPlane/AccessLogs/Policy", LogicalID: "ControlPlaneAccessLogsPolicy99E4FAC5", Impact: "replace"},
			{Op: "~", Type: "AWS::SQS::Queue", Path: "ControlPlane/ConfigQueueDeadLetters", LogicalID: "ControlPlaneConfigQueueDeadLetters9C6BCC84", Impact: "replace"},
		}},
		// The raw lines of a multi-line string value (blank ones too) do
		// not end the Resources section.
		{"inline-code-then-replace.txt", false, []Change{
			{Op: "~", Type: "AWS::Lambda::Function", Path: "BucketNotificationsHandler050a0587b7544547bf325f094a3db834", LogicalID: "BucketNotificationsHandler050a0587b7544547bf325f094a3db8347ECC3691"},
			{Op: "~", Type: "AWS::S3::Bucket", Path: "ControlPlane/AccessLogs", LogicalID: "ControlPlaneAccessLogsF316084C", Impact: "replace"},
			{Op: "~", Type: "AWS::S3::BucketPolicy", Path: "ControlPlane/AccessLogs/Policy", LogicalID: "ControlPlaneAccessLogsPolicy99E4FAC5", Impact: "replace"},
			{Op: "~", Type: "AWS::SQS::Queue", Path: "ControlPlane/ConfigQueueDeadLetters", LogicalID: "ControlPlaneConfigQueueDeadLetters9C6BCC84", Impact: "replace"},
		}},
		// Outputs and parameters are not resources, even with "[+]" lines.
		{"new-stack.txt", false, []Change{
			{Op: "+", Type: "AWS::EC2::EIP", Path: "Addresses/Address1", LogicalID: "AddressesAddress12EAACCE8"},
			{Op: "+", Type: "AWS::EC2::EIP", Path: "Addresses/Address2", LogicalID: "AddressesAddress27D08E6FC"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			d := ParseCdkDiff("s", readDiff(t, tc.file))
			if d.NoDifferences != tc.noDiff {
				t.Errorf("NoDifferences = %v, want %v", d.NoDifferences, tc.noDiff)
			}
			if !reflect.DeepEqual(d.Changes, tc.want) {
				t.Errorf("changes:\n got %+v\nwant %+v", d.Changes, tc.want)
			}
		})
	}
}

func TestParseCdkDiffEdgeCases(t *testing.T) {
	colour := "Resources\n\x1b[31m[-] AWS::S3::Bucket Logs LogsABC destroy\x1b[39m\n"
	if d := ParseCdkDiff("s", colour); len(d.Changes) != 1 || d.Changes[0].Impact != "destroy" || strings.Contains(d.Text, "\x1b") {
		t.Errorf("colour codes: %+v", d)
	}
	spaced := "Resources\n[~] AWS::S3::Bucket My Bucket/Resource MyBucketABC may be replaced\n"
	want := Change{Op: "~", Type: "AWS::S3::Bucket", Path: "My Bucket/Resource", LogicalID: "MyBucketABC", Impact: "may be replaced"}
	if d := ParseCdkDiff("s", spaced); len(d.Changes) != 1 || d.Changes[0] != want {
		t.Errorf("path with a space: %+v", d.Changes)
	}
	// The CLI's hint that a removal may be a move between stacks.
	moved := "Resources\n[-] AWS::EC2::EIP Addresses/Address1 AddressesAddress1ABC orphan (OR move to other.AddressesAddress1ABC via refactoring)\n"
	want = Change{Op: "-", Type: "AWS::EC2::EIP", Path: "Addresses/Address1", LogicalID: "AddressesAddress1ABC", Impact: "orphan"}
	if d := ParseCdkDiff("s", moved); len(d.Changes) != 1 || d.Changes[0] != want {
		t.Errorf("move hint: %+v", d.Changes)
	}
	// Only metadata differs: the CLI still says there were no differences.
	if d := ParseCdkDiff("s", "Stack s\nThere were no differences (CDK metadata changes were hidden, run cdk diff --strict to show)\n"); !d.NoDifferences {
		t.Error("metadata-only diff counted as a change")
	}
	// An imported resource is not destructive.
	if d := ParseCdkDiff("s", "Resources\n[←] AWS::S3::Bucket Logs LogsABC\n"); len(d.Changes) != 1 || d.Changes[0].Destructive() {
		t.Errorf("import: %+v", d.Changes)
	}
	// Lines outside the Resources section, malformed lines and property
	// lines are not resource changes.
	noise := "Outputs\n[+] Output A A: {}\nResources\n[?] AWS::X::Y P Id\n[+] NotAType P Id\n └─ [~] Code\n[+]\n"
	if d := ParseCdkDiff("s", noise); len(d.Changes) != 0 {
		t.Errorf("noise parsed as changes: %+v", d.Changes)
	}
}

func FuzzParseCdkDiff(f *testing.F) {
	for _, name := range []string{"no-differences.txt", "eip-renamed.txt", "lambda-code.txt", "bucket-replaced.txt", "new-stack.txt", "inline-code-then-replace.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", "cdkdiff", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, out string) {
		d := ParseCdkDiff("s", out)
		for _, c := range d.Changes {
			if c.LogicalID == "" || strings.ContainsAny(c.LogicalID, " \n") || !strings.Contains(c.Type, "::") {
				t.Fatalf("bad change %+v from %q", c, out)
			}
		}
	})
}

func TestFindingsFromDiffUsesCdkReplacementVerdicts(t *testing.T) {
	base := tmpl(map[string]Resource{
		"Logs":   {Type: "AWS::S3::Bucket", DeletionPolicy: "Retain"},
		"Policy": {Type: "AWS::S3::BucketPolicy"},
		"Zone":   {Type: "AWS::Route53::HostedZone"},
	})
	d := StackDiff{Stack: "s", Changes: []Change{
		{Op: "~", Type: "AWS::S3::Bucket", LogicalID: "Logs", Impact: "replace"},
		{Op: "~", Type: "AWS::S3::BucketPolicy", LogicalID: "Policy", Impact: "replace"}, // stateless
		{Op: "~", Type: "AWS::Route53::HostedZone", LogicalID: "Zone", Impact: "may be replaced"},
		{Op: "+", Type: "AWS::S3::Bucket", LogicalID: "New"},
	}}
	got := FindingsFromDiff(d, base, nil)
	if len(got) != 2 || got[0].LogicalID != "Logs" || got[1].LogicalID != "Zone" || !strings.Contains(got[1].Problem, "may be replaced") {
		t.Errorf("got %v, want Logs and Zone", got)
	}
	// What the template comparison already found is not repeated.
	if again := FindingsFromDiff(d, base, got[:1]); len(again) != 1 || again[0].LogicalID != "Zone" {
		t.Errorf("repeated findings: %v", again)
	}
	if FindingsFromDiff(d, nil, nil) != nil {
		t.Error("a new stack has nothing to lose")
	}
}
