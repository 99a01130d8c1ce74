// Command stackguard fails when a change would destroy or replace a
// stateful resource (the static Elastic IPs above all, buckets, DNS
// records, IoT role alias and policies), comparing two synthesized cloud
// assemblies, and writes the pull-request report:
//
//	stackguard [-diffs DIR] [-base-overrides FILE] [-overrides FILE]
//	           [-report FILE] [-base-ref NAME] BASE_CDK_OUT HEAD_CDK_OUT
//
// BASE_CDK_OUT is "-" when the base revision has no CDK app yet. DIR holds
// `cdk diff --template` output per stack as STACK.diff. Only overrides the
// head adds over the base apply (see internal/deploy/stackguard.NewOverrides).
//
// It prints one line per destructive change and exits 1 if any is not
// overridden, 2 on a usage or read error, 0 otherwise. scripts/pr-diff.sh
// (make pr-diff) runs it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/agentgate/agentgate/internal/deploy/stackguard"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = "usage: stackguard [-diffs DIR] [-base-overrides FILE] [-overrides FILE] [-report FILE] [-base-ref NAME] BASE_CDK_OUT|- HEAD_CDK_OUT"

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stackguard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	diffs := fs.String("diffs", "", "directory of per-stack `cdk diff --template` outputs, STACK.diff")
	baseOverrides := fs.String("base-overrides", "", "the base revision's "+stackguard.OverridesFile+" (a missing file means none)")
	headOverrides := fs.String("overrides", "", "the head's "+stackguard.OverridesFile+" (a missing file means none)")
	reportPath := fs.String("report", "", "write the Markdown pull-request report to this file")
	baseRef := fs.String("base-ref", "base", "name of the base revision, for the report")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(stderr, "stackguard: %s: %v\n", what, err)
		return 2
	}
	base := map[string]*stackguard.Template{}
	if fs.Arg(0) != "-" {
		var err error
		if base, err = stackguard.ReadAssembly(fs.Arg(0)); err != nil {
			return fail("base", err)
		}
	}
	head, err := stackguard.ReadAssembly(fs.Arg(1))
	if err != nil {
		return fail("head", err)
	}
	oldOverrides, err := stackguard.ReadOverrides(*baseOverrides)
	if err != nil {
		return fail("base overrides", err)
	}
	newOverrides, err := stackguard.ReadOverrides(*headOverrides)
	if err != nil {
		return fail("overrides", err)
	}

	findings := stackguard.CompareAssemblies(base, head)
	report := stackguard.Report{BaseRef: *baseRef}
	for _, stack := range sortedKeys(head) {
		d := stackguard.StackDiff{Stack: stack, NoDifferences: true}
		if *diffs != "" {
			out, err := os.ReadFile(filepath.Join(*diffs, stack+".diff"))
			if err != nil {
				return fail("diffs", err)
			}
			d = stackguard.ParseCdkDiff(stack, string(out))
		}
		findings = append(findings, stackguard.FindingsFromDiff(d, base[stack], findings)...)
		report.Diffs = append(report.Diffs, d)
	}
	for _, stack := range sortedKeys(base) {
		if head[stack] == nil {
			report.RemovedStacks = append(report.RemovedStacks, stack)
		}
	}
	report.Blocking, report.Allowed, report.Unused = stackguard.ApplyOverrides(findings, stackguard.NewOverrides(oldOverrides, newOverrides))

	if *reportPath != "" {
		f, err := os.Create(*reportPath)
		if err != nil {
			return fail("report", err)
		}
		err = report.WriteMarkdown(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("report", err)
		}
	}
	for _, a := range report.Allowed {
		fmt.Fprintf(stdout, "stackguard: allowed by override: %s (reason: %s)\n", a.Finding, a.Reason)
	}
	for _, o := range report.Unused {
		fmt.Fprintf(stdout, "stackguard: override matches no destructive change: %s\n", o.Resource)
	}
	if !report.Failed() {
		fmt.Fprintln(stdout, "stackguard: no destructive change to stateful resources")
		return 0
	}
	fmt.Fprintf(stdout, "stackguard: %d destructive change(s) to stateful resources:\n", len(report.Blocking))
	for _, f := range report.Blocking {
		fmt.Fprintln(stdout, "  - "+f.String())
	}
	fmt.Fprintf(stdout, "stackguard: if deliberate, add each to %s with a reason, in this change\n", stackguard.OverridesFile)
	return 1
}

func sortedKeys(m map[string]*stackguard.Template) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
