package deployconfig

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads the configuration's JSON into a tree that remembers where
// every key and value starts, so each problem can name its line and column.
// encoding/json cannot: it matches keys case-insensitively, keeps the last of
// two duplicate keys, stops at the first problem, and reports syntax errors
// as a byte offset with messages like "invalid character 'p' looking for
// beginning of value". The reader accepts exactly what json.Valid accepts
// (FuzzDecode checks it), minus nesting deeper than maxDepth; strings are
// unescaped by encoding/json itself.

// kind is the JSON type of a value.
type kind int

const (
	kindObject kind = iota
	kindArray
	kindString
	kindNumber
	kindBool
	kindNull
)

// position is a 1-based line and column (in characters, a tab counts one).
type position struct{ line, col int }

// node is one JSON value and where it starts.
type node struct {
	kind    kind
	pos     position
	text    string   // a string's value, a number's literal, "true" or "false"
	members []member // an object's members, in file order, duplicates left out
	elems   []*node  // an array's elements
}

// member is one key of an object and its value.
type member struct {
	key    string
	keyPos position
	value  *node
}

// maxDepth bounds nesting; the configuration itself is four levels deep.
const maxDepth = 64

// readProblem is a problem the reader found: a syntax error (fatal), or a
// key written twice or with escape sequences (the reader goes on).
type readProblem struct {
	pos  position
	path string
	msg  string
}

// reader walks data once, by byte offset.
type reader struct {
	data        []byte
	i           int
	lineStarts  []int
	keyProblems []readProblem
	tooDeep     bool
}

// readDocument parses data (one JSON object). It returns the root, the
// problems with keys found (duplicates, escape sequences), and the syntax
// error that stopped it, if any.
func readDocument(data []byte) (root *node, keyProblems []readProblem, syntax *readProblem) {
	r := &reader{data: data, lineStarts: []int{0}}
	for i, c := range data {
		if c == '\n' {
			r.lineStarts = append(r.lineStarts, i+1)
		}
	}
	root, syntax = r.document()
	return root, r.keyProblems, syntax
}

// pos converts a byte offset to a line and column.
func (r *reader) pos(off int) position {
	line := sort.Search(len(r.lineStarts), func(i int) bool { return r.lineStarts[i] > off }) - 1
	return position{line: line + 1, col: utf8.RuneCount(r.data[r.lineStarts[line]:off]) + 1}
}

func (r *reader) fail(off int, path, format string, args ...any) *readProblem {
	return &readProblem{pos: r.pos(off), path: path, msg: fmt.Sprintf(format, args...)}
}

func (r *reader) skipSpace() {
	for r.i < len(r.data) {
		switch r.data[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

func (r *reader) eof() bool { return r.i >= len(r.data) }

// yamlLine matches the first line of a YAML file: a document marker, a
// comment, a list item or "key: value".
var yamlLine = regexp.MustCompile(`^(---|#|- |-$|[A-Za-z_][A-Za-z0-9_.-]*\s*:(\s|$)|["'][^"']*["']\s*:(\s|$))`)

func (r *reader) document() (*node, *readProblem) {
	r.skipSpace()
	if r.eof() {
		return nil, r.fail(r.i, "", "the file is empty; want a JSON object (start from agentgate.example.json)")
	}
	if c := r.data[r.i]; c != '{' && c != '[' {
		line := r.data[r.i:]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		line = bytes.TrimRight(line, " \t\r")
		if line[0] == '"' && yamlLine.Match(line) {
			return nil, r.fail(r.i, "", "the file must be one JSON object: wrap its members in { … }")
		}
		if yamlLine.Match(line) {
			return nil, r.fail(r.i, "", "the config is JSON, but this looks like YAML (%q); write it as JSON, like agentgate.example.json", truncate(string(line), 40))
		}
	}
	start := r.i
	n, err := r.value("", 0)
	if err != nil {
		return nil, err
	}
	r.skipSpace()
	if !r.eof() {
		return nil, r.fail(r.i, "", "unexpected %s after the end of the config object: the file holds exactly one JSON object", r.describe())
	}
	if n.kind != kindObject {
		return nil, r.fail(start, "", "the config is %s; want a JSON object { … } (start from agentgate.example.json)", kindPhrase(n))
	}
	return n, nil
}

func (r *reader) value(path string, depth int) (*node, *readProblem) {
	r.skipSpace()
	if r.eof() {
		return nil, r.fail(r.i, path, "the file ends where a value should be")
	}
	start := r.i
	n := &node{pos: r.pos(start)}
	switch c := r.data[r.i]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			r.tooDeep = true
			return nil, r.fail(start, path, "nested deeper than %d levels", maxDepth)
		}
		if c == '{' {
			return n, r.object(n, path, depth+1)
		}
		return n, r.array(n, path, depth+1)
	case c == '"':
		s, err := r.str(path)
		n.kind, n.text = kindString, s
		return n, err
	case c == '-' || c >= '0' && c <= '9':
		n.kind = kindNumber
		if err := r.number(path); err != nil {
			return nil, err
		}
		n.text = string(r.data[start:r.i])
		return n, nil
	case c >= 'a' && c <= 'z':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(r.data[r.i:], []byte(lit)) {
				r.i += len(lit)
				n.kind, n.text = kindBool, lit
				if lit == "null" {
					n.kind = kindNull
				}
				return n, nil
			}
		}
	}
	return nil, r.unexpected(path, "a value")
}

func (r *reader) object(n *node, path string, depth int) *readProblem {
	n.kind = kindObject
	r.i++ // {
	seen := map[string]position{}
	comma := -1 // offset of the comma before the next key, if any
	for {
		r.skipSpace()
		if r.eof() {
			return r.fail(r.i, path, "the file ends inside the object opened at line %d, column %d: a '}' is missing", n.pos.line, n.pos.col)
		}
		c := r.data[r.i]
		if c == '}' {
			if comma >= 0 {
				return r.fail(comma, path, "trailing comma: JSON allows no ',' after the last member")
			}
			r.i++
			return nil
		}
		if c != '"' {
			return r.unexpected(path, "a key in double quotes")
		}
		keyOff := r.i
		key, err := r.str(path)
		if err != nil {
			return err
		}
		keyEnd := r.i
		child := childPath(path, key)
		r.skipSpace()
		if r.eof() || r.data[r.i] != ':' {
			return r.fail(r.i, child, "missing ':' after the key %q", key)
		}
		r.i++
		v, err := r.value(child, depth)
		if err != nil {
			return err
		}
		kp := r.pos(keyOff)
		if raw := r.data[keyOff:keyEnd]; bytes.IndexByte(raw, '\\') >= 0 {
			// "st\u0061ticIpCount" is staticIpCount to a JSON decoder, but
			// not a key the documentation spells: a key must read as written.
			r.keyProblems = append(r.keyProblems, readProblem{pos: kp, path: child,
				msg: fmt.Sprintf("the key %s is written with escape sequences (it reads %q): write the key as plain text", truncate(string(raw), 60), truncate(key, 40))})
		}
		if first, dup := seen[key]; dup {
			r.keyProblems = append(r.keyProblems, readProblem{pos: kp, path: child,
				msg: fmt.Sprintf("duplicate key (first at line %d, column %d): a key may appear once per object", first.line, first.col)})
		} else {
			seen[key] = kp
			n.members = append(n.members, member{key: key, keyPos: kp, value: v})
		}
		r.skipSpace()
		switch {
		case r.eof():
			return r.fail(r.i, path, "the file ends inside the object opened at line %d, column %d: a '}' is missing", n.pos.line, n.pos.col)
		case r.data[r.i] == ',':
			comma = r.i
			r.i++
		case r.data[r.i] == '}':
			comma = -1
		case r.data[r.i] == '"':
			return r.fail(r.i, path, "missing ',' before this key")
		default:
			return r.fail(r.i, path, "unexpected %s after the value of %q: want ',' or '}'", r.describe(), key)
		}
	}
}

func (r *reader) array(n *node, path string, depth int) *readProblem {
	n.kind = kindArray
	r.i++ // [
	comma := -1
	for {
		r.skipSpace()
		if r.eof() {
			return r.fail(r.i, path, "the file ends inside the array opened at line %d, column %d: a ']' is missing", n.pos.line, n.pos.col)
		}
		if r.data[r.i] == ']' {
			if comma >= 0 {
				return r.fail(comma, path, "trailing comma: JSON allows no ',' after the last element")
			}
			r.i++
			return nil
		}
		v, err := r.value(fmt.Sprintf("%s[%d]", path, len(n.elems)), depth)
		if err != nil {
			return err
		}
		n.elems = append(n.elems, v)
		r.skipSpace()
		switch {
		case r.eof():
			return r.fail(r.i, path, "the file ends inside the array opened at line %d, column %d: a ']' is missing", n.pos.line, n.pos.col)
		case r.data[r.i] == ',':
			comma = r.i
			r.i++
		case r.data[r.i] == ']':
			comma = -1
		default:
			return r.fail(r.i, path, "unexpected %s after an element: want ',' or ']'", r.describe())
		}
	}
}

// str reads one string at r.i (a '"') and returns its value.
func (r *reader) str(path string) (string, *readProblem) {
	start := r.i
	r.i++
	for {
		if r.eof() {
			return "", r.fail(start, path, "the file ends inside the string that starts here: a '\"' is missing")
		}
		c := r.data[r.i]
		switch {
		case c == '"':
			r.i++
			var s string
			if err := json.Unmarshal(r.data[start:r.i], &s); err != nil {
				return "", r.fail(start, path, "malformed string: %v", err)
			}
			return s, nil
		case c == '\\':
			r.i++
			if r.eof() {
				continue
			}
			switch r.data[r.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.i++
			case 'u':
				if r.i+5 > len(r.data) || !isHex(r.data[r.i+1:r.i+5]) {
					return "", r.fail(r.i-1, path, `malformed escape: \u takes four hex digits`)
				}
				r.i += 5
			default:
				return "", r.fail(r.i-1, path, `unknown escape \%s in a string (a backslash is written \\)`, r.runeAt(r.i))
			}
		case c < 0x20:
			return "", r.fail(r.i, path, "control character %q inside a string (a line break is written \\n, a tab \\t)", rune(c))
		default:
			r.i++
		}
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// number reads one number with JSON's grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *reader) number(path string) *readProblem {
	start := r.i
	digits := func() int {
		n := 0
		for !r.eof() && r.data[r.i] >= '0' && r.data[r.i] <= '9' {
			r.i++
			n++
		}
		return n
	}
	if r.data[r.i] == '-' {
		r.i++
	}
	first := r.i
	if digits() == 0 {
		return r.fail(start, path, "malformed number: a digit must follow '-'")
	}
	if r.data[first] == '0' && r.i-first > 1 {
		return r.fail(start, path, "malformed number %s: JSON numbers do not start with 0", r.data[start:r.i])
	}
	if !r.eof() && r.data[r.i] == '.' {
		r.i++
		if digits() == 0 {
			return r.fail(start, path, "malformed number: a digit must follow '.'")
		}
	}
	if !r.eof() && (r.data[r.i] == 'e' || r.data[r.i] == 'E') {
		r.i++
		if !r.eof() && (r.data[r.i] == '+' || r.data[r.i] == '-') {
			r.i++
		}
		if digits() == 0 {
			return r.fail(start, path, "malformed number: a digit must follow the exponent")
		}
	}
	return nil
}

// unexpected explains the byte at r.i, which is not what was wanted there.
func (r *reader) unexpected(path, want string) *readProblem {
	c := r.data[r.i]
	switch {
	case c == '/':
		return r.fail(r.i, path, "JSON has no comments (found %s where %s should be)", r.describe(), want)
	case c == '\'':
		return r.fail(r.i, path, "strings take double quotes (\"), not single quotes")
	case c == ',' && want == "a value":
		return r.fail(r.i, path, "a value is missing before this ','")
	case isWordByte(c):
		word := r.word()
		switch {
		case want == "a key in double quotes":
			return r.fail(r.i, path, "keys take double quotes: write %q", word)
		case word == "True" || word == "False" || word == "Null" || word == "TRUE" || word == "FALSE" || word == "NULL":
			return r.fail(r.i, path, "%s: JSON's literals are lowercase (true, false, null)", word)
		default:
			return r.fail(r.i, path, "unexpected %s: a string takes double quotes (%q); the literals are true, false and null", word, word)
		}
	}
	return r.fail(r.i, path, "unexpected %s where %s should be", r.describe(), want)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= '0' && c <= '9' || c == '-'
}

// word returns the identifier-like run at r.i, shortened for messages.
func (r *reader) word() string {
	j := r.i
	for j < len(r.data) && isWordByte(r.data[j]) {
		j++
	}
	return truncate(string(r.data[r.i:j]), 40)
}

// describe names the character at r.i for a message: 'x', or its code
// point when it cannot be seen.
func (r *reader) describe() string {
	s := r.runeAt(r.i)
	if strings.HasPrefix(s, "U+") {
		return s
	}
	return "'" + s + "'"
}

// runeAt names the character at off: itself when it can be seen, else its
// code point (and what it is, for the invisible ones editors leave behind).
func (r *reader) runeAt(off int) string {
	c, _ := utf8.DecodeRune(r.data[off:])
	if c != utf8.RuneError && unicode.IsGraphic(c) && !unicode.IsSpace(c) {
		return string(c)
	}
	if name, ok := invisible[c]; ok {
		return fmt.Sprintf("%U (%s)", c, name)
	}
	return fmt.Sprintf("%U", c)
}

// invisible names characters that look like nothing (or like a space) in
// an editor.
var invisible = map[rune]string{
	0xfeff: "a byte order mark",
	0x00a0: "a no-break space",
	0x200b: "a zero-width space",
	0x2028: "a line separator",
	0x3000: "an ideographic space",
}

// childPath appends an object key to a JSON path: fleets[0].relay, or
// a["odd.key"] for a key that is not a plain name.
func childPath(path, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// kindPhrase names a value's type and, for a scalar, the value itself.
func kindPhrase(n *node) string {
	switch n.kind {
	case kindObject:
		return "an object"
	case kindArray:
		return "an array"
	case kindString:
		return "the string " + strconv.Quote(truncate(n.text, 40))
	case kindNumber:
		return "the number " + truncate(n.text, 40)
	case kindNull:
		return "null"
	default:
		return n.text
	}
}
