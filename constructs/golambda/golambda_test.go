package golambda_test

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/golambda"
	"github.com/agentgate/agentgate/internal/deploy/modulesource"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

var unit = sync.OnceValue(func() awscdk.Stack {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("GoLambdaTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	golambda.New(stack, jsii.String("Fn"), &golambda.Props{
		Entry:               jsii.String("lambda/releasepublisher"),
		ReservedConcurrency: jsii.Number(3),
		TimeoutSec:          jsii.Number(60),
		LogRetention:        awslogs.RetentionDays_ONE_MONTH,
	})
	return stack
})

func TestFunctionIsArm64ProvidedAL2023WithJSONLogs(t *testing.T) {
	tmpl := cdktest.Template(t, unit())
	cdktest.Must(t, func() {
		tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"Runtime":                      "provided.al2023",
			"Architectures":                []string{"arm64"},
			"Handler":                      "bootstrap",
			"Timeout":                      60,
			"MemorySize":                   golambda.DefaultMemorySizeMiB,
			"ReservedConcurrentExecutions": 3,
			"LoggingConfig": map[string]any{
				"LogFormat":           "JSON",
				"ApplicationLogLevel": "INFO",
				"LogGroup":            assertions.Match_AnyValue(),
			},
		})
		tmpl.HasResourceProperties(jsii.String("AWS::Logs::LogGroup"), map[string]any{"RetentionInDays": 30})
		// The role carries no managed policy (no AWSLambdaBasicExecutionRole on "*").
		tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{"ManagedPolicyArns": assertions.Match_Absent()})
	})
	cdktest.NoNagFindings(t, unit())
}

func TestMisuseFailsEarly(t *testing.T) {
	for name, p := range map[string]*golambda.Props{
		"no entry":       {},
		"missing entry":  {Entry: jsii.String("lambda/nope")},
		"entry escapes":  {Entry: jsii.String("../x")},
		"absolute entry": {Entry: jsii.String("/tmp")},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.HasPrefix(r.(string), "golambda: ") {
					t.Errorf("recovered %v; want a golambda panic", r)
				}
			}()
			golambda.New(awscdk.NewStack(cdktest.NewApp(), jsii.String("S"), nil), jsii.String("Fn"), p)
		})
	}
}

// copyPackages copies go.mod, go.sum and the non-test Go files of every
// package of this module that entry depends on into dir: the tree a fresh
// checkout of the same commit would have for this build.
func copyPackages(t *testing.T, moduleDir, entry, dir string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Module.Path}}|{{.Dir}}{{end}}", "./"+entry)
	cmd.Dir = moduleDir
	cmd.Env = golambda.BuildEnv(os.Environ())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := []string{"go.mod", "go.sum"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		mod, pkgDir, _ := strings.Cut(line, "|")
		if mod != "github.com/agentgate/agentgate" {
			continue
		}
		rel, _ := filepath.Rel(moduleDir, pkgDir)
		names, _ := filepath.Glob(filepath.Join(pkgDir, "*.go"))
		for _, n := range names {
			if !strings.HasSuffix(n, "_test.go") {
				files = append(files, filepath.Join(rel, filepath.Base(n)))
			}
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(moduleDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The one test that bundles: the same sources synthesized from two
// different directories give the same asset hash, and the asset is a
// linux/arm64 executable named bootstrap.
func TestAssetHashIsTheSameFromTwoDirectories(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two arm64 binaries")
	}
	moduleDir, err := modulesource.Dir()
	if err != nil {
		t.Fatal(err)
	}
	const entry = "lambda/configpublisher"
	var hashes, binaries []string
	for _, name := range []string{"checkout-a", "some/other/checkout-b"} {
		root := t.TempDir()
		src := filepath.Join(root, name)
		copyPackages(t, moduleDir, entry, src)
		app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(filepath.Join(root, "cdk.out"))})
		stack := awscdk.NewStack(app, jsii.String("Hash"), &awscdk.StackProps{Env: cdktest.TestEnv})
		golambda.New(stack, jsii.String("Fn"), &golambda.Props{Entry: jsii.String(entry), ModuleDir: jsii.String(src)})
		var key string
		cdktest.Must(t, func() {
			for _, fn := range *assertions.Template_FromStack(stack, nil).FindResources(jsii.String("AWS::Lambda::Function"), nil) {
				key = (*fn)["Properties"].(map[string]any)["Code"].(map[string]any)["S3Key"].(string)
			}
		})
		hash := strings.TrimSuffix(key, ".zip")
		if len(hash) != 64 {
			t.Fatalf("%s: asset S3Key %q is not a sha256.zip", name, key)
		}
		bin := filepath.Join(root, "cdk.out", "asset."+hash, "bootstrap")
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatalf("%s: bundled asset has no ELF bootstrap: %v", name, err)
		}
		if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_EXEC {
			t.Errorf("%s: bootstrap is %v %v, want an aarch64 executable", name, f.Machine, f.Type)
		}
		f.Close()
		data, _ := os.ReadFile(bin)
		if bytes.Contains(data, []byte(root)) {
			t.Errorf("%s: the binary contains its build directory %s", name, root)
		}
		t.Logf("%s: asset hash %s (%d-byte bootstrap)", name, hash, len(data))
		hashes = append(hashes, hash)
		binaries = append(binaries, string(data))
	}
	if hashes[0] != hashes[1] {
		t.Errorf("asset hashes differ between directories: %s vs %s", hashes[0], hashes[1])
	}
	if binaries[0] != binaries[1] {
		t.Error("binaries differ between directories")
	}
}
