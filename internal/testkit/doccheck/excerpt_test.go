package doccheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// excerptMark starts a README code block quoted from a file of the
// repository: "// From examples/vendoragent/vendor.go".
const excerptMark = "// From "

// excerptMismatch returns the first line of excerpt (a code block quoted
// from src, "// …" lines marking what it leaves out) that src does not have
// in that order, and whether there is one.
func excerptMismatch(excerpt, src string) (string, bool) {
	srcLines := strings.Split(src, "\n")
	i := 0
	for _, line := range strings.Split(strings.TrimRight(excerpt, "\n"), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "// …") {
			continue
		}
		for i < len(srcLines) && srcLines[i] != line {
			i++
		}
		if i == len(srcLines) {
			return line, true
		}
		i++
	}
	return "", false
}

// TestREADMEExcerptsMatchTheirFiles: a README code block that starts with
// "// From <path>" shows lines of that file, verbatim and in order, so the
// code a reader copies is the code the tests build and run.
func TestREADMEExcerptsMatchTheirFiles(t *testing.T) {
	d := readDoc(t, root, "README.md")
	checked := 0
	for i, b := range d.blocks {
		first, rest, _ := strings.Cut(b.body, "\n")
		path, ok := strings.CutPrefix(strings.TrimSpace(first), excerptMark)
		if !ok {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, path))
		if err != nil {
			t.Errorf("README.md code block %d quotes %s: %v", i+1, path, err)
			continue
		}
		if line, bad := excerptMismatch(rest, string(src)); bad {
			t.Errorf("README.md code block %d: %s has no line %q (in this order): update the excerpt", i+1, path, line)
		}
		checked++
	}
	if checked == 0 {
		t.Errorf("README.md has no code block starting %q; the agent library's example should be one", excerptMark+"examples/vendoragent/vendor.go")
	}
}

func TestExcerptMismatch(t *testing.T) {
	src := "func f() {\n\ta := 1\n\tb := 2\n\treturn\n}\n"
	for _, tc := range []struct {
		excerpt, want string
		bad           bool
	}{
		{"func f() {\n\t// …\n\treturn\n", "", false},
		{"\ta := 1\n\tb := 2\n", "", false},
		{"\tb := 2\n\ta := 1\n", "\ta := 1", true}, // out of order
		{"\ta := 3\n", "\ta := 3", true},
		{"a := 1\n", "a := 1", true}, // indentation is part of the line
	} {
		if got, bad := excerptMismatch(tc.excerpt, src); got != tc.want || bad != tc.bad {
			t.Errorf("excerptMismatch(%q) = %q, %v; want %q, %v", tc.excerpt, got, bad, tc.want, tc.bad)
		}
	}
}
