package examples_test

import (
	"context"
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/controlplane"
	"github.com/agentgate/agentgate/constructs/relayfleet"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

// assets is what a synthesized stack's <stack>.assets.json says about its
// file and Docker image assets.
type assets struct {
	Files map[string]struct {
		DisplayName string `json:"displayName"`
		Source      struct {
			Path string `json:"path"`
		} `json:"source"`
	} `json:"files"`
	DockerImages map[string]struct {
		DisplayName string `json:"displayName"`
		Source      struct {
			Directory string `json:"directory"`
		} `json:"source"`
	} `json:"dockerImages"`
}

// staged is the hashes of agentgate's assets in one cloud assembly.
type staged struct {
	configPublisher, releasePublisher, relayImage string
}

// readStaged reads stack's asset manifest in outDir and checks that every
// agentgate asset is staged there: each Lambda a linux/arm64 bootstrap, the
// relay's build context exactly the relay's sources.
func readStaged(t *testing.T, root, outDir, stack string) staged {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(outDir, stack+".assets.json"))
	if err != nil {
		t.Fatal(err)
	}
	var a assets
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatalf("%s.assets.json: %v", stack, err)
	}
	var s staged
	for hash, f := range a.Files {
		var dst *string
		switch {
		case strings.HasSuffix(f.DisplayName, "ConfigPublisher/Resource/Code"):
			dst = &s.configPublisher
		case strings.HasSuffix(f.DisplayName, "ReleasePublisher/Resource/Code"):
			dst = &s.releasePublisher
		default:
			continue
		}
		*dst = hash
		bin, err := elf.Open(filepath.Join(outDir, f.Source.Path, "bootstrap"))
		if err != nil {
			t.Errorf("%s: no staged bootstrap: %v", f.DisplayName, err)
			continue
		}
		if bin.Machine != elf.EM_AARCH64 || bin.Type != elf.ET_EXEC {
			t.Errorf("%s: bootstrap is %v %v, want an aarch64 executable", f.DisplayName, bin.Machine, bin.Type)
		}
		bin.Close()
	}
	if len(a.DockerImages) != 1 {
		t.Fatalf("%d Docker image assets, want the relay's only", len(a.DockerImages))
	}
	want := relaySources(t, root)
	for hash, img := range a.DockerImages {
		s.relayImage = hash
		got := filesUnder(t, filepath.Join(outDir, img.Source.Directory))
		if !slices.Equal(got, want) {
			t.Errorf("relay build context %v\nwant %v (relayfleet.ImageSources without tests, plus .dockerignore)", got, want)
		}
	}
	if s.configPublisher == "" || s.releasePublisher == "" {
		t.Errorf("Lambda assets missing from %s.assets.json: %+v", stack, s)
	}
	return s
}

// relaySources is the relay's build context as it must be staged:
// relayfleet.ImageSources in root without tests or test data, and the
// .dockerignore the CDK keeps.
func relaySources(t *testing.T, root string) []string {
	t.Helper()
	out := []string{".dockerignore"}
	for _, src := range relayfleet.ImageSources {
		for _, f := range filesUnder(t, filepath.Join(root, src)) {
			p := filepath.ToSlash(filepath.Join(src, f))
			if f == "." {
				p = src
			}
			if !strings.HasSuffix(p, "_test.go") && !strings.Contains(p, "/testdata/") {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// filesUnder lists the regular files under dir, relative and sorted; a
// regular file dir itself is ".".
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// copyModule copies the files of the module at root that a module zip
// would hold (no VCS data, no nested modules, no node_modules or cdk.out)
// to dst and makes the copy read-only, as the module cache is.
func copyModule(t *testing.T, root, dst string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." {
				switch d.Name() {
				case ".git", "node_modules", "cdk.out", "vendor":
					return filepath.SkipDir
				}
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o444)
	})
	if err != nil {
		t.Fatal(err)
	}
	setDirModes(t, dst, 0o555)
	// Writable again before t.TempDir removes it (cleanups run last-in first-out).
	t.Cleanup(func() { setDirModes(t, dst, 0o755) })
}

func setDirModes(t *testing.T, root string, mode fs.FileMode) {
	t.Helper()
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return err
	})
	for _, d := range dirs {
		if err := os.Chmod(d, mode); err != nil {
			t.Error(err)
		}
	}
}

// synthExample runs `go <args>` in the example's directory with its cloud
// assembly going to outDir.
func synthExample(t *testing.T, root, appDir, outDir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = appDir
	cmd.Env = append(os.Environ(),
		"CDK_OUTDIR="+outDir,
		"GOWORK=off",
		"PATH="+filepath.Join(root, "node_modules", ".bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), appDir, err, out)
	}
	t.Logf("go %s in %s: %v", strings.Join(args, " "), appDir, time.Since(start).Round(time.Second))
}

// mainModuleAssets synthesizes, in this module, the constructs that carry
// agentgate's assets (the control plane's Lambdas, the relay image) and
// returns their hashes: what agentgate's own app deploys from these sources.
func mainModuleAssets(t *testing.T, root string) staged {
	t.Helper()
	outDir := t.TempDir()
	ctx := map[string]any{}
	cdktest.PinZones(ctx, *cdktest.TestEnv.Account, *cdktest.TestEnv.Region, cdktest.TestZones)
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outDir), Context: &ctx})
	stack := awscdk.NewStack(app, jsii.String("MainModule"), &awscdk.StackProps{Env: cdktest.TestEnv})
	controlplane.New(stack, jsii.String("ControlPlane"), nil)
	task := awsecs.NewFargateTaskDefinition(stack, jsii.String("Task"), nil)
	task.AddContainer(jsii.String("relay"), &awsecs.ContainerDefinitionOptions{Image: relayfleet.ImageFromSource(relayfleet.SourceRoot())})
	app.Synth(nil)
	return readStaged(t, root, outDir, "MainModule")
}

// Another team's CDK app (examples/cdkapp, its own module) synthesizes
// agentgate's constructs from its own working directory: with source paths
// (go run .) against this checkout, and under -trimpath against a read-only
// copy of the module standing in for the module cache. Both stage the same
// Lambda binaries and relay build context, with the hashes agentgate's own
// module gives for the same sources.
func TestCDKAppFromAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and synthesizes the example app twice")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	example := filepath.Join(root, "examples", "cdkapp")

	out1 := t.TempDir()
	synthExample(t, root, example, out1, "run", ".")
	run1 := readStaged(t, root, out1, "PartnerGateway")

	// The read-only case: the same app in a fresh directory whose replace
	// target is a read-only copy of this module, built with -trimpath (no
	// source paths in the binary).
	tmp := t.TempDir()
	module := filepath.Join(tmp, "modcache", "github.com", "agentgate", "agentgate@v0.0.0")
	copyModule(t, root, module)
	app := filepath.Join(tmp, "partner", "cdkapp")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"main.go", "go.sum", "go.mod"} {
		data, err := os.ReadFile(filepath.Join(example, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "go.mod" {
			data = []byte(strings.Replace(string(data), "=> ../..", "=> "+module, 1))
			if !strings.Contains(string(data), module) {
				t.Fatal("examples/cdkapp/go.mod has no `replace ... => ../..` to redirect")
			}
		}
		if err := os.WriteFile(filepath.Join(app, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out2 := t.TempDir()
	synthExample(t, root, app, out2, "run", "-trimpath", ".")
	run2 := readStaged(t, module, out2, "PartnerGateway")

	main := mainModuleAssets(t, root)
	t.Logf("asset hashes: config publisher %s, release publisher %s, relay image %s", main.configPublisher, main.releasePublisher, main.relayImage)
	for name, got := range map[string]staged{"go run .": run1, "go run -trimpath . (read-only module)": run2} {
		if got != main {
			t.Errorf("%s staged %+v\nwant the main module's %+v", name, got, main)
		}
	}
}
