//go:build linux

package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/update"
)

// fakeBuilds builds testdata/fakeagent per mode/version: real programs
// the installer starts, checks and replaces.
func fakeBuilds(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	built := map[string]string{}
	for name, flags := range map[string]string{
		"old":   "-X main.mode=healthy -X main.version=1.4.0",
		"new":   "-X main.mode=healthy -X main.version=1.5.0",
		"crash": "-X main.mode=crash -X main.version=1.5.0",
		"hang":  "-X main.mode=hang -X main.version=1.5.0",
		"liar":  "-X main.mode=healthy -X main.version=9.9.9",
	} {
		out := filepath.Join(dir, name)
		if b, err := exec.Command("go", "build", "-o", out, "-ldflags", flags, "./testdata/fakeagent").CombinedOutput(); err != nil {
			t.Fatalf("build fake agent %s: %v %s", name, err, b)
		}
		built[name] = out
	}
	return built
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The installer with real programs: a build that comes up (writes the
// health file as its version) replaces this program and is restarted into;
// one that exits non-zero, never comes up, or says another version is
// rolled back and the old program restarted.
func TestBinaryInstallerHealthCheckAndRollback(t *testing.T) {
	bins := fakeBuilds(t)
	for _, c := range []struct {
		name, build string
		ok          bool
		errPart     string
	}{
		{"healthy", "new", true, ""},
		{"exits non-zero", "crash", false, "exit status 3"},
		{"never comes up", "hang", false, "did not connect and subscribe"},
		{"other version", "liar", false, `version "9.9.9"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			self := filepath.Join(dir, "agentgate-agent")
			if err := copyFile(bins["old"], self, 0o755); err != nil {
				t.Fatal(err)
			}
			old := mustRead(t, self)
			staged := filepath.Join(t.TempDir(), "download")
			if err := copyFile(bins[c.build], staged, 0o700); err != nil {
				t.Fatal(err)
			}
			stopped := 0
			var restarted []string
			inst := &binaryInstaller{Self: self, Args: []string{"run"}, HealthTimeout: 3 * time.Second,
				Stop:    func() { stopped++ },
				Restart: func(p string) error { restarted = append(restarted, p); return nil },
				Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := inst.Install(t.Context(), update.Release{Version: "1.5.0", Path: staged})
			if (err == nil) != c.ok || (err != nil && !strings.Contains(err.Error(), c.errPart)) {
				t.Fatalf("Install: %v", err)
			}
			now := mustRead(t, self)
			if c.ok && !bytes.Equal(now, mustRead(t, bins["new"])) {
				t.Error("the new build is not in place")
			}
			if !c.ok && !bytes.Equal(now, old) {
				t.Error("the old build was not put back")
			}
			if st, err := os.Stat(self); err != nil || st.Mode().Perm()&0o100 == 0 {
				t.Errorf("program not executable: %v", err)
			}
			if stopped != 1 || len(restarted) != 1 || restarted[0] != self {
				t.Errorf("stopped %d times, restarted %v", stopped, restarted)
			}
			if _, err := os.Stat(self + ".next"); !os.IsNotExist(err) {
				t.Error("staging file left behind")
			}
		})
	}
}

// The health file is read bounded: a file (or device) that never ends
// gives the installer a version line's worth, not its memory.
func TestHealthFileReadIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(path, bytes.Repeat([]byte("9"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readHealth(path)
	if err != nil || len(got) != maxHealthBytes {
		t.Fatalf("read %d bytes (%v), want %d", len(got), err, maxHealthBytes)
	}
}
