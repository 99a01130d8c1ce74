// Command agentgate-admin is the vendor's operator tool: it runs with the
// operator's own AWS credentials (the SDK's default chain) and groups its
// work into subjects, each with its own verbs:
//
//	agentgate-admin <subject> <verb> [flags]
//
// Each subject lives in its own file and adds itself to subjects from an
// init function; this file only dispatches. Output is a table by default and
// JSON with --json (see output.go).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// subject is one group of verbs, such as "token" or "release".
type subject struct {
	// summary is the one-line description in the usage text.
	summary string
	// run executes one verb of the subject; args[0] is the verb.
	run func(ctx context.Context, env *environment, args []string) error
}

// subjects holds every subject by name; files add to it from init.
var subjects = map[string]subject{}

// register adds a subject; a duplicate name is a programming error.
func register(name string, s subject) {
	if _, dup := subjects[name]; dup {
		panic("agentgate-admin: subject " + name + " registered twice")
	}
	subjects[name] = s
}

// environment is what a subject may use from the process: its output
// streams and the environment lookup (tests pass their own).
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
}

// usageError marks an error caused by the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], &environment{stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv}))
}

func usage() string {
	names := make([]string, 0, len(subjects))
	for n := range subjects {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: agentgate-admin <subject> <verb> [flags]\n\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, subjects[n].summary)
	}
	b.WriteString("\nRun \"agentgate-admin <subject> -h\" for its verbs. AWS credentials and region come\nfrom the SDK's default chain (AWS_PROFILE, AWS_REGION, ...).\n")
	return b.String()
}

// run dispatches args and returns the exit status: 0 ok, 1 failed, 2 bad usage.
func run(ctx context.Context, args []string, env *environment) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.stderr, usage())
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	s, ok := subjects[args[0]]
	if !ok {
		fmt.Fprintf(env.stderr, "agentgate-admin: unknown subject %q\n\n%s", args[0], usage())
		return 2
	}
	if err := s.run(ctx, env, args[1:]); err != nil {
		fmt.Fprintf(env.stderr, "agentgate-admin %s: %v\n", args[0], err)
		if _, bad := err.(usageError); bad {
			return 2
		}
		return 1
	}
	return 0
}
