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

// goTestJSON writes a throwaway module holding one package with the given
// test file, runs go test -json on it with the extra flags, and returns
// the stream. go test itself must fail: every package here is broken.
func goTestJSON(t *testing.T, testFile string, flags ...string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go tool")
	}
	dir := t.TempDir()
	for name, text := range map[string]string{"go.mod": "module sample\n\ngo 1.24\n", "sample_test.go": testFile} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", append([]string{"test", "-json", "-count=1"}, append(flags, ".")...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	stream, err := cmd.Output()
	if err == nil {
		t.Fatalf("go test passed a failing package:\n%s", stream)
	}
	return stream
}

// summarize feeds a stream to a summary and returns what a person sees
// and whether the tool would exit 0.
func summarize(t *testing.T, stream []byte) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	s := newSummary(&out, time.Second, time.Now)
	if err := s.read(bytes.NewReader(stream)); err.Error() != "EOF" {
		t.Fatal(err)
	}
	ok := s.finish()
	t.Log("\n" + out.String())
	return out.String(), ok
}

// TestRealGoTest runs go test -json on the sample package and checks what
// a person sees: the failure complete, passing logs hidden, the skip and
// its reason, the slow test, the package line, the count and the status.
func TestRealGoTest(t *testing.T) {
	t.Parallel()
	got, ok := summarize(t, goTestJSON(t, sampleTest))
	if ok {
		t.Error("finish reported success for a failed package")
	}
	for _, want := range []string{
		"--- failure output of sample:\n",
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
		"failed packages: sample\n",
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

// TestPackageFailuresWithoutAFailedTest: go test -json tags the output of
// a timeout or a goroutine's panic with the test that was running, and
// that test never gets a fail event of its own; TestMain's os.Exit, a
// panic in init and a build error fail the package with no test failed at
// all. Each must show its cause and make the tool exit non-zero.
func TestPackageFailuresWithoutAFailedTest(t *testing.T) {
	for _, c := range []struct {
		name, file string
		flags      []string
		want       []string
		hidden     []string
	}{{
		name: "timeout",
		file: `package sample
import ("testing"; "time")
func TestQuiet(t *testing.T) { t.Log("hidden: a passing test's log") }
func TestHangs(t *testing.T) { t.Log("logged before the hang"); time.Sleep(time.Hour) }
`,
		flags:  []string{"-timeout", "1s"},
		want:   []string{"=== RUN   TestHangs", "logged before the hang", "panic: test timed out after 1s", "sample.TestHangs", "FAIL\tsample\t", "tests: 1 passed, 1 failed, 0 skipped\n", "failed packages: sample\n"},
		hidden: []string{"hidden: a passing test's log"},
	}, {
		name: "goroutine panic",
		file: `package sample
import ("testing"; "time")
func TestQuiet(t *testing.T) { t.Log("hidden: a passing test's log") }
func TestPanics(t *testing.T) {
	t.Log("logged before the panic")
	go func() { panic("boom in a goroutine") }()
	time.Sleep(time.Hour)
}
`,
		want:   []string{"=== RUN   TestPanics", "logged before the panic", "panic: boom in a goroutine", "FAIL\tsample\t", "tests: 1 passed, 1 failed, 0 skipped\n", "failed packages: sample\n"},
		hidden: []string{"hidden: a passing test's log"},
	}, {
		name: "TestMain exits 1",
		file: `package sample
import ("fmt"; "os"; "testing")
func TestMain(m *testing.M) { m.Run(); fmt.Println("TestMain gives up"); os.Exit(1) }
func TestQuiet(t *testing.T) { t.Log("hidden: a passing test's log") }
`,
		want:   []string{"TestMain gives up", "FAIL\tsample\t", "tests: 1 passed, 0 failed, 0 skipped\n", "failed packages: sample\n"},
		hidden: []string{"hidden: a passing test's log"},
	}, {
		name: "init panics",
		file: `package sample
import "testing"
func init() { panic("init went wrong") }
func TestQuiet(t *testing.T) {}
`,
		want: []string{"panic: init went wrong", "sample.init", "FAIL\tsample\t", "tests: 0 passed, 0 failed, 0 skipped\n", "failed packages: sample\n"},
	}, {
		name: "build error",
		file: `package sample
import "testing"
func TestQuiet(t *testing.T) { undefinedThing() }
`,
		want: []string{"undefined: undefinedThing", "FAIL\tsample [build failed]", "failed packages: sample\n", "build failed"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, ok := summarize(t, goTestJSON(t, c.file, c.flags...))
			if ok {
				t.Error("finish reported success for a failed package")
			}
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			for _, h := range c.hidden {
				if strings.Contains(got, h) {
					t.Errorf("output has %q", h)
				}
			}
		})
	}
}

// TestTimedOutTestIsNoLongerRunning: after its package failed, a test
// that timed out is not reported as still running.
func TestTimedOutTestIsNoLongerRunning(t *testing.T) {
	t.Parallel()
	stream := goTestJSON(t, `package sample
import ("testing"; "time")
func TestHangs(t *testing.T) { time.Sleep(time.Hour) }
`, "-timeout", "1s")
	now := time.Now()
	var out bytes.Buffer
	s := newSummary(&out, time.Second, func() time.Time { return now })
	if err := s.read(bytes.NewReader(stream)); err.Error() != "EOF" {
		t.Fatal(err)
	}
	out.Reset()
	now = now.Add(time.Hour)
	s.tick()
	if out.Len() != 0 {
		t.Errorf("the ticker still reports: %q", out.String())
	}
}

// TestCutStream: a package whose stream ends before the package does (go
// test was killed) is a failure, with everything it printed shown.
func TestCutStream(t *testing.T) {
	t.Parallel()
	stream := goTestJSON(t, `package sample
import ("testing"; "time")
func TestQuiet(t *testing.T) { t.Log("logged by a passing test") }
func TestHangs(t *testing.T) { t.Log("logged before the hang"); time.Sleep(time.Hour) }
`, "-timeout", "1s")
	cut := bytes.Index(stream, []byte(`panic: test timed out`))
	if cut < 0 {
		t.Fatalf("no timeout in the stream:\n%s", stream)
	}
	cut = bytes.LastIndexByte(stream[:cut], '\n') + 1
	got, ok := summarize(t, stream[:cut])
	if ok {
		t.Error("finish reported success for a package that did not finish")
	}
	for _, want := range []string{"--- sample did not finish; its output:\n", "logged before the hang", "logged by a passing test", "failed packages: sample\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
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
