// Package policyeval is a small, strict evaluator of IAM-style policy
// documents (IAM identity policies and AWS IoT Core policies share the
// grammar). It exists so tests can prove what agentgate's synthesized
// policies allow and deny; it is not a replacement for the AWS evaluator.
//
// Semantics implemented (IAM "Policy evaluation logic"):
//
//   - A request is allowed only if some Allow statement matches and no Deny
//     statement matches; an explicit Deny always wins; no match is an
//     implicit deny.
//   - Action, NotAction, Resource and NotResource with the IAM wildcards '*'
//     (any run of characters, including '/' and ':') and '?' (exactly one
//     character). Actions compare case-insensitively, resources
//     case-sensitively. Every other character is literal: in particular
//     MQTT's '+' and '#' have no wildcard meaning in either policy language.
//   - Policy variables ${name} in Resource, NotResource and condition
//     values, plus the escapes ${*}, ${?} and ${$}. A variable without a
//     value makes the element that holds it match nothing, so an Allow that
//     needs it does not apply (IAM and IoT both fail closed this way). A
//     substituted value is literal: '*' or '?' inside it is not a wildcard.
//   - Conditions: Bool, StringEquals, StringNotEquals, StringLike,
//     StringNotLike; several keys or operators are ANDed, several values of
//     one key are ORed; a key missing from the request fails the condition
//     (no ...IfExists support).
//
// Anything outside this subset (an unknown operator, Principal in an
// identity policy, a malformed variable) is a parse error, never silently
// ignored: a test must not pass because the evaluator skipped a statement.
//
// ParseEndpointPolicy reads VPC endpoint policies, whose statements name a
// Principal. It accepts only the principal "everyone" ("*" or {"AWS": "*"}),
// which makes such a policy a filter on the request alone, so the same
// evaluation applies; a statement for a specific principal is an error.
package policyeval

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Decision is the outcome of evaluating a request.
type Decision int

const (
	// ImplicitDeny means no statement allowed the request.
	ImplicitDeny Decision = iota
	// Allow means an Allow statement matched and no Deny did.
	Allow
	// ExplicitDeny means a Deny statement matched.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	default:
		return "ImplicitDeny"
	}
}

// Allowed reports whether d lets the request through.
func (d Decision) Allowed() bool { return d == Allow }

// Request is one authorization question.
type Request struct {
	// Action is the service action, e.g. "iot:Subscribe".
	Action string
	// Resource is the full ARN the action is on.
	Resource string
	// Context holds the request's keys: policy-variable values and
	// condition keys, e.g. "iot:Connection.Thing.ThingName" → "agent-1".
	// A key that is absent is unresolved.
	Context map[string]string
}

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	Statements []Statement
}

// Statement is one parsed statement.
type Statement struct {
	Sid         string
	Effect      string // "Allow" or "Deny"
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Condition maps operator → key → allowed values.
	Condition map[string]map[string][]string
}

// rawStatement is a statement as JSON spells it: most elements are a
// string or a list of strings.
type rawStatement struct {
	Sid         string                                `json:"Sid"`
	Effect      string                                `json:"Effect"`
	Action      stringList                            `json:"Action"`
	NotAction   stringList                            `json:"NotAction"`
	Resource    stringList                            `json:"Resource"`
	NotResource stringList                            `json:"NotResource"`
	Condition   map[string]map[string]json.RawMessage `json:"Condition"`
	Principal   json.RawMessage                       `json:"Principal"`
}

type rawPolicy struct {
	Version   string          `json:"Version"`
	Statement json.RawMessage `json:"Statement"`
}

type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings, got %s", b)
	}
	*s = many
	return nil
}

// supportedOperators are the condition operators this evaluator knows.
var supportedOperators = map[string]bool{
	"Bool": true, "StringEquals": true, "StringNotEquals": true, "StringLike": true, "StringNotLike": true,
}

// Parse decodes and checks a JSON identity or IoT policy document.
func Parse(doc []byte) (*Policy, error) { return parse(doc, false) }

// ParseEndpointPolicy decodes and checks a VPC endpoint policy document:
// like Parse, but every statement must have the principal "*" (or
// {"AWS": "*"}).
func ParseEndpointPolicy(doc []byte) (*Policy, error) { return parse(doc, true) }

func parse(doc []byte, endpoint bool) (*Policy, error) {
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.DisallowUnknownFields()
	var raw rawPolicy
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if raw.Version != "2012-10-17" {
		return nil, fmt.Errorf("policy: Version %q; want \"2012-10-17\" (older versions do not substitute variables)", raw.Version)
	}
	var raws []rawStatement
	if len(raw.Statement) > 0 && raw.Statement[0] == '{' {
		var one rawStatement
		if err := strictUnmarshal(raw.Statement, &one); err != nil {
			return nil, fmt.Errorf("policy: statement: %w", err)
		}
		raws = []rawStatement{one}
	} else if err := strictUnmarshal(raw.Statement, &raws); err != nil {
		return nil, fmt.Errorf("policy: statements: %w", err)
	}
	if len(raws) == 0 {
		return nil, errors.New("policy: no statements")
	}
	p := &Policy{Version: raw.Version}
	for i, r := range raws {
		st, err := r.check(endpoint)
		if err != nil {
			return nil, fmt.Errorf("policy: statement %d (%s): %w", i, r.Sid, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func (r rawStatement) check(endpoint bool) (Statement, error) {
	st := Statement{Sid: r.Sid, Effect: r.Effect, Action: r.Action, NotAction: r.NotAction, Resource: r.Resource, NotResource: r.NotResource}
	if r.Effect != "Allow" && r.Effect != "Deny" {
		return st, fmt.Errorf("effect %q; want Allow or Deny", r.Effect)
	}
	switch {
	case !endpoint && len(r.Principal) > 0:
		return st, errors.New("a Principal element is not allowed in an identity or IoT policy")
	case endpoint && !isEveryone(r.Principal):
		return st, fmt.Errorf("principal %s; only \"*\" or {\"AWS\": \"*\"} can be evaluated without knowing the caller", orNone(r.Principal))
	}
	if (len(r.Action) == 0) == (len(r.NotAction) == 0) {
		return st, errors.New("exactly one of Action and NotAction is required")
	}
	if (len(r.Resource) == 0) == (len(r.NotResource) == 0) {
		return st, errors.New("exactly one of Resource and NotResource is required")
	}
	for _, list := range [][]string{r.Resource, r.NotResource} {
		for _, res := range list {
			if err := checkVariables(res); err != nil {
				return st, fmt.Errorf("resource %q: %w", res, err)
			}
		}
	}
	if len(r.Condition) > 0 {
		st.Condition = map[string]map[string][]string{}
	}
	for op, keys := range r.Condition {
		if !supportedOperators[op] {
			return st, fmt.Errorf("condition operator %q is not supported (supported: Bool, StringEquals, StringNotEquals, StringLike, StringNotLike)", op)
		}
		st.Condition[op] = map[string][]string{}
		for key, rawVals := range keys {
			var vals stringList
			if err := json.Unmarshal(rawVals, &vals); err != nil {
				var b bool
				if op != "Bool" || json.Unmarshal(rawVals, &b) != nil {
					return st, fmt.Errorf("condition %s %s: %w", op, key, err)
				}
				vals = stringList{fmt.Sprint(b)}
			}
			if len(vals) == 0 {
				return st, fmt.Errorf("condition %s %s has no values", op, key)
			}
			for _, v := range vals {
				if op == "Bool" && v != "true" && v != "false" {
					return st, fmt.Errorf("condition Bool %s: value %q; want \"true\" or \"false\"", key, v)
				}
				if err := checkVariables(v); err != nil {
					return st, fmt.Errorf("condition %s %s value %q: %w", op, key, v, err)
				}
			}
			st.Condition[op][key] = vals
		}
	}
	return st, nil
}

// isEveryone reports whether a Principal element is "*" or {"AWS": "*"}.
func isEveryone(raw json.RawMessage) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var m map[string]stringList
	if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
		return false
	}
	aws, ok := m["AWS"]
	return ok && len(aws) == 1 && aws[0] == "*"
}

func orNone(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "(none)"
	}
	return string(raw)
}

// Evaluate returns the decision of policies (all attached to the same
// principal, or endpoint policies with the principal "*") on req.
func Evaluate(req Request, policies ...*Policy) Decision {
	allowed := false
	for _, p := range policies {
		for _, st := range p.Statements {
			if !st.Matches(req) {
				continue
			}
			if st.Effect == "Deny" {
				return ExplicitDeny
			}
			allowed = true
		}
	}
	if allowed {
		return Allow
	}
	return ImplicitDeny
}

// Matches reports whether the statement applies to req (regardless of its effect).
func (st Statement) Matches(req Request) bool {
	if len(st.Action) > 0 && !anyMatch(st.Action, req.Action, nil, false) {
		return false
	}
	if len(st.NotAction) > 0 && anyMatch(st.NotAction, req.Action, nil, false) {
		return false
	}
	if len(st.Resource) > 0 && !anyMatch(st.Resource, req.Resource, req.Context, true) {
		return false
	}
	for _, pat := range st.NotResource {
		p, ok := compile(pat, req.Context, true)
		if !ok {
			// An unresolved NotResource pattern must not widen the policy:
			// an Allow does not apply, a Deny still does (fail closed both ways).
			if st.Effect == "Allow" {
				return false
			}
			continue
		}
		if p.match(req.Resource, false) {
			return false
		}
	}
	return st.conditionsHold(req.Context)
}

func anyMatch(patterns []string, value string, ctx map[string]string, variables bool) bool {
	fold := !variables // actions: case-insensitive, no variables
	for _, pat := range patterns {
		p, ok := compile(pat, ctx, variables)
		if !ok {
			continue // an unresolved variable matches nothing
		}
		if p.match(value, fold) {
			return true
		}
	}
	return false
}

func (st Statement) conditionsHold(ctx map[string]string) bool {
	for op, keys := range st.Condition {
		for key, vals := range keys {
			got, present := ctx[key]
			if !present {
				return false // no ...IfExists: a missing key fails the condition
			}
			if !conditionHolds(op, got, vals, ctx) {
				return false
			}
		}
	}
	return true
}

func conditionHolds(op, got string, vals []string, ctx map[string]string) bool {
	anyOf := func(test func(p pattern) bool) bool {
		for _, v := range vals {
			p, ok := compile(v, ctx, true)
			if ok && test(p) {
				return true
			}
		}
		return false
	}
	switch op {
	case "Bool":
		return anyOf(func(p pattern) bool { return strings.EqualFold(got, p.literal()) })
	case "StringEquals":
		return anyOf(func(p pattern) bool { return got == p.literal() })
	case "StringNotEquals":
		return !anyOf(func(p pattern) bool { return got == p.literal() })
	case "StringLike":
		return anyOf(func(p pattern) bool { return p.match(got, false) })
	case "StringNotLike":
		return !anyOf(func(p pattern) bool { return p.match(got, false) })
	}
	return false // unreachable: Parse rejects other operators
}
