package modulesource

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is this module's root, found the way the package must not (from
// the test's working directory), to check the answer it gives.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDirIsThisModule(t *testing.T) {
	got, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if want := repoRoot(t); got != want {
		t.Errorf("Dir() = %s, want %s", got, want)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// From a module that neither is nor requires agentgate, or from no module
// at all, the error says how to fix it.
func TestFromGoOutsideAgentgateSaysHow(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	other := t.TempDir()
	writeFile(t, filepath.Join(other, "go.mod"), "module example.com/other\n\ngo 1.26\n")
	for name, dir := range map[string]string{"other module": other, "no module": t.TempDir()} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("GOFLAGS", "")
			t.Setenv("GOWORK", "off")
			_, err := fromGo(goBin, dir)
			if err == nil || !strings.Contains(err.Error(), EnvDir) || !strings.Contains(err.Error(), ModulePath) {
				t.Errorf("fromGo in %s: %v; want an error naming %s and %s", name, err, ModulePath, EnvDir)
			}
		})
	}
}

// A module that replaces agentgate with a directory gets that directory,
// even a read-only one.
func TestFromGoFollowsReplace(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	app := t.TempDir()
	root := repoRoot(t)
	writeFile(t, filepath.Join(app, "go.mod"), "module example.com/app\n\ngo 1.26\n\nrequire "+ModulePath+" v0.0.0\n\nreplace "+ModulePath+" => "+root+"\n")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOWORK", "off")
	got, err := fromGo(goBin, app)
	if err != nil {
		t.Fatal(err)
	}
	if got != root {
		t.Errorf("fromGo = %s, want the replace target %s", got, root)
	}
}

func TestCheckedRefusesAnotherModule(t *testing.T) {
	dir := t.TempDir()
	for text, ok := range map[string]bool{
		"module " + ModulePath + "\n":                        true,
		"// a comment\nmodule \"" + ModulePath + "\" // x\n": true,
		"module example.com/other\n":                         false,
		"go 1.26\n":                                          false,
	} {
		writeFile(t, filepath.Join(dir, "go.mod"), text)
		_, err := checked(dir, "test")
		if (err == nil) != ok {
			t.Errorf("go.mod %q: err %v, want ok=%v", text, err, ok)
		}
	}
	if _, err := checked(t.TempDir(), "test"); err == nil {
		t.Error("a directory without go.mod was accepted")
	}
}
