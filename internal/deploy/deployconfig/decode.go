package deployconfig

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration file.
type Problem struct {
	// Line and Column (1-based, in characters) locate the key or value at
	// fault; 0 when the problem concerns the whole file.
	Line, Column int
	// Path is the JSON path of the field, e.g. "fleets[1].relay.maxTasks";
	// empty for the whole file.
	Path string
	// Message says what is wrong and what is allowed.
	Message string
}

// DecodeError lists every problem found in a configuration file, in file
// order.
type DecodeError struct {
	// File is the file's name as given to Load; empty for Decode.
	File     string
	Problems []Problem
}

func (e *DecodeError) Error() string {
	if len(e.Problems) == 1 {
		sep := ": "
		if e.File != "" {
			sep = " " // "deployment config agentgate.json:7:19: …"
		}
		return "deployment config" + sep + e.line(e.Problems[0])
	}
	var b strings.Builder
	b.WriteString("deployment config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + e.line(p))
	}
	return b.String()
}

// line formats one problem as "file:line:column: path: message" (the form
// compilers use, so editors can jump to it); without a file name the place
// reads "line L, column C".
func (e *DecodeError) line(p Problem) string {
	var parts []string
	switch {
	case p.Line > 0 && e.File != "":
		parts = append(parts, fmt.Sprintf("%s:%d:%d", e.File, p.Line, p.Column))
	case p.Line > 0:
		parts = append(parts, fmt.Sprintf("line %d, column %d", p.Line, p.Column))
	case e.File != "":
		parts = append(parts, e.File)
	}
	if p.Path != "" {
		parts = append(parts, p.Path)
	}
	return strings.Join(append(parts, p.Message), ": ")
}

// Load reads, decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	cfg, err := decode(data)
	var de *DecodeError
	if errors.As(err, &de) {
		de.File = path
	}
	return cfg, err
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("deployment config %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("deployment config %s: %w", path, err)
	}
	return data, nil
}

// Decode reads one JSON object, applies defaults and validates it. Every
// problem is reported at once in a *DecodeError: keys not spelled exactly
// as documented, values of the wrong type, rule violations, duplicate and
// escaped keys; a syntax error stops the reading and is reported with what
// came before, and a file that is not UTF-8 is refused before it is read.
func Decode(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("deployment config: %w", err)
	}
	return decode(data)
}

func decode(data []byte) (*Config, error) {
	if len(data) > MaxFileBytes {
		return nil, &DecodeError{Problems: []Problem{{Message: fmt.Sprintf("the file is larger than %d bytes (1 MiB); a deployment config is a few KB", MaxFileBytes)}}}
	}
	data, bad := checkEncoding(data)
	if bad != nil {
		return nil, &DecodeError{Problems: []Problem{*bad}}
	}
	root, keyProblems, syntax := readDocument(data)
	var problems []Problem
	for _, d := range keyProblems {
		problems = append(problems, Problem{Line: d.pos.line, Column: d.pos.col, Path: d.path, Message: d.msg})
	}
	if syntax != nil {
		problems = append(problems, Problem{Line: syntax.pos.line, Column: syntax.pos.col, Path: syntax.path, Message: syntax.msg})
		return nil, &DecodeError{Problems: sortProblems(problems)}
	}
	var cfg Config
	a := newAssigner()
	a.assign(root, reflect.ValueOf(&cfg).Elem(), "")
	problems = append(problems, a.problems...)
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		for _, e := range unjoin(err) {
			var fe *FieldError
			if !errors.As(e, &fe) {
				problems = append(problems, Problem{Message: e.Error()})
				continue
			}
			if a.explains(fe.Field) {
				continue // the field's value was refused above; its zero value proves nothing
			}
			p := a.nearest(fe.Field)
			problems = append(problems, Problem{Line: p.line, Column: p.col, Path: fe.Field, Message: fe.valueAndAllowed()})
		}
	}
	if len(problems) > 0 {
		return nil, &DecodeError{Problems: sortProblems(problems)}
	}
	return &cfg, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// sortProblems orders problems by place in the file; those without a place
// come last, in the order found.
func sortProblems(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return ps
}

var indexRe = regexp.MustCompile(`\[[0-9]+\]`)

// fieldPaths splits a validation error's field into the paths it concerns:
// "fleets[0].relay.idleTimeoutSec/nlbIdleTimeoutSec" concerns two.
func fieldPaths(field string) []string {
	first, rest, ok := strings.Cut(field, "/")
	if !ok {
		return []string{field}
	}
	paths := []string{first}
	prefix := first[:strings.LastIndex(first, ".")+1]
	for _, name := range strings.Split(rest, "/") {
		paths = append(paths, prefix+name)
	}
	return paths
}

// explains reports whether a refused value (wrong type, null) lies on or
// under one of field's paths, or contains it.
func (a *assigner) explains(field string) bool {
	for _, f := range fieldPaths(field) {
		for _, bad := range a.mistyped {
			if strings.Contains(f, "[*]") {
				bad = indexRe.ReplaceAllString(bad, "[*]")
			}
			if related(f, bad) {
				return true
			}
		}
	}
	return false
}

func related(a, b string) bool {
	under := func(child, parent string) bool {
		return strings.HasPrefix(child, parent+".") || strings.HasPrefix(child, parent+"[")
	}
	return a == b || under(a, b) || under(b, a)
}

// nearest returns where field's value is in the file, or where its
// closest enclosing object is when the field was left out (defaulted).
func (a *assigner) nearest(field string) position {
	path := fieldPaths(field)[0]
	for {
		if p, ok := a.where[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return a.where[""]
		}
		path = path[:i]
	}
}
