package stackguard

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// ReportMarker starts every report, so a workflow can find and update its
// own pull-request comment instead of adding one per push.
const ReportMarker = "<!-- agentgate:pr-diff -->"

// Limits that keep a report inside one GitHub comment (65,536 characters).
const (
	maxStackChars  = 8000
	maxReportChars = 60000
	maxTableRows   = 200
	maxCommentSize = 65000
)

// Report is the pull-request report: the guard's verdict first, then every
// replacement and deletion, then each stack's diff.
type Report struct {
	// BaseRef names the base revision.
	BaseRef string
	// Diffs are the head's stacks, parsed from cdk diff.
	Diffs []StackDiff
	// RemovedStacks are in base and not in head.
	RemovedStacks []string
	// Blocking are the destructive changes no override allows.
	Blocking []Finding
	// Allowed are destructive changes this change's overrides allow.
	Allowed []Overridden
	// Unused are this change's overrides that matched nothing.
	Unused []Override
}

// Failed reports whether the guard blocks the change.
func (r Report) Failed() bool { return len(r.Blocking) > 0 }

// WriteMarkdown writes the report as GitHub-flavoured Markdown.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n## cdk diff: `%s` → head\n\n", ReportMarker, r.BaseRef)
	if r.Failed() {
		fmt.Fprintf(&b, "❌ **stackguard blocks this change: %s to stateful resources.**\n\n", plural(len(r.Blocking), "destructive change"))
		b.WriteString("### Blocking: destructive changes to stateful resources\n\n| resource | type | problem |\n|---|---|---|\n")
		var rows []string
		for _, f := range r.Blocking {
			rows = append(rows, fmt.Sprintf("| `%s/%s` | %s | %s |", f.Stack, f.LogicalID, f.Type, cell(f.Problem)))
		}
		writeRows(&b, rows)
		fmt.Fprintf(&b, "\nIf this is deliberate, add an entry for each resource, with the reason, to `%s` in this change (see docs/pull-requests.md).\n\n", OverridesFile)
	} else {
		b.WriteString("✅ **stackguard: no destructive change to stateful resources.**\n\n")
	}
	if len(r.Allowed) > 0 {
		fmt.Fprintf(&b, "### Allowed by this change's overrides (`%s`)\n\n| resource | type | problem | reason |\n|---|---|---|---|\n", OverridesFile)
		var rows []string
		for _, a := range r.Allowed {
			rows = append(rows, fmt.Sprintf("| `%s/%s` | %s | %s | %s |", a.Stack, a.LogicalID, a.Type, cell(a.Problem), cell(a.Reason)))
		}
		writeRows(&b, rows)
		b.WriteString("\n")
	}
	if len(r.Unused) > 0 {
		b.WriteString("### Overrides that match no destructive change\n\n")
		var rows []string
		for _, o := range r.Unused {
			rows = append(rows, fmt.Sprintf("- `%s`: %s", o.Resource, cell(o.Reason)))
		}
		writeRows(&b, rows)
		b.WriteString("\n")
	}
	r.writeDestructive(&b)
	r.writeStacks(&b)
	md := b.String()
	if len(md) > maxCommentSize {
		// Only huge tables get here; the artifact keeps every diff.
		md = strings.ToValidUTF8(md[:maxCommentSize-200], "") + "\n\n… (report cut to fit one GitHub comment; see the workflow's pr-diff artifact)\n"
	}
	_, err := io.WriteString(w, md)
	return err
}

// writeRows writes at most maxTableRows rows and says how many it left out.
func writeRows(b *strings.Builder, rows []string) {
	for i, row := range rows {
		if i == maxTableRows {
			fmt.Fprintf(b, "\n… and %d more (see the workflow's pr-diff artifact)\n", len(rows)-maxTableRows)
			return
		}
		b.WriteString(row + "\n")
	}
}

// writeDestructive lists every deletion and replacement cdk diff predicts,
// stateful or not, and every removed stack.
func (r Report) writeDestructive(b *strings.Builder) {
	var rows []string
	for _, s := range r.RemovedStacks {
		rows = append(rows, fmt.Sprintf("| %s | (whole stack) | | | stack removed |", s))
	}
	for _, d := range r.Diffs {
		for _, c := range d.Changes {
			if !c.Destructive() {
				continue
			}
			what := c.Impact
			if c.Op == "-" {
				what = "removed (" + c.Impact + ")"
			}
			rows = append(rows, fmt.Sprintf("| %s | %s | `%s` | %s | %s |", d.Stack, cell(c.Path), c.LogicalID, c.Type, what))
		}
	}
	if len(rows) == 0 {
		b.WriteString("No resource is replaced or deleted.\n\n")
		return
	}
	fmt.Fprintf(b, "### Replacements and deletions (%d)\n\n| stack | construct path | logical ID | type | cdk diff |\n|---|---|---|---|---|\n", len(rows))
	writeRows(b, rows)
	b.WriteString("\n")
}

func (r Report) writeStacks(b *strings.Builder) {
	var changed, unchanged []StackDiff
	for _, d := range r.Diffs {
		if d.NoDifferences {
			unchanged = append(unchanged, d)
		} else {
			changed = append(changed, d)
		}
	}
	if len(changed) == 0 {
		fmt.Fprintf(b, "### Stacks\n\n**No differences** in any of the %d stacks.\n", len(unchanged))
		return
	}
	fmt.Fprintf(b, "### Stacks: %d changed, %d unchanged\n\n", len(changed), len(unchanged))
	// Stacks with destructive changes first, then by name.
	sort.SliceStable(changed, func(i, j int) bool {
		di, dj := destructiveCount(changed[i]), destructiveCount(changed[j])
		if (di > 0) != (dj > 0) {
			return di > 0
		}
		return changed[i].Stack < changed[j].Stack
	})
	for _, d := range changed {
		text := d.Text
		if len(text) > maxStackChars {
			text = strings.ToValidUTF8(text[:maxStackChars], "") + "\n… (truncated; the whole diff is " + d.Stack + ".diff in the workflow's pr-diff artifact)"
		}
		if b.Len()+len(text) > maxReportChars {
			fmt.Fprintf(b, "- **%s**: %s (diff omitted to fit one comment: %s.diff in the workflow's pr-diff artifact)\n", d.Stack, summary(d), d.Stack)
			continue
		}
		fence := fenceFor(text)
		fmt.Fprintf(b, "<details><summary><b>%s</b>: %s</summary>\n\n%stext\n%s\n%s\n</details>\n\n", d.Stack, summary(d), fence, text, fence)
	}
	if len(unchanged) > 0 {
		names := make([]string, len(unchanged))
		for i, d := range unchanged {
			names[i] = d.Stack
		}
		fmt.Fprintf(b, "Unchanged: %s.\n", strings.Join(names, ", "))
	}
}

func destructiveCount(d StackDiff) int {
	n := 0
	for _, c := range d.Changes {
		if c.Destructive() {
			n++
		}
	}
	return n
}

// summary counts a stack's resource changes, e.g. "1 added, 2 modified, 1 replaced".
func summary(d StackDiff) string {
	var added, modified, removed, replaced int
	for _, c := range d.Changes {
		switch {
		case c.Op == "+":
			added++
		case c.Op == "-":
			removed++
		case c.Destructive():
			replaced++
		default:
			modified++
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{removed, "removed"}, {replaced, "replaced"}, {added, "added"}, {modified, "modified"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if len(parts) == 0 {
		return "no resource changes (outputs, parameters or metadata only)"
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// fenceFor returns a backtick fence longer than any backtick run in text.
func fenceFor(text string) string {
	longest, run := 0, 0
	for _, r := range text {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}
