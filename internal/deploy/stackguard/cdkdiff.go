package stackguard

import (
	"regexp"
	"strings"
)

// Change is one resource line of `cdk diff` output.
type Change struct {
	// Op is "+" (added), "-" (removed), "~" (modified) or "←" (imported).
	Op string
	// Type is the CloudFormation type, e.g. AWS::EC2::EIP.
	Type string
	// Path is the construct path (head's path for a modified resource).
	Path string
	// LogicalID is the template's logical ID.
	LogicalID string
	// Impact is what CloudFormation will do to the existing resource, as
	// cdk diff words it: "replace", "may be replaced", "destroy", "orphan",
	// or "" (created, or updated in place).
	Impact string
}

// Destructive reports whether the change deletes, orphans or replaces an
// existing resource.
func (c Change) Destructive() bool {
	return c.Op == "-" || c.Impact == "replace" || c.Impact == "may be replaced" || c.Impact == "destroy" || c.Impact == "orphan"
}

// StackDiff is `cdk diff --template` of one stack, parsed.
type StackDiff struct {
	// Stack is the stack artifact ID.
	Stack string
	// Text is the diff as cdk printed it, with colour codes removed.
	Text string
	// NoDifferences is true when cdk reported "There were no differences".
	NoDifferences bool
	// Changes are the resource lines of the Resources section, in order.
	Changes []Change
}

var (
	ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	// A resource line: "[~] AWS::S3::Bucket Path/To LogicalId replace".
	resourceLine = regexp.MustCompile(`^\[([-+~←])\] (\S+) (.+)$`)
	// The CLI's hint that a removal and an addition may be one resource
	// moved between stacks: "(OR move to Stack.LogicalId via refactoring)".
	moveHint = regexp.MustCompile(` \(OR move .* via refactoring\)$`)
	// Impacts cdk diff appends to a resource line (ResourceImpact).
	impacts = []string{"may be replaced", "replace", "destroy", "orphan"}
)

// ParseCdkDiff parses the output of `cdk diff --template BASE STACK` for
// one stack. Only the Resources section is read structurally; the rest
// (template, parameters, outputs, IAM and security-group tables) stays in
// Text for reviewers.
func ParseCdkDiff(stack, output string) StackDiff {
	text := ansiEscape.ReplaceAllString(output, "")
	d := StackDiff{Stack: stack, Text: strings.TrimRight(text, "\n")}
	inResources := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, " \r")
		switch {
		case strings.HasPrefix(line, "There were no differences"):
			// Possibly with "(CDK metadata changes were hidden, …)".
			d.NoDifferences = true
		case line == "Resources":
			inResources = true
		case sectionAfterResources(line):
			inResources = false
		case inResources:
			// Only a resource line counts; the tree under it and the raw
			// lines of a changed multi-line string value (an inline Lambda's
			// code, say, blank lines included) do not end the section.
			if c, ok := parseResourceLine(line); ok {
				d.Changes = append(d.Changes, c)
			}
		}
	}
	return d
}

// sectionAfterResources reports whether line is a header the CLI prints
// after the Resources section (formatDifferences: Outputs, Other Changes),
// or the end of the stack's diff.
func sectionAfterResources(line string) bool {
	return line == "Outputs" || line == "Other Changes" || strings.HasPrefix(line, "✨") || strings.HasPrefix(line, "Stack ")
}

func parseResourceLine(line string) (Change, bool) {
	m := resourceLine.FindStringSubmatch(line)
	if m == nil || !strings.Contains(m[2], "::") {
		return Change{}, false
	}
	c := Change{Op: m[1], Type: m[2]}
	rest := moveHint.ReplaceAllString(m[3], "")
	for _, imp := range impacts {
		if strings.HasSuffix(rest, " "+imp) {
			c.Impact = imp
			rest = strings.TrimSuffix(rest, " "+imp)
			break
		}
	}
	// The logical ID is the last field; everything before it is the path
	// (which cdk prints without quoting, so it may contain spaces).
	i := strings.LastIndexByte(rest, ' ')
	if i < 0 {
		c.LogicalID = rest
	} else {
		c.Path, c.LogicalID = rest[:i], rest[i+1:]
	}
	return c, c.LogicalID != ""
}
