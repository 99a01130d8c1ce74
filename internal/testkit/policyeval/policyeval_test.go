package policyeval

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		fold, want     bool
	}{
		{"abc", "abc", false, true},
		{"abc", "abd", false, false},
		{"abc", "ab", false, false},
		{"abc", "abcd", false, false},
		{"*", "", false, true},
		{"*", "anything/at:all", false, true},
		{"a*", "a", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbbd", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"a?c", "abbc", false, false},
		{"*a*a*", "banana", false, true},
		{"*a*a*a*a", "banana", false, false},
		{"topic/X/A/*", "topic/X/A/config", false, true},
		{"topic/X/A/*", "topic/X/A", false, false},
		{"topic/X/A/*", "topic/X/AB/config", false, false},
		{"topic/X/A/*", "topic/X/B/config", false, false},
		// '*' crosses '/' (IAM has no notion of levels).
		{"topic/X/*", "topic/X/A/deep/er", false, true},
		// MQTT wildcards are literal characters in IAM and IoT policies.
		{"topicfilter/X/+/config", "topicfilter/X/A/config", false, false},
		{"topicfilter/X/+/config", "topicfilter/X/+/config", false, true},
		{"topicfilter/X/#", "topicfilter/X/A/config", false, false},
		{"topicfilter/X/#", "topicfilter/X/#", false, true},
		{"topic/X/A/*", "topic/X/A/#", false, true},
		// Actions are case-insensitive, resources are not.
		{"iot:Publish", "IOT:PUBLISH", true, true},
		{"iot:Pub*", "iot:publish", true, true},
		{"iot:Publish", "iot:publish", false, false},
		{"topic/x", "topic/X", false, false},
	} {
		if got := Match(c.pattern, c.value, c.fold); got != c.want {
			t.Errorf("Match(%q, %q, fold=%v) = %v, want %v", c.pattern, c.value, c.fold, got, c.want)
		}
	}
}

const (
	arn    = "arn:aws:iot:eu-west-1:111111111111:"
	thingA = "agent-a"
)

var ctxA = map[string]string{
	"iot:Connection.Thing.ThingName":     thingA,
	"iot:Connection.Thing.ThingTypeName": "custx",
	"iot:Connection.Thing.IsAttached":    "true",
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	thingScoped := `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"iot:Connect","Resource":"` + arn + `client/${iot:Connection.Thing.ThingName}",
	   "Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"true"}}},
	  {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"` + arn + `topic/${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.ThingName}/*"},
	  {"Effect":"Deny","Action":"iot:Publish","Resource":"` + arn + `topic/${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.ThingName}/config"}
	]}`
	notAction := `{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"iot:Receive","Resource":"*"}}`
	allowAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}`
	notResource := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Receive","NotResource":"` + arn + `topic/secret/*"}]}`
	notResourceVar := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Receive","NotResource":"` + arn + `topic/${iot:Connection.Thing.ThingName}/*"}]}`
	denyNotResourceVar := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Receive","NotResource":"` + arn + `topic/${iot:Connection.Thing.ThingName}/*"}]}`
	like := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*",
	  "Condition":{"StringLike":{"iot:Connection.Thing.ThingTypeName":"cust?"},"StringNotEquals":{"iot:Connection.Thing.ThingName":"banned"}}}]}`
	escaped := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Receive","Resource":"` + arn + `topic/lit${*}"}]}`

	noHeader := map[string]string{"iot:Connection.Thing.IsAttached": "true"}
	detached := map[string]string{"iot:Connection.Thing.ThingName": thingA, "iot:Connection.Thing.ThingTypeName": "custx", "iot:Connection.Thing.IsAttached": "false"}
	starName := map[string]string{"iot:Connection.Thing.ThingName": "*", "iot:Connection.Thing.ThingTypeName": "*"}

	for _, c := range []struct {
		name     string
		policies []string
		action   string
		resource string
		ctx      map[string]string
		want     Decision
	}{
		{"own connect", []string{thingScoped}, "iot:Connect", arn + "client/agent-a", ctxA, Allow},
		{"connect as another thing", []string{thingScoped}, "iot:Connect", arn + "client/agent-b", ctxA, ImplicitDeny},
		{"connect when the certificate is not attached", []string{thingScoped}, "iot:Connect", arn + "client/agent-a", detached, ImplicitDeny},
		{"connect without IsAttached key", []string{thingScoped}, "iot:Connect", arn + "client/agent-a", map[string]string{"iot:Connection.Thing.ThingName": thingA}, ImplicitDeny},
		{"own publish", []string{thingScoped}, "iot:Publish", arn + "topic/custx/agent-a/telemetry", ctxA, Allow},
		{"action is case-insensitive", []string{thingScoped}, "IOT:publish", arn + "topic/custx/agent-a/telemetry", ctxA, Allow},
		{"explicit deny wins over allow", []string{thingScoped}, "iot:Publish", arn + "topic/custx/agent-a/config", ctxA, ExplicitDeny},
		{"explicit deny wins across policies", []string{allowAll, thingScoped}, "iot:Publish", arn + "topic/custx/agent-a/config", ctxA, ExplicitDeny},
		{"other thing's topic", []string{thingScoped}, "iot:Receive", arn + "topic/custx/agent-b/config", ctxA, ImplicitDeny},
		{"other customer's topic", []string{thingScoped}, "iot:Receive", arn + "topic/custy/agent-a/config", ctxA, ImplicitDeny},
		{"unresolved variables match nothing", []string{thingScoped}, "iot:Receive", arn + "topic/custx/agent-a/config", noHeader, ImplicitDeny},
		{"unresolved variables never become wildcards", []string{thingScoped}, "iot:Receive", arn + "topic///config", noHeader, ImplicitDeny},
		{"variable values are literal, not wildcards", []string{thingScoped}, "iot:Receive", arn + "topic/custx/agent-a/x", starName, ImplicitDeny},
		{"action not listed", []string{thingScoped}, "iot:Subscribe", arn + "topicfilter/custx/agent-a/x", ctxA, ImplicitDeny},
		{"NotAction deny covers other actions", []string{allowAll, notAction}, "iot:Publish", arn + "topic/a", nil, ExplicitDeny},
		{"NotAction deny spares its exception", []string{allowAll, notAction}, "iot:Receive", arn + "topic/a", nil, Allow},
		{"NotResource allows elsewhere", []string{notResource}, "iot:Receive", arn + "topic/public/x", nil, Allow},
		{"NotResource excludes its pattern", []string{notResource}, "iot:Receive", arn + "topic/secret/x", nil, ImplicitDeny},
		{"unresolved NotResource does not widen an allow", []string{notResourceVar}, "iot:Receive", arn + "topic/other/x", noHeader, ImplicitDeny},
		{"unresolved NotResource keeps a deny in force", []string{allowAll, denyNotResourceVar}, "iot:Receive", arn + "topic/other/x", noHeader, ExplicitDeny},
		{"StringLike and StringNotEquals hold", []string{like}, "iot:Connect", arn + "client/x", ctxA, Allow},
		{"StringLike fails", []string{like}, "iot:Connect", arn + "client/x", map[string]string{"iot:Connection.Thing.ThingTypeName": "other", "iot:Connection.Thing.ThingName": "x"}, ImplicitDeny},
		{"StringNotEquals fails", []string{like}, "iot:Connect", arn + "client/x", map[string]string{"iot:Connection.Thing.ThingTypeName": "custz", "iot:Connection.Thing.ThingName": "banned"}, ImplicitDeny},
		{"condition key missing", []string{like}, "iot:Connect", arn + "client/x", map[string]string{"iot:Connection.Thing.ThingName": "x"}, ImplicitDeny},
		{"${*} is a literal star", []string{escaped}, "iot:Receive", arn + "topic/lit*", nil, Allow},
		{"${*} is not a wildcard", []string{escaped}, "iot:Receive", arn + "topic/literal", nil, ImplicitDeny},
		{"no policies", nil, "iot:Connect", arn + "client/agent-a", ctxA, ImplicitDeny},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ps []*Policy
			for _, d := range c.policies {
				ps = append(ps, mustParse(t, d))
			}
			got := Evaluate(Request{Action: c.action, Resource: c.resource, Context: c.ctx}, ps...)
			if got != c.want {
				t.Errorf("%s on %s = %v, want %v", c.action, c.resource, got, c.want)
			}
		})
	}
}

func TestParseRejectsWhatItCannotEvaluate(t *testing.T) {
	for name, doc := range map[string]string{
		"old version":        `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]}`,
		"no statements":      `{"Version":"2012-10-17","Statement":[]}`,
		"bad effect":         `{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"a:b","Resource":"*"}]}`,
		"action and not":     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","NotAction":"a:c","Resource":"*"}]}`,
		"no resource":        `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b"}]}`,
		"principal":          `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"a:b","Resource":"*"}]}`,
		"unknown operator":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"ArnLike":{"k":"v"}}}]}`,
		"IfExists":           `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"a:b","Resource":"*","Condition":{"StringEqualsIfExists":{"k":"v"}}}]}`,
		"bad bool":           `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Bool":{"k":"yes"}}}]}`,
		"unterminated var":   `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"arn:${iot:x"}]}`,
		"default value var":  `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"arn:${aws:username, 'x'}"}]}`,
		"unknown field":      `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Resources":"*"}]}`,
		"number as resource": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":1}]}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, doc)
		}
	}
}

func TestParseAcceptsBoolLiteral(t *testing.T) {
	p := mustParse(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":true}}}]}`)
	if got := Evaluate(Request{Action: "iot:Connect", Resource: "x", Context: ctxA}, p); got != Allow {
		t.Errorf("got %v", got)
	}
}

// reference is an independent implementation of Match via regexp.
func reference(pattern, value string) bool {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String()).MatchString(value)
}

func lower(s string) string { return strings.Map(unicode.ToLower, s) }

func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"topic/X/A/*", "topic/X/A/config"},
		{"topicfilter/X/+/config", "topicfilter/X/A/config"},
		{"a*b?c*", "aXXbYcZZ"},
		{"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
		{"iot:Pub*", "IOT:PUBLISH"},
		{"${*}", "*"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(value) {
			Match(pattern, value, false) // must not panic
			Match(pattern, value, true)
			return
		}
		if got, want := Match(pattern, value, false), reference(pattern, value); got != want {
			t.Fatalf("Match(%q, %q) = %v, reference says %v", pattern, value, got, want)
		}
		if got, want := Match(pattern, value, true), reference(lower(pattern), lower(value)); got != want {
			t.Fatalf("Match(%q, %q, fold) = %v, reference says %v", pattern, value, got, want)
		}
		if Match(pattern, pattern, false) != true {
			t.Fatalf("a pattern must match itself: %q", pattern)
		}
	})
}

// FuzzParseEvaluate feeds arbitrary documents and requests through Parse
// and Evaluate: they must never panic, and a document without any Allow
// statement must never allow anything.
func FuzzParseEvaluate(f *testing.F) {
	f.Add(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"arn:${iot:Connection.Thing.ThingName}/*"}]}`, "iot:Connect", "arn:a/b", "a")
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":"x","NotResource":"${*}"}}`, "x", "*", "")
	f.Fuzz(func(t *testing.T, doc, action, resource, name string) {
		p, err := Parse([]byte(doc))
		if err != nil {
			return
		}
		d := Evaluate(Request{Action: action, Resource: resource, Context: map[string]string{"iot:Connection.Thing.ThingName": name}}, p)
		hasAllow := false
		for _, st := range p.Statements {
			hasAllow = hasAllow || st.Effect == "Allow"
		}
		if d == Allow && !hasAllow {
			t.Fatalf("allowed without an Allow statement: %s", doc)
		}
	})
}

// Endpoint policies name a principal; only "everyone" can be evaluated
// from the request alone, and then they filter like any other policy.
func TestParseEndpointPolicy(t *testing.T) {
	for _, principal := range []string{`"*"`, `{"AWS":"*"}`, `{"AWS":["*"]}`} {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":` + principal + `,"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/releases/*"}]}`
		p, err := ParseEndpointPolicy([]byte(doc))
		if err != nil {
			t.Fatalf("principal %s: %v", principal, err)
		}
		if got := Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/releases/x"}, p); got != Allow {
			t.Errorf("principal %s: GetObject below the prefix = %v", principal, got)
		}
		if got := Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::other/releases/x"}, p); got != ImplicitDeny {
			t.Errorf("principal %s: GetObject in another bucket = %v", principal, got)
		}
	}
	for name, principal := range map[string]string{
		"none":          ``,
		"one role":      `"Principal":{"AWS":"arn:aws:iam::111111111111:role/r"},`,
		"star and role": `"Principal":{"AWS":["*","arn:aws:iam::111111111111:role/r"]},`,
		"service":       `"Principal":{"Service":"*"},`,
		"two keys":      `"Principal":{"AWS":"*","Service":"s3.amazonaws.com"},`,
		"not a star":    `"Principal":"arn:aws:iam::111111111111:root",`,
	} {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",` + principal + `"Action":"s3:GetObject","Resource":"*"}]}`
		if _, err := ParseEndpointPolicy([]byte(doc)); err == nil || !strings.Contains(err.Error(), "principal") {
			t.Errorf("%s: ParseEndpointPolicy(%s) = %v, want an error naming the principal", name, doc, err)
		}
	}
}
