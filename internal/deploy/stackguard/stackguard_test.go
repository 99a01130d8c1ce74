package stackguard

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func eip(allowlisted bool, props map[string]any) Resource {
	if props == nil {
		props = map[string]any{"Domain": "vpc"}
	}
	if allowlisted {
		props["Tags"] = []any{map[string]any{"Key": AllowlistedTag, "Value": "true"}}
	}
	return Resource{Type: "AWS::EC2::EIP", Properties: props, DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain"}
}

func tmpl(rs map[string]Resource) *Template { return &Template{Resources: rs} }

func TestDestructiveChangesAreFound(t *testing.T) {
	base := tmpl(map[string]Resource{
		"Address1": eip(true, nil),
		"Bucket":   {Type: "AWS::S3::Bucket", Properties: map[string]any{"BucketName": "a"}, DeletionPolicy: "Retain"},
		"Fn":       {Type: "AWS::Lambda::Function", Properties: map[string]any{"Runtime": "provided.al2023"}},
		"NatEip":   eip(false, nil),
	})
	cases := []struct {
		name string
		head *Template
		want []string // substrings, one per expected finding
	}{
		{"identical", base, nil},
		{"stack removed", nil, []string{"Address1 (AWS::EC2::EIP): the stack is removed", "Bucket (AWS::S3::Bucket): the stack is removed", "NatEip (AWS::EC2::EIP): the stack is removed"}},
		{"address renamed", tmpl(map[string]Resource{"AddressOne": eip(true, nil), "Bucket": base.Resources["Bucket"], "NatEip": eip(false, nil)}),
			[]string{"Address1 (AWS::EC2::EIP): removed or its logical ID changed"}},
		{"address pool changes", tmpl(map[string]Resource{"Address1": eip(true, map[string]any{"Domain": "vpc", "PublicIpv4Pool": "ipv4pool-ec2-1"}), "Bucket": base.Resources["Bucket"], "NatEip": eip(false, nil)}),
			[]string{"property PublicIpv4Pool changes; this type may not change except its tags"}},
		{"retain dropped", tmpl(map[string]Resource{"Address1": {Type: "AWS::EC2::EIP", Properties: eip(true, nil).Properties}, "Bucket": base.Resources["Bucket"], "NatEip": eip(false, nil)}),
			[]string{`DeletionPolicy weakens from "Retain" to ""`, `UpdateReplacePolicy weakens from "Retain" to ""`}},
		{"bucket renamed", tmpl(map[string]Resource{"Address1": eip(true, nil), "Bucket": {Type: "AWS::S3::Bucket", Properties: map[string]any{"BucketName": "b"}, DeletionPolicy: "Retain"}, "NatEip": eip(false, nil)}),
			[]string{"property BucketName changes, which requires replacement"}},
		{"type changed", tmpl(map[string]Resource{"Address1": {Type: "AWS::EC2::EIPAssociation"}, "Bucket": base.Resources["Bucket"], "NatEip": eip(false, nil)}),
			[]string{"type changes to AWS::EC2::EIPAssociation"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := CompareTemplates("s", base, tc.head)
			if len(got) != len(tc.want) {
				t.Fatalf("%d findings %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i].String(), w) {
					t.Errorf("finding %q lacks %q", got[i], w)
				}
			}
		})
	}
}

func TestHarmlessChangesPass(t *testing.T) {
	base := tmpl(map[string]Resource{
		"Address1": eip(true, nil),
		"Fn":       {Type: "AWS::Lambda::Function", Properties: map[string]any{"MemorySize": 128.0}},
		"NatEip":   eip(false, nil),
	})
	retagged := eip(true, nil)
	retagged.Properties["Tags"] = append(retagged.Properties["Tags"].([]any), map[string]any{"Key": "owner", "Value": "ops"})
	head := tmpl(map[string]Resource{
		"Address1": retagged,                                                                         // tags may change
		"Address2": eip(true, nil),                                                                   // growing the set
		"Fn2":      {Type: "AWS::Lambda::Function", Properties: map[string]any{"MemorySize": 256.0}}, // stateless churn
		"NatEip":   eip(false, map[string]any{"Domain": "vpc", "Tags": []any{}}),                     // NAT address retagged
	})
	if got := CompareTemplates("s", base, head); len(got) != 0 {
		t.Errorf("harmless changes flagged: %v", got)
	}
}

func TestRemovedStackReleasesItsStatefulResources(t *testing.T) {
	base := map[string]*Template{
		"net":  tmpl(map[string]Resource{"NatEip1": eip(false, nil), "Fn": {Type: "AWS::Lambda::Function"}}),
		"kept": tmpl(map[string]Resource{"Address1": eip(true, nil)}),
	}
	head := map[string]*Template{"kept": base["kept"]}
	got := CompareAssemblies(base, head)
	if len(got) != 1 || got[0].Stack != "net" || got[0].LogicalID != "NatEip1" || !strings.Contains(got[0].Problem, "stack is removed") {
		t.Errorf("got %v, want only net/NatEip1 (the Lambda is stateless)", got)
	}
}

func TestReadAssemblyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadAssembly(dir); err == nil || !strings.Contains(err.Error(), "synthesize first") {
		t.Errorf("empty dir: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x.template.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAssembly(dir); err == nil || !strings.Contains(err.Error(), "x.template.json") {
		t.Errorf("bad JSON error should name the file: %v", err)
	}
}

func TestConditionOnAStatefulResourceIsFlagged(t *testing.T) {
	base := tmpl(map[string]Resource{"Address1": eip(true, nil)})
	gated := eip(true, nil)
	gated.Condition = "Never"
	got := CompareTemplates("s", base, tmpl(map[string]Resource{"Address1": gated}))
	if len(got) != 1 || !strings.Contains(got[0].Problem, `Condition changes from "" to "Never"`) {
		t.Errorf("got %v", got)
	}
}

// writeAssembly writes a cloud assembly with a manifest: stack artifact ID →
// environment, stack name and template.
func writeAssembly(t *testing.T, stacks map[string][3]string) string {
	t.Helper()
	dir := t.TempDir()
	artifacts := map[string]any{}
	for id, s := range stacks {
		file := id + ".template.json"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(s[2]), 0o600); err != nil {
			t.Fatal(err)
		}
		props := map[string]any{"templateFile": file}
		if s[1] != "" {
			props["stackName"] = s[1]
		}
		artifacts[id] = map[string]any{"type": "aws:cloudformation:stack", "environment": s[0], "properties": props}
		artifacts[id+".assets"] = map[string]any{"type": "cdk:asset-manifest"}
	}
	data, _ := json.Marshal(map[string]any{"version": "48.0.0", "artifacts": artifacts})
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

const addressesTemplate = `{"Resources":{"Address1":{"Type":"AWS::EC2::EIP","DeletionPolicy":"Retain","Properties":{"Domain":"vpc","Tags":[{"Key":"agentgate:allowlisted","Value":"true"}]}}}}`

// A fleet moved to another region or account (or a renamed stack) keeps its
// artifact ID and a byte-identical template, but deploys a new stack with
// new addresses: the guard reads where each stack deploys.
func TestMovingAStackReleasesItsAddresses(t *testing.T) {
	base, err := ReadAssembly(writeAssembly(t, map[string][3]string{"fleet-addresses": {"aws://111111111111/eu-west-1", "", addressesTemplate}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := base["fleet-addresses"].Deployed; got != "aws://111111111111/eu-west-1 fleet-addresses" {
		t.Errorf("Deployed %q: the stack name defaults to the artifact ID", got)
	}
	for name, head := range map[string][3]string{
		"region":     {"aws://111111111111/eu-central-1", "", addressesTemplate},
		"account":    {"aws://222222222222/eu-west-1", "", addressesTemplate},
		"stack name": {"aws://111111111111/eu-west-1", "fleet-addresses-v2", addressesTemplate},
	} {
		h, err := ReadAssembly(writeAssembly(t, map[string][3]string{"fleet-addresses": head}))
		if err != nil {
			t.Fatal(err)
		}
		got := CompareAssemblies(base, h)
		if len(got) != 1 || got[0].LogicalID != "Address1" || !strings.Contains(got[0].Problem, "the stack moves from aws://111111111111/eu-west-1 fleet-addresses to ") {
			t.Errorf("%s: got %v", name, got)
		}
	}
	same, err := ReadAssembly(writeAssembly(t, map[string][3]string{"fleet-addresses": {"aws://111111111111/eu-west-1", "fleet-addresses", addressesTemplate}}))
	if err != nil {
		t.Fatal(err)
	}
	if got := CompareAssemblies(base, same); len(got) != 0 {
		t.Errorf("an explicit stack name equal to the default moved nothing: %v", got)
	}
}

func TestReadAssemblyRefusesNestedAssemblies(t *testing.T) {
	dir := writeAssembly(t, map[string][3]string{"s": {"aws://1/r", "", addressesTemplate}})
	data, _ := os.ReadFile(filepath.Join(dir, "manifest.json"))
	data = []byte(strings.Replace(string(data), `"artifacts":{`, `"artifacts":{"assembly-Prod":{"type":"cdk:cloud-assembly","properties":{"directoryName":"assembly-Prod"}},`, 1))
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAssembly(dir); err == nil || !strings.Contains(err.Error(), `nested cloud assembly "assembly-Prod"`) {
		t.Errorf("err %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAssembly(dir); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("bad manifest: %v", err)
	}
}
