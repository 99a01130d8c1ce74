// Command testprogress turns `go test -json` into output a person can
// follow while a long test suite runs:
//
//	go test -json ./... | go run ./internal/tools/testprogress [-long 30s]
//
// It prints go test's own line for each package as it finishes, a line for
// every test still running after -long (again each minute after that), a
// line for every test that took longer than -long when it ends, the
// complete output of every failed test (including its subtests and
// anything the package printed outside a test) and of every test a failed
// package left running (a timeout's stacks, a goroutine's panic), build
// failures as they come, every skipped test with its reason, and a closing
// count:
//
//	tests: 812 passed, 0 failed, 3 skipped
//	failed packages: ... (only when some failed)
//
// Passing tests' logs are dropped, as plain `go test` does. The exit status
// is 1 if a test, a package (TestMain's exit status, a panic in init, a
// timeout) or a build failed. go test failing before it writes any JSON
// (a bad package pattern) shows only in go test's own status, so run the
// pipe with `set -o pipefail`.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	long := flag.Duration("long", 30*time.Second, "report tests that run longer than this, while they run and when they end")
	flag.Parse()
	s := newSummary(os.Stdout, *long, time.Now)
	done := make(chan error, 1)
	go func() { done <- s.read(os.Stdin) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			s.tick()
		case err := <-done:
			if err != nil && err != io.EOF {
				fmt.Fprintln(os.Stderr, "testprogress:", err)
				os.Exit(1)
			}
			if !s.finish() {
				os.Exit(1)
			}
			return
		}
	}
}
