package doccheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// pendingTargets are make targets the README documents that other work
// adds to the Makefile; an entry fails the test once the Makefile has the
// target, so the list cannot go stale.
var pendingTargets = map[string]bool{}

// command is one shell command the README shows, split into words.
type command struct {
	where string // "README.md block 3" or "README.md code span"
	words []string
	dir   string // the repository directory it runs in: "" or a block's earlier `cd DIR`
}

// readmeCommands returns the commands in README.md's shell code blocks
// (continuation lines joined, comments dropped) and the code spans that
// show a command to type: make, a built program, go run/build of a package.
// (Prose that names a tool, "the script runs `cdk diff --template`", is
// not a command.)
func readmeCommands(t *testing.T) []command {
	t.Helper()
	d := readDoc(t, root, "README.md")
	var cmds []command
	for i, b := range d.blocks {
		if b.info != "sh" && b.info != "bash" && b.info != "" {
			continue
		}
		text := strings.ReplaceAll(b.body, "\\\n", " ")
		dir := ""
		for _, line := range strings.Split(text, "\n") {
			w := shellWords(line)
			if len(w) == 2 && w[0] == "cd" {
				dir = w[1]
				continue
			}
			if len(w) > 0 {
				cmds = append(cmds, command{"README.md code block " + strconv.Itoa(i+1), w, dir})
			}
		}
	}
	for _, s := range d.spans {
		if w := shellWords(s); len(w) > 0 && isCommandWord(w) {
			cmds = append(cmds, command{"README.md `" + s + "`", w, ""})
		}
	}
	return cmds
}

// isCommandWord reports a code span that shows a command to run (not a
// flag, a file name or a tool's name).
func isCommandWord(w []string) bool {
	w = w[envPrefix(w):]
	return w[0] == "make" || strings.HasPrefix(w[0], "bin/") || w[0] == "go" && len(w) > 2
}

var envRe = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// envPrefix counts the leading VAR=value words.
func envPrefix(w []string) int {
	n := 0
	for n < len(w)-1 && envRe.MatchString(w[n]) {
		n++
	}
	return n
}

// shellWords splits a command line into words: quotes group, a '#' that
// starts a word starts a comment, and the placeholders the README uses
// (<customer>, <test thing>) are one word each.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	angle := false
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case angle:
			cur.WriteRune(r)
			if r == '>' {
				angle = false
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '<':
			cur.WriteRune(r)
			angle, inWord = true, true
		case r == '#' && !inWord:
			return words
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// makefile returns the Makefile's targets and the variables it reads.
func makefile(t *testing.T) (targets, vars map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets, vars = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_./-]+(?:[ \t]+[A-Za-z0-9_./-]+)*)[ \t]*:([^=]|$)`).FindAllStringSubmatch(string(b), -1) {
		for _, name := range strings.Fields(m[1]) {
			targets[name] = true
		}
	}
	for _, m := range regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`).FindAllStringSubmatch(string(b), -1) {
		vars[m[1]] = true
	}
	return targets, vars
}

// TestREADMECommandsExist: every make target and variable the README shows
// is in the Makefile, cdk is only run through npx (it is on PATH only
// inside make), and every flag given to one of the project's programs is a
// flag that program (and subcommand) has, read from its -h.
func TestREADMECommandsExist(t *testing.T) {
	targets, vars := makefile(t)
	for name := range pendingTargets {
		if targets[name] {
			t.Errorf("make %s is in the Makefile now: remove it from pendingTargets", name)
		}
	}
	cmds := readmeCommands(t)
	built := map[string]string{} // output path → ./cmd/<program>
	checkedMake, checkedFlags := 0, 0
	for _, c := range cmds {
		w := c.words[envPrefix(c.words):]
		for _, env := range c.words[:envPrefix(c.words)] {
			if name, _, _ := strings.Cut(env, "="); !vars[name] {
				t.Errorf("%s: %s is not a variable the Makefile reads", c.where, name)
			}
		}
		switch {
		case w[0] == "make":
			for _, arg := range w[1:] {
				if strings.HasPrefix(arg, "-") {
					continue
				}
				if name, _, isVar := strings.Cut(arg, "="); isVar {
					if !vars[name] {
						t.Errorf("%s: make variable %s is not read by the Makefile", c.where, name)
					}
					continue
				}
				checkedMake++
				if !targets[arg] && !pendingTargets[arg] {
					t.Errorf("%s: make %s: no such target in the Makefile", c.where, arg)
				}
			}
		case w[0] == "cdk":
			t.Errorf("%s: cdk is on PATH only inside make; show npx cdk", c.where)
		case w[0] == "go" && len(w) > 1 && (w[1] == "run" || w[1] == "build"):
			pkg, out := "", ""
			for i := 2; i < len(w); i++ {
				switch {
				case w[i] == "-o" && i+1 < len(w):
					out = w[i+1]
					i++
				case strings.HasPrefix(w[i], "./") || w[i] == "." && c.dir != "":
					pkg = w[i]
				}
				if pkg != "" {
					// A program of another module (after a cd) is that
					// module's test's business, not this check's.
					if w[1] == "run" && c.dir == "" {
						checkedFlags += checkFlags(t, c.where, pkg, w[i+1:])
					}
					break
				}
			}
			if _, err := os.Stat(filepath.Join(root, c.dir, "go.mod")); c.dir != "" && err != nil {
				t.Errorf("%s: go %s in %s: no Go module there", c.where, w[1], c.dir)
			}
			if _, err := os.Stat(filepath.Join(root, c.dir, pkg)); pkg == "" || err != nil {
				t.Errorf("%s: no package %q in the repository", c.where, pkg)
			}
			if w[1] == "build" && out != "" {
				built[out] = pkg
			}
		default:
			if pkg, ok := built[strings.TrimPrefix(w[0], "./")]; ok {
				checkedFlags += checkFlags(t, c.where, pkg, w[1:])
			} else if strings.HasPrefix(w[0], "bin/") || strings.HasPrefix(w[0], "./") {
				t.Errorf("%s: %s is not built by a command before it", c.where, w[0])
			}
		}
	}
	if checkedMake < 3 || checkedFlags < 5 {
		t.Fatalf("checked %d make targets and %d flags: the README parsing is broken", checkedMake, checkedFlags)
	}
}

// checkFlags checks the flags in args against what the program at pkg
// prints for -h (for its subcommand, when it has some); it returns how
// many it checked.
func checkFlags(t *testing.T, where, pkg string, args []string) int {
	t.Helper()
	help := programHelp(t, pkg)
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub = args[0]
	}
	flags, ok := help[sub]
	if !ok {
		t.Errorf("%s: %s has no subcommand %q", where, pkg, sub)
		return 0
	}
	n := 0
	for _, a := range args {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		n++
		if !flags[name] {
			t.Errorf("%s: %s %s has no flag -%s", where, pkg, sub, name)
		}
	}
	return n
}

var helpCache = map[string]map[string]map[string]bool{}

// programHelp builds the program at pkg and reads its flags from -h: for
// the program itself (key "") and, when its usage line lists subcommands
// ("usage: prog run|smoke [flags]"), for each of them.
func programHelp(t *testing.T, pkg string) map[string]map[string]bool {
	t.Helper()
	if h, ok := helpCache[pkg]; ok {
		return h
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	flagRe := regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9][A-Za-z0-9-]*)\b`)
	read := func(args ...string) map[string]bool {
		out, _ := exec.Command(bin, append(args, "-h")...).CombinedOutput() // -h may exit 0 or 2
		flags := map[string]bool{}
		for _, m := range flagRe.FindAllStringSubmatch(string(out), -1) {
			flags[m[1]] = true
		}
		return flags
	}
	h := map[string]map[string]bool{"": read()}
	top, _ := exec.Command(bin, "-h").CombinedOutput()
	if m := regexp.MustCompile(`usage: \S+ ([a-z]+(\|[a-z]+)+)`).FindStringSubmatch(string(top)); m != nil {
		for _, sub := range strings.Split(m[1], "|") {
			h[sub] = read(sub)
			if len(h[sub]) == 0 {
				t.Fatalf("%s %s -h lists no flags:\n%s", pkg, sub, top)
			}
		}
	}
	helpCache[pkg] = h
	return h
}

// The parser itself: a comment, quotes, a placeholder with a space and a
// continuation line.
func TestShellWords(t *testing.T) {
	got := shellWords(`bin/x smoke --thing <test thing> --query "a b" 'c' # a comment`)
	want := []string{"bin/x", "smoke", "--thing", "<test thing>", "--query", "a b", "c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
}
