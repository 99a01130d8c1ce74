package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent, plus
// the build events go test adds since Go 1.24).
type event struct {
	Time       time.Time
	Action     string
	Package    string
	ImportPath string // build-output and build-fail
	Test       string
	Elapsed    float64 // seconds
	Output     string
}

// testKey names one test of one package.
type testKey struct{ pkg, test string }

// line is one output line of a package, and the test that printed it
// ("" outside any test).
type line struct {
	test, text string
}

// pkgState is what is kept about a package until it ends.
type pkgState struct {
	lines  []line
	failed map[string]bool // tests that failed
	// unfinished holds the tests that started and have not ended. When a
	// package fails while one runs (a timeout, a goroutine's panic), go
	// test tags the cause with that test's name and never ends the test.
	unfinished map[string]bool
}

// running is a test that has started and not ended.
type running struct {
	start    time.Time
	reported time.Duration // how long it had run when last reported
}

// summary consumes events and writes the condensed report. It is safe for
// one reader and one ticker at a time.
type summary struct {
	mu       sync.Mutex
	w        io.Writer
	long     time.Duration
	now      func() time.Time
	pkgs     map[string]*pkgState
	running  map[testKey]*running
	skipped  []string
	passed   int
	failed   int
	buildBad bool
	// badPkgs are the packages that failed, with or without a failed test.
	badPkgs []string
}

func newSummary(w io.Writer, long time.Duration, now func() time.Time) *summary {
	return &summary{w: w, long: long, now: now, pkgs: map[string]*pkgState{}, running: map[testKey]*running{}}
}

// maxLine bounds one line of go test's JSON (a test may print a long line;
// go test itself splits output at 4 KiB, so this is generous).
const maxLine = 4 << 20

// read consumes the stream until EOF. A line that is not JSON (go test
// writes some messages as plain text) is printed as it is.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		b := sc.Bytes()
		var e event
		if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Action == "" {
			s.mu.Lock()
			fmt.Fprintln(s.w, string(b))
			s.mu.Unlock()
			continue
		}
		s.handle(e)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return io.EOF
}

func (s *summary) pkg(name string) *pkgState {
	p := s.pkgs[name]
	if p == nil {
		p = &pkgState{failed: map[string]bool{}, unfinished: map[string]bool{}}
		s.pkgs[name] = p
	}
	return p
}

func (s *summary) handle(e event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.w, e.Output)
		return
	case "build-fail":
		s.buildBad = true
		return
	}
	p := s.pkg(e.Package)
	key := testKey{e.Package, e.Test}
	switch e.Action {
	case "run", "cont":
		s.running[key] = &running{start: s.now()}
		if e.Test != "" {
			p.unfinished[e.Test] = true
		}
	case "pause": // a parallel test waiting for its turn is not running
		delete(s.running, key)
	case "output":
		if e.Test == "" && isPackageSummary(e.Output) {
			// go test's own line for the package ("ok", "FAIL", "?"): the
			// details of a failure go first.
			if strings.HasPrefix(e.Output, "FAIL") {
				s.printFailures(e.Package, p)
			}
			fmt.Fprint(s.w, e.Output)
			return
		}
		p.lines = append(p.lines, line{e.Test, e.Output})
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.endPackage(e.Package, p, e.Action == "fail")
			return
		}
		delete(s.running, key)
		delete(p.unfinished, e.Test)
		elapsed := time.Duration(e.Elapsed * float64(time.Second))
		switch e.Action {
		case "pass":
			s.passed++
		case "fail":
			s.failed++
			p.failed[e.Test] = true
		case "skip":
			s.skipped = append(s.skipped, e.Package+" "+e.Test+skipReason(p, e.Test))
		}
		if elapsed >= s.long {
			fmt.Fprintf(s.w, "    %-4s %s %s (%s)\n", e.Action, shortPkg(e.Package), e.Test, elapsed.Round(100*time.Millisecond))
		}
	}
}

// isPackageSummary reports go test's closing line for a package.
func isPackageSummary(out string) bool {
	return strings.HasPrefix(out, "ok  \t") || strings.HasPrefix(out, "FAIL\t") || strings.HasPrefix(out, "?   \t")
}

// endPackage forgets a package that ended. A failed package is counted
// whether or not a test of it failed (TestMain's os.Exit, a panic in init,
// a build error fail none), and the tests it left running are failures.
func (s *summary) endPackage(name string, p *pkgState, failed bool) {
	if failed {
		s.badPkgs = append(s.badPkgs, name)
		if len(p.lines) > 0 {
			s.printFailures(name, p) // a failure without a summary line (a crash)
		}
		s.failed += len(p.unfinished)
	}
	for k := range s.running {
		if k.pkg == name {
			delete(s.running, k)
		}
	}
	delete(s.pkgs, name)
}

// printFailures writes, in order, every line printed by a failed or
// unfinished test or one of its subtests (an unfinished test carries a
// timeout's stacks or a goroutine's panic), and every line printed outside
// a test (a panic in init, a TestMain message), then forgets them.
func (s *summary) printFailures(pkg string, p *pkgState) {
	failedOrUnder := func(test string) bool {
		if test == "" {
			return true
		}
		for t := test; ; {
			if p.failed[t] || p.unfinished[t] {
				return true
			}
			i := strings.LastIndexByte(t, '/')
			if i < 0 {
				return false
			}
			t = t[:i]
		}
	}
	header := false
	for _, l := range p.lines {
		if !failedOrUnder(l.test) {
			continue
		}
		if !header {
			fmt.Fprintf(s.w, "--- failure output of %s:\n", pkg)
			header = true
		}
		fmt.Fprint(s.w, l.text)
	}
	p.lines = nil
}

// skipReason finds the message of a skipped test ("    x_test.go:12: why").
func skipReason(p *pkgState, test string) string {
	for i := len(p.lines) - 1; i >= 0; i-- {
		l := p.lines[i]
		if l.test != test {
			continue
		}
		t := strings.TrimSpace(l.text)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		return ": " + t
	}
	return ""
}

func shortPkg(pkg string) string {
	return strings.TrimPrefix(pkg, "github.com/agentgate/agentgate/")
}

func shortPkgs(pkgs []string) string {
	short := make([]string, len(pkgs))
	for i, p := range pkgs {
		short[i] = shortPkg(p)
	}
	return strings.Join(short, ", ")
}

// tick reports tests that have been running longer than long, once when
// they pass it and again every minute.
func (s *summary) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var keys []testKey
	for k := range s.running {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].pkg+" "+keys[i].test < keys[j].pkg+" "+keys[j].test })
	for _, k := range keys {
		r := s.running[k]
		d := now.Sub(r.start)
		if d < s.long || (r.reported > 0 && d-r.reported < time.Minute) {
			continue
		}
		r.reported = d
		fmt.Fprintf(s.w, "    ...  %s %s still running (%s)\n", shortPkg(k.pkg), k.test, d.Round(time.Second))
	}
}

// finish prints the skipped tests and the closing count; it reports
// whether everything passed.
func (s *summary) finish() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, p := range s.pkgs { // packages that never ended (the stream was cut)
		if name == "" {
			continue
		}
		s.badPkgs = append(s.badPkgs, name)
		fmt.Fprintf(s.w, "--- %s did not finish; its output:\n", name)
		for _, l := range p.lines {
			fmt.Fprint(s.w, l.text)
		}
		s.failed += len(p.unfinished)
	}
	for _, sk := range s.skipped {
		fmt.Fprintf(s.w, "skipped: %s\n", shortPkg(sk))
	}
	fmt.Fprintf(s.w, "tests: %d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
	if len(s.badPkgs) > 0 {
		sort.Strings(s.badPkgs)
		fmt.Fprintf(s.w, "failed packages: %s\n", shortPkgs(s.badPkgs))
	}
	if s.buildBad {
		fmt.Fprintln(s.w, "build failed (see above)")
	}
	return s.failed == 0 && !s.buildBad && len(s.badPkgs) == 0
}
