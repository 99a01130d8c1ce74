package deployconfig

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// assigner copies a parsed JSON tree into a Config by the fields' json tags,
// matched exactly: a key spelled differently (even only in case) is an
// unknown field, not silently taken. It records every problem and goes on,
// so one run reports them all, and it remembers where each value started so
// validation errors can point into the file too.
type assigner struct {
	problems []Problem
	// where maps a JSON path to the position of its value.
	where map[string]position
	// mistyped holds the paths whose value was refused (left at zero).
	mistyped []string
}

func newAssigner() *assigner { return &assigner{where: map[string]position{}} }

func (a *assigner) problem(p position, path, format string, args ...any) {
	a.problems = append(a.problems, Problem{Line: p.line, Column: p.col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// assign sets v from n. v's type is one of the kinds a configuration uses;
// any other is a programming error, caught by the package's tests.
func (a *assigner) assign(n *node, v reflect.Value, path string) {
	a.where[path] = n.pos
	if n.kind == kindNull {
		a.mistyped = append(a.mistyped, path)
		a.problem(n.pos, path, "null; leave the field out to take its default")
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.kind != kindObject {
			a.wrongType(n, v, path)
			return
		}
		fields := jsonFields(v.Type())
		for _, m := range n.members {
			child := childPath(path, m.key)
			idx, ok := fields[m.key]
			if !ok {
				a.problem(m.keyPos, child, "unknown field%s", suggest(m.key, fields))
				continue
			}
			a.assign(m.value, v.Field(idx), child)
		}
	case reflect.Slice:
		if n.kind != kindArray {
			a.wrongType(n, v, path)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.elems), len(n.elems))
		for i, e := range n.elems {
			a.assign(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		a.assign(n, p.Elem(), path)
		v.Set(p)
	case reflect.String:
		if n.kind != kindString {
			a.wrongType(n, v, path)
			return
		}
		v.SetString(n.text)
	case reflect.Bool:
		if n.kind != kindBool {
			a.wrongType(n, v, path)
			return
		}
		v.SetBool(n.text == "true")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.kind != kindNumber {
			a.wrongType(n, v, path)
			return
		}
		i, err := strconv.ParseInt(n.text, 10, v.Type().Bits())
		if err != nil {
			a.mistyped = append(a.mistyped, path)
			if strings.ContainsAny(n.text, ".eE") {
				a.problem(n.pos, path, "%s; want a whole number (no fraction or exponent)", truncate(n.text, 40))
			} else {
				a.problem(n.pos, path, "%s is out of range", truncate(n.text, 40))
			}
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		if n.kind != kindNumber {
			a.wrongType(n, v, path)
			return
		}
		f, err := strconv.ParseFloat(n.text, 64)
		if err != nil {
			a.mistyped = append(a.mistyped, path)
			a.problem(n.pos, path, "%s is out of range", truncate(n.text, 40))
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("deployconfig: field %s has type %s, which the decoder does not support", path, v.Type()))
	}
}

func (a *assigner) wrongType(n *node, v reflect.Value, path string) {
	a.mistyped = append(a.mistyped, path)
	a.problem(n.pos, path, "%s; want %s", kindPhrase(n), wantPhrase(v.Type()))
}

// wantPhrase says what JSON a Go type takes.
func wantPhrase(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array of " + strings.TrimPrefix(strings.TrimPrefix(wantPhrase(t.Elem()), "an "), "a ") + "s"
	case reflect.Pointer:
		return wantPhrase(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Float64:
		return "a number"
	default:
		return "a whole number"
	}
}

// jsonFields maps each exported field's json name to its index.
func jsonFields(t reflect.Type) map[string]int {
	fields := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = i
	}
	return fields
}

// suggest names the field a mistyped key was probably meant to be, or
// lists the fields allowed here.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sortByIndex(names, fields)
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf("; did you mean %q? Field names are case-sensitive", name)
		}
	}
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; allowed here: " + strings.Join(names, ", ")
}

func sortByIndex(names []string, fields map[string]int) {
	for i := 1; i < len(names); i++ {
		for j := i; j > 0 && fields[names[j]] < fields[names[j-1]]; j-- {
			names[j], names[j-1] = names[j-1], names[j]
		}
	}
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
