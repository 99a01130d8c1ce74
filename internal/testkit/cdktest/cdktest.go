// Package cdktest is the test kit for agentgate's CDK code: an app that
// runs cdk-nag like the real one but skips asset bundling, cached templates,
// a check that fails a test on any cdk-nag finding with the finding's text,
// and helpers for pinned logical IDs. Assertion panics from the CDK
// assertions library are turned into test failures with their message.
package cdktest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// TestEnv is the account/region unit tests deploy to: env-bound like the
// real app, with zones pinned in context so nothing is looked up.
var TestEnv = &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("eu-west-1")}

// TestZones are the zones of TestEnv, pinned in the app context.
var TestZones = []string{"eu-west-1a", "eu-west-1b", "eu-west-1c"}

// NewApp returns an app with cdk-nag's AwsSolutions checks applied, asset
// bundling skipped (tests that are about bundling build their own app), and
// the zones of TestEnv pinned so synth never performs a lookup.
func NewApp() awscdk.App {
	ctx := map[string]any{
		"aws:cdk:bundling-stacks": []string{},
	}
	PinZones(ctx, *TestEnv.Account, *TestEnv.Region, TestZones)
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx})
	ApplyNag(app)
	return app
}

// PinZones records zones for account/region in a context map under the key
// the CDK's availability-zones lookup reads, so no AWS call is needed.
func PinZones(ctx map[string]any, account, region string, zones []string) {
	ctx[fmt.Sprintf("availability-zones:account=%s:region=%s", account, region)] = zones
}

// ApplyNag adds the AwsSolutions checks to every construct in scope.
func ApplyNag(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// Main runs the tests of m, stops the jsii runtime and exits with the tests'
// result. A CDK test package's TestMain is just `cdktest.Main(m)`.
func Main(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// Must runs f and turns an assertion panic into a test failure that carries
// the assertion's message.
func Must(t testing.TB, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Helper()
			t.Fatalf("%v", r)
		}
	}()
	f()
}

var (
	templatesMu sync.Mutex
	templates   = map[awscdk.Stack]assertions.Template{}
)

// Template synthesizes stack once (per test binary) and returns its template.
func Template(t testing.TB, stack awscdk.Stack) assertions.Template {
	t.Helper()
	templatesMu.Lock()
	defer templatesMu.Unlock()
	if tmpl, ok := templates[stack]; ok {
		return tmpl
	}
	var tmpl assertions.Template
	Must(t, func() {
		tmpl = assertions.Template_FromStack(stack, nil)
	})
	templates[stack] = tmpl
	return tmpl
}

// NagFindings returns the unsuppressed cdk-nag errors and warnings of
// stack, each as "path: text".
func NagFindings(stack awscdk.Stack) []string {
	ann := assertions.Annotations_FromStack(stack)
	var out []string
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	// The messages' Go type is deprecated; read them through their JSON form.
	var msgs []struct {
		ID    string `json:"id"`
		Entry struct {
			Data any `json:"data"`
		} `json:"entry"`
	}
	for _, level := range []string{"error", "warning"} {
		found := any(ann.FindError(jsii.String("*"), nag))
		if level == "warning" {
			found = ann.FindWarning(jsii.String("*"), nag)
		}
		raw, _ := json.Marshal(found)
		msgs = msgs[:0]
		_ = json.Unmarshal(raw, &msgs)
		for _, m := range msgs {
			out = append(out, fmt.Sprintf("%s %s: %v", level, m.ID, m.Entry.Data))
		}
	}
	sort.Strings(out)
	return out
}

// NoNagFindings fails the test with every unsuppressed cdk-nag finding's text.
func NoNagFindings(t testing.TB, stack awscdk.Stack) {
	t.Helper()
	if f := NagFindings(stack); len(f) > 0 {
		t.Errorf("%d unsuppressed cdk-nag findings in %s:\n%s", len(f), *stack.StackName(), strings.Join(f, "\n"))
	}
}

// LogicalIDs returns the logical IDs of every resource of type in tmpl, sorted.
func LogicalIDs(t testing.TB, tmpl assertions.Template, resourceType string) []string {
	t.Helper()
	var ids []string
	Must(t, func() {
		for id := range *tmpl.FindResources(jsii.String(resourceType), nil) {
			ids = append(ids, id)
		}
	})
	sort.Strings(ids)
	return ids
}

// PinnedLogicalIDs fails unless the resources of type in tmpl have exactly the
// logical IDs want. Stateful resources are pinned this way: a changed logical
// ID makes CloudFormation replace the resource.
func PinnedLogicalIDs(t testing.TB, tmpl assertions.Template, resourceType string, want ...string) {
	t.Helper()
	got := LogicalIDs(t, tmpl, resourceType)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if strings.Join(got, ",") != strings.Join(w, ",") {
		t.Errorf("%s logical IDs changed (this would replace the resources):\n got  %q\n want %q", resourceType, got, w)
	}
}

// Resources returns the resources of type in tmpl as decoded JSON objects keyed by logical ID.
func Resources(t testing.TB, tmpl assertions.Template, resourceType string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	Must(t, func() {
		for id, r := range *tmpl.FindResources(jsii.String(resourceType), nil) {
			if r != nil {
				out[id] = *r
			}
		}
	})
	return out
}

// TemplateJSON returns the template of stack (synthesized once, see
// Template) decoded from its JSON form: maps, slices, strings, float64s and
// bools, as CloudFormation reads it. Each call decodes a fresh copy.
func TemplateJSON(t testing.TB, stack awscdk.Stack) map[string]any {
	t.Helper()
	tmpl := Template(t, stack)
	var out map[string]any
	Must(t, func() {
		data, err := json.Marshal(tmpl.ToJSON())
		if err == nil {
			err = json.Unmarshal(data, &out)
		}
		if err != nil {
			panic(fmt.Sprintf("template of %s: %v", *stack.StackName(), err))
		}
	})
	return out
}

// PropertiesOfType returns the Properties of every resource of type typ in
// tmpl (a template as TemplateJSON returns it), in no particular order. A
// resource without Properties contributes a nil map.
func PropertiesOfType(tmpl map[string]any, typ string) []map[string]any {
	var out []map[string]any
	resources, _ := tmpl["Resources"].(map[string]any)
	for _, r := range resources {
		if m, _ := r.(map[string]any); m["Type"] == typ {
			p, _ := m["Properties"].(map[string]any)
			out = append(out, p)
		}
	}
	return out
}

// MustPanic fails the test unless f panics with a value whose text
// mentions want.
func MustPanic(t testing.TB, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic; want one mentioning %q", want)
		}
		if !strings.Contains(fmt.Sprint(r), want) {
			t.Fatalf("panic %q; want it to mention %q", r, want)
		}
	}()
	f()
}
