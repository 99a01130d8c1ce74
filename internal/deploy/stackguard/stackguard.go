// Package stackguard compares two synthesized cloud assemblies (a pull
// request's base and head) and reports changes that would destroy or
// replace stateful resources — above all the static Elastic IPs customers
// allowlist. It reads only the templates, so it runs offline next to
// `cdk diff --template`, which shows the full diff for reviewers.
package stackguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Template is the part of a CloudFormation template the guard reads.
type Template struct {
	Resources map[string]Resource `json:"Resources"`
	// Deployed is where CloudFormation deploys the stack, from the cloud
	// assembly's manifest: "aws://ACCOUNT/REGION STACK_NAME" ("" when the
	// assembly has no manifest).
	Deployed string `json:"-"`
}

// Resource is one template resource.
type Resource struct {
	Type                string         `json:"Type"`
	Properties          map[string]any `json:"Properties"`
	DeletionPolicy      string         `json:"DeletionPolicy"`
	Condition           string         `json:"Condition"`
	UpdateReplacePolicy string         `json:"UpdateReplacePolicy"`
}

// replacingProperties lists, per stateful type, the properties whose change
// makes CloudFormation replace the resource ("Update requires: Replacement"
// in each type's reference; TestReplacingPropertiesMatchTheCdkSpec checks
// them against the resource spec the pinned CDK CLI ships). cdk diff's own
// replacement verdicts are used too (FindingsFromDiff), so a type's list
// only has to be right for the guard to work without cdk.
var replacingProperties = map[string][]string{
	"AWS::EC2::EIP":            {"Address", "Domain", "IpamPoolId", "NetworkBorderGroup", "TransferAddress"},
	"AWS::S3::Bucket":          {"BucketName", "BucketNamePrefix", "BucketNamespace", "ObjectLockEnabled"},
	"AWS::Logs::LogGroup":      {"LogGroupName"},
	"AWS::SQS::Queue":          {"FifoQueue", "QueueName"},
	"AWS::IoT::RoleAlias":      {"RoleAlias"},
	"AWS::IoT::Policy":         {"PolicyName"},
	"AWS::IoT::ThingType":      {"ThingTypeName", "ThingTypeProperties"},
	"AWS::KMS::Key":            {},
	"AWS::DynamoDB::Table":     {"ImportSourceSpecification", "KeySchema", "TableName"},
	"AWS::Route53::HostedZone": {"DelegationSetId", "Name"},
	// A weighted record is a static IP in the answer agents resolve.
	"AWS::Route53::RecordSet": {"HostedZoneId", "HostedZoneName", "Name"},
}

// AllowlistedTag marks the Elastic IPs customers allowlist (set by
// constructs/staticips). Such an address may not change at all except its
// tags: it is the contract with every customer firewall.
const AllowlistedTag = "agentgate:allowlisted"

func allowlisted(r Resource) bool {
	if r.Type != "AWS::EC2::EIP" {
		return false
	}
	tags, _ := r.Properties["Tags"].([]any)
	for _, t := range tags {
		if m, ok := t.(map[string]any); ok && m["Key"] == AllowlistedTag && m["Value"] == "true" {
			return true
		}
	}
	return false
}

// Finding is one destructive change.
type Finding struct {
	Stack, LogicalID, Type, Problem string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s/%s (%s): %s", f.Stack, f.LogicalID, f.Type, f.Problem)
}

func stateful(r Resource) bool {
	_, known := replacingProperties[r.Type]
	return known || r.DeletionPolicy == "Retain" || r.DeletionPolicy == "Snapshot" || r.DeletionPolicy == "RetainExceptOnCreate"
}

// CompareTemplates returns the destructive changes from base to head of one stack.
// A nil head means the stack is gone.
func CompareTemplates(stack string, base, head *Template) []Finding {
	var out []Finding
	ids := make([]string, 0, len(base.Resources))
	for id := range base.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b := base.Resources[id]
		if !stateful(b) {
			continue
		}
		add := func(problem string) { out = append(out, Finding{stack, id, b.Type, problem}) }
		if head == nil {
			add("the stack is removed; the resource would be deleted or orphaned")
			continue
		}
		h, ok := head.Resources[id]
		switch {
		case !ok:
			add("removed or its logical ID changed; CloudFormation would delete or orphan it and create a new one")
			continue
		case h.Type != b.Type:
			add(fmt.Sprintf("type changes to %s (replacement)", h.Type))
			continue
		}
		if b.Condition != h.Condition {
			add(fmt.Sprintf("Condition changes from %q to %q; CloudFormation deletes the resource when it is false", b.Condition, h.Condition))
		}
		if weaker(b.DeletionPolicy, h.DeletionPolicy) {
			add(fmt.Sprintf("DeletionPolicy weakens from %q to %q", b.DeletionPolicy, h.DeletionPolicy))
		}
		if weaker(b.UpdateReplacePolicy, h.UpdateReplacePolicy) {
			add(fmt.Sprintf("UpdateReplacePolicy weakens from %q to %q", b.UpdateReplacePolicy, h.UpdateReplacePolicy))
		}
		for _, p := range changedProperties(b.Properties, h.Properties) {
			if allowlisted(b) && p != "Tags" {
				add(fmt.Sprintf("property %s changes; this type may not change except its tags", p))
				continue
			}
			for _, rp := range replacingProperties[b.Type] {
				if p == rp {
					add(fmt.Sprintf("property %s changes, which requires replacement", p))
				}
			}
		}
	}
	return out
}

// policyRank orders deletion policies by how much of the data they keep.
var policyRank = map[string]int{"": 0, "Delete": 0, "Snapshot": 1, "RetainExceptOnCreate": 2, "Retain": 2}

func weaker(base, head string) bool { return policyRank[head] < policyRank[base] }

func changedProperties(base, head map[string]any) []string {
	keys := map[string]bool{}
	for k := range base {
		keys[k] = true
	}
	for k := range head {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if !reflect.DeepEqual(base[k], head[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// ReadAssembly loads every stack template of a cloud assembly directory,
// keyed by stack artifact ID, with where each stack deploys (manifest.json).
// Without a manifest (hand-made test assemblies) it reads every
// *.template.json, keyed by file name. A nested assembly (a CDK Stage) is
// an error: its stacks would otherwise go unguarded.
func ReadAssembly(dir string) (map[string]*Template, error) {
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return readTemplates(dir)
	}
	if err != nil {
		return nil, err
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type        string `json:"type"`
			Environment string `json:"environment"`
			Properties  struct {
				TemplateFile string `json:"templateFile"`
				StackName    string `json:"stackName"`
			} `json:"properties"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(data, &manifest); err != nil {
		return nil, fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	out := map[string]*Template{}
	for id, a := range manifest.Artifacts {
		switch a.Type {
		case "cdk:cloud-assembly":
			return nil, fmt.Errorf("%s: nested cloud assembly %q (a CDK Stage): stackguard reads top-level stacks only; extend it before adding stages", dir, id)
		case "aws:cloudformation:stack":
		default:
			continue
		}
		t, err := readTemplate(filepath.Join(dir, a.Properties.TemplateFile))
		if err != nil {
			return nil, err
		}
		name := a.Properties.StackName
		if name == "" {
			name = id // the CLI's default stack name
		}
		t.Deployed = a.Environment + " " + name
		out[id] = t
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no stacks: synthesize first", dir)
	}
	return out, nil
}

func readTemplates(dir string) (map[string]*Template, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no *.template.json: synthesize first", dir)
	}
	out := map[string]*Template{}
	for _, f := range files {
		t, err := readTemplate(f)
		if err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(filepath.Base(f), ".template.json")] = t
	}
	return out, nil
}

func readTemplate(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Template
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// CompareAssemblies returns every destructive change from base to head to
// a stateful resource, stack by stack (a stack missing from head is removed).
func CompareAssemblies(base, head map[string]*Template) []Finding {
	stacks := make([]string, 0, len(base))
	for s := range base {
		stacks = append(stacks, s)
	}
	sort.Strings(stacks)
	var out []Finding
	for _, s := range stacks {
		b, h := base[s], head[s]
		if h != nil && b.Deployed != "" && h.Deployed != b.Deployed {
			// Same artifact ID, another account, region or stack name: a new
			// stack is created there and the old one is left or deleted.
			for _, f := range CompareTemplates(s, b, nil) {
				f.Problem = fmt.Sprintf("the stack moves from %s to %s; CloudFormation would create the resource anew there", b.Deployed, h.Deployed)
				out = append(out, f)
			}
			continue
		}
		out = append(out, CompareTemplates(s, b, h)...)
	}
	return out
}

// FindingsFromDiff adds what cdk diff knows and the template comparison may
// not: any replacement cdk diff predicts for a stateful resource of base
// (from the full CloudFormation resource spec, e.g. a property this
// package's table lacks). Resources already in have are not repeated.
func FindingsFromDiff(d StackDiff, base *Template, have []Finding) []Finding {
	if base == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, f := range have {
		seen[f.Stack+"/"+f.LogicalID] = true
	}
	var out []Finding
	for _, c := range d.Changes {
		b, ok := base.Resources[c.LogicalID]
		replaced := c.Impact == "replace" || c.Impact == "may be replaced"
		if !ok || !replaced || !stateful(b) || seen[d.Stack+"/"+c.LogicalID] {
			continue
		}
		seen[d.Stack+"/"+c.LogicalID] = true
		out = append(out, Finding{d.Stack, c.LogicalID, b.Type, "cdk diff predicts: " + c.Impact})
	}
	return out
}
