package policyeval

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// elemKind is what one position of a compiled pattern matches.
type elemKind uint8

const (
	lit   elemKind = iota // exactly this rune
	star                  // any run of runes, possibly empty
	quest                 // exactly one rune
)

type elem struct {
	kind elemKind
	r    rune
}

// pattern is a compiled wildcard pattern. Runes that came from a variable's
// value or an escape are always literal.
type pattern []elem

// variableName is what may stand between ${ and }: IAM and IoT key names
// such as credentials-iot:ThingName or iot:Connection.Thing.Attributes[x].
// Default values (${key, 'default'}) are not supported.
var variableName = regexp.MustCompile(`^[A-Za-z0-9:._/\[\]-]+$`)

// checkVariables reports a malformed ${...} in s.
func checkVariables(s string) error {
	_, err := parseVariables(s, nil, true)
	return err
}

// compile turns s into a pattern. With variables, ${name} is replaced by
// ctx[name] (ok is false when it has no value) and ${*}, ${?}, ${$} are
// literal '*', '?', '$'. Without variables every '$' is literal.
func compile(s string, ctx map[string]string, variables bool) (p pattern, ok bool) {
	if !variables {
		return plain(s), true
	}
	p, err := parseVariables(s, ctx, false)
	if err != nil {
		return nil, false // Parse rejects these; fail closed if called directly
	}
	return p, p != nil
}

func plain(s string) pattern {
	p := make(pattern, 0, len(s))
	for _, r := range s {
		p = append(p, wild(r))
	}
	return p
}

func wild(r rune) elem {
	switch r {
	case '*':
		return elem{kind: star}
	case '?':
		return elem{kind: quest}
	}
	return elem{kind: lit, r: r}
}

// parseVariables compiles s. checkOnly only checks the syntax and returns
// a nil pattern; a variable without a value in ctx also yields a nil
// pattern (unresolved).
func parseVariables(s string, ctx map[string]string, checkOnly bool) (pattern, error) {
	p := make(pattern, 0, len(s))
	unresolved := false
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "${") {
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unterminated policy variable at %q", s[i:])
			}
			name := s[i+2 : i+end]
			i += end + 1
			switch name {
			case "*", "?", "$":
				p = append(p, elem{kind: lit, r: rune(name[0])})
				continue
			}
			if !variableName.MatchString(name) {
				return nil, fmt.Errorf("policy variable ${%s} is malformed or uses an unsupported form", name)
			}
			val, ok := ctx[name]
			if !ok {
				unresolved = true
				continue
			}
			for _, r := range val {
				p = append(p, elem{kind: lit, r: r})
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		p = append(p, wild(r))
		i += size
	}
	if checkOnly || unresolved {
		return nil, nil
	}
	return p, nil
}

// literal is the pattern's text with wildcards written as '*' and '?'
// (used by the exact-string condition operators, which have no wildcards).
func (p pattern) literal() string {
	var b strings.Builder
	for _, e := range p {
		switch e.kind {
		case star:
			b.WriteByte('*')
		case quest:
			b.WriteByte('?')
		default:
			b.WriteRune(e.r)
		}
	}
	return b.String()
}

// Match reports whether value matches the IAM wildcard pattern: '*' is any
// run of characters (including none, and including '/' and ':'), '?' is
// exactly one character, everything else, including '+' and '#', is
// literal. fold makes the comparison case-insensitive (IAM actions).
// Policy variables are not interpreted here.
func Match(pattern, value string, fold bool) bool {
	return plain(pattern).match(value, fold)
}

// match is the classic linear-time wildcard match with backtracking to the
// last star only (a later star subsumes every earlier choice).
func (p pattern) match(value string, fold bool) bool {
	v := []rune(value)
	eq := func(e elem, r rune) bool {
		switch e.kind {
		case quest:
			return true
		case lit:
			return e.r == r || fold && unicode.ToLower(e.r) == unicode.ToLower(r)
		}
		return false
	}
	pi, vi := 0, 0
	starP, starV := -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && p[pi].kind == star:
			starP, starV = pi, vi
			pi++
		case pi < len(p) && eq(p[pi], v[vi]):
			pi++
			vi++
		case starP >= 0:
			starV++
			pi, vi = starP+1, starV
		default:
			return false
		}
	}
	for pi < len(p) && p[pi].kind == star {
		pi++
	}
	return pi == len(p)
}
