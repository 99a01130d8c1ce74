package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sampleTest is a package whose tests cover every case the summary
// handles: a passing test that logs, a failed test with a failing and a
// passing subtest, a skipped test, a slow test and output outside a test.
const sampleTest = `package sample

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	fmt.Println("printed by TestMain")
	os.Exit(m.Run())
}

func TestQuiet(t *testing.T) { t.Log("hidden: a passing test's log") }

func TestBroken(t *testing.T) {
	t.Log("parent log before the subtests")
	t.Run("fails", func(t *testing.T) {
		t.Log("first line of the failure")
		t.Error("second line of the failure")
	})
	t.Run("passes", func(t *testing.T) { t.Log("log of the passing subtest of a failed test") })
}

func TestSkipped(t *testing.T) { t.Skip("mosquitto not installed") }

func TestSlow(t *testing.T) { time.Sleep(1500 * time.Millisecond) }
`

// TestRealGoTest runs go test -json on the sample package and checks what
// a person sees: the failure complete, passing logs hidden, the skip and
// its reason, the slow test, the package line, the count and the status.
func TestRealGoTest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	dir := t.TempDir()
	for name, text := range map[string]string{"go.mod": "module sample\n\ngo 1.24\n", "sample_test.go": sampleTest} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-json", "-count=1", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	stream, err := cmd.Output()
	if err == nil {
		t.Fatalf("go test passed a failing package:\n%s", stream)
	}
	var out bytes.Buffer
	s := newSummary(&out, time.Second, time.Now)
	if err := s.read(bytes.NewReader(stream)); err.Error() != "EOF" {
		t.Fatal(err)
	}
	if s.finish() {
		t.Error("finish reported success for a failed package")
	}
	got := out.String()
	t.Log("\n" + got)
	for _, want := range []string{
		"--- output of the failed tests of sample:\n",
		"printed by TestMain",
		"parent log before the subtests",
		"first line of the failure",
		"second line of the failure",
		"--- FAIL: TestBroken/fails",
		"log of the passing subtest of a failed test",
		"--- FAIL: TestBroken ",
		"FAIL\tsample\t",
		"    pass sample TestSlow (", // it slept 1.5 s, over -long 1s
		"skipped: sample TestSkipped: sample_test.go:26: mosquitto not installed\n",
		"tests: 3 passed, 2 failed, 1 skipped\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "hidden: a passing test's log") {
		t.Error("a passing test's log was printed")
	}
	if i, j := strings.Index(got, "first line of the failure"), strings.Index(got, "FAIL\tsample\t"); i > j {
		t.Error("the failure's details come after the package's FAIL line")
	}
}

// feed turns events into go test -json lines.
func feed(t *testing.T, s *summary, lines ...string) {
	t.Helper()
	if err := s.read(strings.NewReader(strings.Join(lines, "\n") + "\n")); err.Error() != "EOF" {
		t.Fatal(err)
	}
}

// TestLongTestsAreReportedWhileTheyRun: with a fake clock, a test running
// past -long is reported by the ticker, again a minute later, and when it
// ends; a test that ends under -long is not.
func TestLongTestsAreReportedWhileTheyRun(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	s := newSummary(&out, 30*time.Second, func() time.Time { return now })
	feed(t, s,
		`{"Action":"start","Package":"github.com/agentgate/agentgate/cmd/stackguard"}`,
		`{"Action":"run","Package":"github.com/agentgate/agentgate/cmd/stackguard","Test":"TestPRDiffScript"}`,
		`{"Action":"run","Package":"github.com/agentgate/agentgate/cmd/stackguard","Test":"TestQuick"}`,
		`{"Action":"pass","Package":"github.com/agentgate/agentgate/cmd/stackguard","Test":"TestQuick","Elapsed":0.2}`,
	)
	step := func(d time.Duration) string {
		now = now.Add(d)
		out.Reset()
		s.tick()
		return out.String()
	}
	if got := step(29 * time.Second); got != "" {
		t.Errorf("at 29s: %q", got)
	}
	if got := step(time.Second); got != "    ...  cmd/stackguard TestPRDiffScript still running (30s)\n" {
		t.Errorf("at 30s: %q", got)
	}
	if got := step(59 * time.Second); got != "" {
		t.Errorf("at 1m29s: %q", got)
	}
	if got := step(time.Second); got != "    ...  cmd/stackguard TestPRDiffScript still running (1m30s)\n" {
		t.Errorf("at 1m30s: %q", got)
	}
	out.Reset()
	feed(t, s,
		`{"Action":"output","Package":"github.com/agentgate/agentgate/cmd/stackguard","Test":"TestPRDiffScript","Output":"    prdiff_test.go:40: a log line\n"}`,
		`{"Action":"pass","Package":"github.com/agentgate/agentgate/cmd/stackguard","Test":"TestPRDiffScript","Elapsed":270.04}`,
		`{"Action":"output","Package":"github.com/agentgate/agentgate/cmd/stackguard","Output":"ok  \tgithub.com/agentgate/agentgate/cmd/stackguard\t271.2s\n"}`,
		`{"Action":"pass","Package":"github.com/agentgate/agentgate/cmd/stackguard","Elapsed":271.2}`,
		`not JSON: printed as it is`,
	)
	want := "    pass cmd/stackguard TestPRDiffScript (4m30s)\nok  \tgithub.com/agentgate/agentgate/cmd/stackguard\t271.2s\nnot JSON: printed as it is\n"
	if got := out.String(); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := step(time.Hour); got != "" {
		t.Errorf("a finished test is still reported: %q", got)
	}
	out.Reset()
	if !s.finish() || out.String() != "tests: 2 passed, 0 failed, 0 skipped\n" {
		t.Errorf("finish: %q", out.String())
	}
}

// TestBuildFailureAndCutStream: a build failure is printed as it comes and
// fails the run; a package whose stream ends before it does is a failure
// with its output shown.
func TestBuildFailureAndCutStream(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out, 30*time.Second, time.Now)
	feed(t, s,
		`{"ImportPath":"example/broken","Action":"build-output","Output":"broken.go:3:1: syntax error\n"}`,
		`{"ImportPath":"example/broken","Action":"build-fail"}`,
		`{"Action":"start","Package":"example/cut"}`,
		`{"Action":"run","Package":"example/cut","Test":"TestHangs"}`,
		`{"Action":"output","Package":"example/cut","Test":"TestHangs","Output":"panic: test timed out after 30m0s\n"}`,
	)
	if s.finish() {
		t.Error("finish reported success")
	}
	got := out.String()
	for _, want := range []string{"broken.go:3:1: syntax error\n", "--- example/cut did not finish; its output:\npanic: test timed out after 30m0s\n", "tests: 0 passed, 1 failed, 0 skipped\n", "build failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
