// Package modulesource finds agentgate's own module directory at synth
// time, for the constructs that build from agentgate's sources (the Go
// Lambdas, the relay image). It asks the Go module system of the CDK app
// being synthesized, so it works the same when agentgate is the app's own
// module, a `replace` target, or a read-only dependency in the module cache,
// and it never reads the caller's source paths (absent under -trimpath).
package modulesource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ModulePath is agentgate's Go module path.
const ModulePath = "github.com/agentgate/agentgate"

// EnvDir names an environment variable that, when set, is the module
// directory to use instead of asking the go command: for a machine with no
// Go toolchain on PATH (the Lambdas then build in Docker) or a vendored app.
const EnvDir = "AGENTGATE_MODULE_DIR"

// goTimeout bounds each go command; a download through a slow proxy is the
// longest case.
const goTimeout = 3 * time.Minute

// Dir returns agentgate's module directory (the one holding its go.mod),
// located once per process: EnvDir when set, else the Dir the go command
// reports for ModulePath in the working directory's module graph,
// downloading the module into the module cache when the graph names it but
// the cache does not hold it yet (a vendored app). The directory may be
// read-only; callers only read it.
func Dir() (string, error) { return located() }

var located = sync.OnceValues(func() (string, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		return checked(dir, EnvDir)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("no go command on PATH to locate %s; set %s to its module directory", ModulePath, EnvDir)
	}
	return fromGo(goBin, "")
})

// module is the part of `go list -m -json` and `go mod download -json`
// output used here.
type module struct {
	Path    string
	Version string
	Dir     string
	Error   any
	Replace *module
}

// fromGo asks the go command at goBin, run in workDir ("" = the current
// directory), where ModulePath's files are.
func fromGo(goBin, workDir string) (string, error) {
	// -mod=readonly on the command line overrides a GOFLAGS=-mod=vendor
	// and a vendor directory: the vendor tree holds only imported packages,
	// not the Lambdas' main packages or the relay's Dockerfile.
	var m module
	if err := runJSON(goBin, workDir, &m, "list", "-mod=readonly", "-m", "-json", ModulePath); err != nil {
		return "", fmt.Errorf("locating %s with the Go module system (run synth inside a Go module that requires it, or set %s): %w", ModulePath, EnvDir, err)
	}
	if m.Dir != "" {
		return checked(m.Dir, "go list -m "+ModulePath)
	}
	// Named in the module graph but not in the module cache: download the
	// exact version (or the replacing module version) the graph selects.
	target := m
	if m.Replace != nil {
		target = *m.Replace
	}
	if target.Version == "" {
		return "", fmt.Errorf("go list -m %s reports no directory and no version to download", ModulePath)
	}
	var d module
	if err := runJSON(goBin, workDir, &d, "mod", "download", "-json", target.Path+"@"+target.Version); err != nil {
		return "", fmt.Errorf("downloading %s@%s: %w", target.Path, target.Version, err)
	}
	if d.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s reported no directory (error %v)", target.Path, target.Version, d.Error)
	}
	return checked(d.Dir, "go mod download "+target.Path+"@"+target.Version)
}

// runJSON runs goBin args in workDir and decodes its standard output into v.
func runJSON(goBin, workDir string, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), goTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = workDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("go %s: unreadable output: %w", strings.Join(args, " "), err)
	}
	return nil
}

// checked returns dir made absolute if its go.mod declares ModulePath.
func checked(dir, source string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	path, err := modulePathOf(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("%s gave %s: %w", source, abs, err)
	}
	if path != ModulePath {
		return "", fmt.Errorf("%s gave %s, whose go.mod declares module %q, not %s", source, abs, path, ModulePath)
	}
	return abs, nil
}

// modulePathOf reads the module directive of a go.mod file.
func modulePathOf(goMod string) (string, error) {
	f, err := os.Open(goMod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no module directive")
}
