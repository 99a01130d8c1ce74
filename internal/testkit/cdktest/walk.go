package cdktest

import (
	"fmt"
	"strings"
	"testing"
)

// Lookup walks v, a template as TemplateJSON decodes it, along path: a
// string step reads an object's key, an int step a list's element. The
// error names the step that failed and what was found there.
func Lookup(v any, path ...any) (any, error) {
	cur := v
	for i, step := range path {
		switch s := step.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s: want an object to read %q, found %s", pathString(path[:i]), s, describe(cur))
			}
			next, ok := m[s]
			if !ok {
				return nil, fmt.Errorf("%s: no key %q (keys: %s)", pathString(path[:i]), s, keys(m))
			}
			cur = next
		case int:
			l, ok := cur.([]any)
			if !ok {
				return nil, fmt.Errorf("%s: want a list to read [%d], found %s", pathString(path[:i]), s, describe(cur))
			}
			if s < 0 || s >= len(l) {
				return nil, fmt.Errorf("%s: index %d out of a list of %d", pathString(path[:i]), s, len(l))
			}
			cur = l[s]
		default:
			return nil, fmt.Errorf("path step %d is a %T; use a string key or an int index", i, step)
		}
	}
	return cur, nil
}

// Get is Lookup with the result's type checked: it fails the test, naming
// the path and what was found, instead of panicking on a type assertion.
func Get[T any](t testing.TB, v any, path ...any) T {
	t.Helper()
	got, err := Lookup(v, path...)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := got.(T)
	if !ok {
		var want T
		t.Fatalf("%s: want %T, found %s", pathString(path), want, describe(got))
	}
	return out
}

// Object is Get for a JSON object.
func Object(t testing.TB, v any, path ...any) map[string]any {
	t.Helper()
	return Get[map[string]any](t, v, path...)
}

// List is Get for a JSON list.
func List(t testing.TB, v any, path ...any) []any {
	t.Helper()
	return Get[[]any](t, v, path...)
}

// Objects is Get for a JSON list of objects.
func Objects(t testing.TB, v any, path ...any) []map[string]any {
	t.Helper()
	l := List(t, v, path...)
	out := make([]map[string]any, len(l))
	for i := range l {
		out[i] = Object(t, l, i)
	}
	return out
}

func pathString(path []any) string {
	if len(path) == 0 {
		return "(top)"
	}
	var b strings.Builder
	for _, s := range path {
		if i, ok := s.(int); ok {
			fmt.Fprintf(&b, "[%d]", i)
		} else {
			fmt.Fprintf(&b, ".%v", s)
		}
	}
	return b.String()
}

func describe(v any) string {
	s := fmt.Sprintf("%v", v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%T %s", v, s)
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	if len(ks) > 20 {
		ks = ks[:20]
	}
	return strings.Join(ks, ", ")
}

// ResourcesOfType returns the resources of type typ in tmpl (a template as
// TemplateJSON returns it) keyed by logical ID, each the whole resource
// (Type, Properties, ...). An empty typ returns every resource.
func ResourcesOfType(t testing.TB, tmpl map[string]any, typ string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	res, ok := tmpl["Resources"]
	if !ok {
		return out
	}
	for id := range Object(t, res) {
		r := Object(t, res, id)
		if typ == "" || r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// Properties returns a resource's Properties: nil when it has none, a test
// failure when they are not an object.
func Properties(t testing.TB, resource map[string]any) map[string]any {
	t.Helper()
	if _, ok := resource["Properties"]; !ok {
		return nil
	}
	return Object(t, resource, "Properties")
}

// Pairs reads a list of objects such as CloudFormation's attribute lists
// ([{"Key": k, "Value": v}]) or container environments ([{"Name": n,
// "Value": v}]) at path into a map from each entry's keyField to its
// valueField. A missing list is an empty map; an entry without a string
// keyField fails the test.
func Pairs(t testing.TB, v any, keyField, valueField string, path ...any) map[string]any {
	t.Helper()
	out := map[string]any{}
	if _, err := Lookup(v, path...); err != nil {
		return out
	}
	for _, e := range Objects(t, v, path...) {
		out[Get[string](t, e, keyField)] = e[valueField]
	}
	return out
}
