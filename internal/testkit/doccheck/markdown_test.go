package doccheck

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository, seen from this package's directory.
const root = "../../.."

// generated are top-level directories that builds create; they are not part
// of the repository and are never searched.
var generated = map[string]bool{".git": true, "node_modules": true, "cdk.out": true, "bin": true, "pr-diff.diffs": true}

// markdownFiles lists README.md, docs/**/*.md and every README.md, as
// slash paths relative to the root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if generated[rel] || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() == "README.md" || strings.HasPrefix(rel, "docs/") && strings.HasSuffix(rel, ".md") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found only %v: is root wrong?", files)
	}
	return files
}

// doc is one Markdown file split into prose (code removed) and its code.
type doc struct {
	path  string // relative to the root
	raw   string
	prose string   // the text with fenced blocks and code spans blanked
	spans []string // inline code spans
	// blocks are fenced code blocks: info string and body.
	blocks []block
}

type block struct{ info, body string }

var (
	fenceRe = regexp.MustCompile("(?ms)^[ \t]*(```|~~~)([^\n]*)\n(.*?)^[ \t]*(```|~~~)[ \t]*$")
	spanRe  = regexp.MustCompile("`([^`\n]+)`")
)

func readDoc(t *testing.T, repo, rel string) doc {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, rel))
	if err != nil {
		t.Fatal(err)
	}
	d := doc{path: rel, raw: string(b)}
	prose := fenceRe.ReplaceAllStringFunc(d.raw, func(m string) string {
		sub := fenceRe.FindStringSubmatch(m)
		d.blocks = append(d.blocks, block{strings.TrimSpace(sub[2]), sub[3]})
		return strings.Repeat("\n", strings.Count(m, "\n"))
	})
	d.prose = spanRe.ReplaceAllStringFunc(prose, func(m string) string {
		d.spans = append(d.spans, m[1:len(m)-1])
		return strings.Repeat(" ", len(m))
	})
	return d
}

var (
	linkRe = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refRe  = regexp.MustCompile(`(?m)^[ \t]*\[[^\]]+\]:[ \t]*<?(\S+?)>?(?:[ \t]+"[^"]*")?[ \t]*$`)
	// schemeRe matches an absolute URL (https:, mailto:).
	schemeRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// links returns the link targets in the prose.
func (d doc) links() []string {
	var out []string
	for _, m := range linkRe.FindAllStringSubmatch(d.prose, -1) {
		out = append(out, m[1])
	}
	for _, m := range refRe.FindAllStringSubmatch(d.prose, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors returns the heading anchors GitHub generates for a Markdown
// file: lowercase, punctuation other than '-' and '_' dropped, spaces
// to '-', repeats numbered -1, -2, ….
func anchors(md string) map[string]bool {
	d := doc{raw: md}
	prose := fenceRe.ReplaceAllString(d.raw, "")
	seen := map[string]int{}
	out := map[string]bool{}
	for _, line := range strings.Split(prose, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if !strings.HasPrefix(trimmed, "#") {
			continue
		}
		text := strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// outsideRepo names a reference to something that is not in the
// repository: the folder beside it that only the authors have, or the
// spec kept there.
var outsideRepo = regexp.MustCompile(`(^|[^A-Za-z0-9_.-])(shared/|\.\./shared|MISSION(\.md)?\b)`)

// pendingOutside lists files that still carry such a reference because
// they belong to other work; each entry fails the test once the file is
// clean, so the list cannot go stale.
var pendingOutside = map[string]bool{}

// TestMarkdownLinksResolve: every relative link resolves to a file in the
// repository (and a #fragment to a heading of it); nothing links or refers
// to the authors' folder beside the repository.
func TestMarkdownLinksResolve(t *testing.T) {
	checked := 0
	for _, rel := range markdownFiles(t) {
		problems, n := linkProblems(t, root, rel)
		checked += n
		for _, p := range problems {
			t.Error(p)
		}
		m := outsideRepo.FindStringSubmatch(readDoc(t, root, rel).raw)
		switch {
		case m != nil && !pendingOutside[rel]:
			t.Errorf("%s refers to %q, which is not in the repository: cite the repository's own file or the public source", rel, m[2])
		case m == nil && pendingOutside[rel]:
			t.Errorf("%s no longer refers outside the repository: remove it from pendingOutside", rel)
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found: the link pattern is broken")
	}
}

// linkProblems checks the relative links of the Markdown file rel in the
// repository at repo; it returns what is wrong and how many links it checked.
func linkProblems(t *testing.T, repo, rel string) (problems []string, checked int) {
	t.Helper()
	absRoot, err := filepath.Abs(repo)
	if err != nil {
		t.Fatal(err)
	}
	d := readDoc(t, repo, rel)
	dir := filepath.Dir(filepath.Join(absRoot, rel))
	for _, target := range d.links() {
		if schemeRe.MatchString(target) {
			continue
		}
		checked++
		path, frag, _ := strings.Cut(target, "#")
		file := filepath.Join(absRoot, rel)
		if path != "" {
			file = filepath.Join(dir, filepath.FromSlash(path))
		}
		inRepo, err := filepath.Rel(absRoot, file)
		if err != nil || inRepo == ".." || strings.HasPrefix(inRepo, ".."+string(filepath.Separator)) {
			problems = append(problems, fmt.Sprintf("%s: link %q leaves the repository", rel, target))
			continue
		}
		if first := strings.Split(filepath.ToSlash(inRepo), "/")[0]; first == "shared" || generated[first] {
			problems = append(problems, fmt.Sprintf("%s: link %q points into %s/, which is not part of the repository", rel, target, first))
			continue
		}
		info, err := os.Stat(file)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: link %q: no such file in the repository", rel, target))
			continue
		}
		if frag != "" && !info.IsDir() && strings.HasSuffix(file, ".md") {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(b))[frag] {
				problems = append(problems, fmt.Sprintf("%s: link %q: %s has no heading with anchor #%s", rel, target, filepath.ToSlash(inRepo), frag))
			}
		}
	}
	return problems, checked
}

// TestLinkProblemsFindEachKind runs the link check on a small made-up
// repository with one link of each kind.
func TestLinkProblemsFindEachKind(t *testing.T) {
	repo := t.TempDir()
	files := map[string]string{
		"docs/a.md": "# Title\n## Section two\n",
		"README.md": strings.Join([]string{
			"[ok](docs/a.md) [ok anchor](docs/a.md#section-two) [own anchor](#readme) [web](https://example.com/x.md)",
			"[missing](docs/b.md) [bad anchor](docs/a.md#section-three) [outside](../shared/MISSION.md)",
			"[generated](cdk.out/x.json) `[in code](docs/nope.md)`",
			"```", "[in a block](docs/nope.md)", "```",
			"[ref]: docs/c.md",
			"# README",
		}, "\n"),
	}
	for name, text := range files {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	problems, checked := linkProblems(t, repo, "README.md")
	want := []string{
		`README.md: link "docs/b.md": no such file in the repository`,
		`README.md: link "docs/a.md#section-three": docs/a.md has no heading with anchor #section-three`,
		`README.md: link "../shared/MISSION.md" leaves the repository`,
		`README.md: link "cdk.out/x.json" points into cdk.out/, which is not part of the repository`,
		`README.md: link "docs/c.md": no such file in the repository`,
	}
	if strings.Join(problems, "\n") != strings.Join(want, "\n") || checked != 8 {
		t.Errorf("checked %d links, problems:\n%s\nwant 8 and:\n%s", checked, strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}

// absentByDesign are paths the docs name that exist only once a change
// needs them.
var absentByDesign = map[string]bool{
	"stacks/stackguard-overrides.json": true, // the guard's overrides: added by the change that needs one
}

// TestCodePathsExist: a file or folder named in code font
// (`contract/timing`, `docs/benchmarks.md`, `contract/timing.CheckRule`)
// exists, relative to the Markdown file or to the root.
func TestCodePathsExist(t *testing.T) {
	pathRe := regexp.MustCompile(`^\.?/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+/?$`)
	identRe := regexp.MustCompile(`\.[A-Z][A-Za-z0-9_]*$`) // a Go name after the package path
	top := map[string]bool{}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !generated[e.Name()] {
			top[e.Name()] = true
		}
	}
	checked := 0
	for _, rel := range markdownFiles(t) {
		d := readDoc(t, root, rel)
		for _, span := range d.spans {
			if !pathRe.MatchString(span) || strings.Contains(span, "...") {
				continue
			}
			p := strings.TrimPrefix(strings.TrimPrefix(span, "./"), "/")
			p = identRe.ReplaceAllString(p, "")
			if absentByDesign[p] {
				continue
			}
			first := strings.Split(p, "/")[0]
			local := filepath.Join(root, filepath.Dir(rel), p)
			if _, err := os.Stat(local); err == nil {
				checked++
				continue
			}
			if !top[first] {
				continue // not a repository path (a topic, a module path, …)
			}
			checked++
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s names `%s`, which is not in the repository", rel, span)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no path in code font found: the pattern is broken")
	}
}

func TestAnchors(t *testing.T) {
	got := anchors("# Decisions and their reasons\n## The relay: `proxyimage/` (Go)\n```\n# not a heading\n```\n## Foundation\n## Foundation\n")
	for _, want := range []string{"decisions-and-their-reasons", "the-relay-proxyimage-go", "foundation", "foundation-1"} {
		if !got[want] {
			t.Errorf("no anchor %q in %v", want, got)
		}
	}
	if got["not-a-heading"] {
		t.Error("a line in a code block became an anchor")
	}
}
