// Command stackguard fails when a change would destroy or replace a
// stateful resource, comparing two synthesized cloud assemblies:
//
//	stackguard [-allow STACK/LOGICAL_ID,...] BASE_CDK_OUT HEAD_CDK_OUT
//
// It prints one line per destructive change and exits 1 if there is any,
// 2 on a usage or read error, 0 otherwise. scripts/pr-diff.sh runs it on
// every pull request after `cdk diff --template`.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/agentgate/agentgate/internal/stackguard"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("stackguard", flag.ContinueOnError)
	allowList := fs.String("allow", "", "comma-separated STACK/LOGICAL_ID of reviewed, deliberate destructive changes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	args = fs.Args()
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: stackguard [-allow STACK/LOGICAL_ID,...] BASE_CDK_OUT HEAD_CDK_OUT")
		return 2
	}
	allow := map[string]bool{}
	for _, a := range strings.Split(*allowList, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if !strings.Contains(a, "/") {
				fmt.Fprintf(os.Stderr, "stackguard: -allow %q: want STACK/LOGICAL_ID\n", a)
				return 2
			}
			allow[a] = true
		}
	}
	base, err := stackguard.ReadAssembly(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stackguard: base:", err)
		return 2
	}
	head, err := stackguard.ReadAssembly(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stackguard: head:", err)
		return 2
	}
	findings := stackguard.CompareAssemblies(base, head, allow)
	if len(findings) == 0 {
		fmt.Println("stackguard: no destructive change to stateful resources")
		return 0
	}
	fmt.Printf("stackguard: %d destructive change(s) to stateful resources:\n", len(findings))
	for _, f := range findings {
		fmt.Println("  - " + f.String())
	}
	return 1
}
