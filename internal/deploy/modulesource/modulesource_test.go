package modulesource

import (
	"archive/zip"
	"bytes"
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

// fakeProxy writes a file-system module proxy serving a stand-in for
// agentgate at version (a go.mod only) and returns its GOPROXY URL.
func fakeProxy(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	at := filepath.Join(dir, filepath.FromSlash(ModulePath), "@v")
	goMod := "module " + ModulePath + "\n\ngo 1.21\n"
	writeFile(t, filepath.Join(at, "list"), version+"\n")
	writeFile(t, filepath.Join(at, version+".info"), `{"Version":"`+version+`","Time":"2026-01-01T00:00:00Z"}`)
	writeFile(t, filepath.Join(at, version+".mod"), goMod)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create(ModulePath + "@" + version + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(goMod)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(at, version+".zip"), buf.String())
	return "file://" + filepath.ToSlash(dir)
}

// As an ordinary dependency agentgate is found in the (read-only) module
// cache; when the app's graph names it but the cache does not hold it (a
// vendored app, a cleaned cache) the selected version is downloaded. All
// through a file-system proxy: no network.
func TestFromGoFindsAndDownloadsTheModuleCacheCopy(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go on PATH")
	}
	const version = "v0.0.1"
	cache := t.TempDir()
	// go extracts modules read-only: make the test's cache writable again
	// before t.TempDir removes it (cleanups run last-in first-out).
	t.Cleanup(func() { emptyCache(t, cache) })
	t.Setenv("GOMODCACHE", cache)
	t.Setenv("GOPROXY", fakeProxy(t, version))
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOWORK", "off")
	t.Setenv("GOTOOLCHAIN", "local")
	app := t.TempDir()
	writeFile(t, filepath.Join(app, "go.mod"), "module example.com/app\n\ngo 1.21\n")
	get := exec.Command(goBin, "get", ModulePath+"@"+version)
	get.Dir = app
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("go get: %v: %s", err, out)
	}
	want := filepath.Join(cache, filepath.FromSlash(ModulePath)+"@"+version)

	got, err := fromGo(goBin, app)
	if err != nil || got != want {
		t.Fatalf("fromGo = %q, %v; want the module cache copy %s", got, err, want)
	}
	if st, err := os.Stat(want); err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Errorf("module cache copy %s: %v, mode %v; want it read-only, as go extracts it", want, err, st.Mode())
	}

	emptyCache(t, cache)
	got, err = fromGo(goBin, app)
	if err != nil || got != want {
		t.Fatalf("after the cache was cleaned: fromGo = %q, %v; want it downloaded again to %s", got, err, want)
	}
}

// emptyCache removes everything in the test's own module cache directory,
// making go's read-only directories writable first. It never runs the go
// command: with the environment already restored, that would clean the
// user's real module cache.
func emptyCache(t *testing.T, cache string) {
	t.Helper()
	_ = filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	entries, err := os.ReadDir(cache)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(cache, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
