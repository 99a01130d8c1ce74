package deployconfig

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// exampleText is agentgate.example.json as written (line and column
// numbers below refer to it).
func exampleText(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// edit replaces the only occurrence of old in s, failing the test if
// there is not exactly one (so an edit to the example cannot silently make
// a case test nothing).
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if n := strings.Count(s, old); n != 1 {
		t.Fatalf("%q occurs %d times in the input, want once", old, n)
	}
	return strings.Replace(s, old, new, 1)
}

// problems decodes in and returns the problems, failing if it was accepted.
func problems(t *testing.T, in string) []Problem {
	t.Helper()
	cfg, err := Decode(strings.NewReader(in))
	if err == nil {
		t.Fatalf("accepted: %+v", cfg)
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %T %v, want a *DecodeError", err, err)
	}
	return de.Problems
}

// want is one expected problem: its place, path and a part of its message.
type want struct {
	line, col int
	path, msg string
}

func checkProblems(t *testing.T, got []Problem, wants ...want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("%d problems, want %d:\n%s", len(got), len(wants), (&DecodeError{Problems: got}).Error())
	}
	for i, w := range wants {
		g := got[i]
		if g.Line != w.line || g.Column != w.col || g.Path != w.path || !strings.Contains(g.Message, w.msg) {
			t.Errorf("problem %d = %d:%d %s: %s\nwant %d:%d %s: …%s…", i, g.Line, g.Column, g.Path, g.Message, w.line, w.col, w.path, w.msg)
		}
	}
}

// Go's encoding/json matches keys case-insensitively: "staticIPCount": 4
// used to give a fleet four addresses. A key must be spelled exactly.
func TestKeysAreCaseSensitive(t *testing.T) {
	in := edit(t, exampleText(t), `"staticIpCount": 2,
      "weight": 100`, `"staticIPCount": 4,
      "weight": 100`)
	checkProblems(t, problems(t, in),
		want{24, 7, "fleets[0].staticIPCount", `unknown field; did you mean "staticIpCount"? Field names are case-sensitive`})

	in = edit(t, exampleText(t), `"project": "agentgate"`, `"Project": "agentgate"`)
	checkProblems(t, problems(t, in), want{2, 3, "Project", `did you mean "project"?`})
}

// Several unknown fields, a wrong type and a rule violation: all reported
// in one error, in file order, each with its place and path.
func TestEveryProblemReportedAtOnce(t *testing.T) {
	in := exampleText(t)
	in = edit(t, in, `"ttlSec": 60`, `"ttlSec": "60"`)
	in = edit(t, in, `"weight": 100`, `"weight": 300`)
	in = edit(t, in, `"maxTasks": 8`, `"maxTask": 8, "colour": "blue"`)
	in = edit(t, in, `"region": "us-east-1",`, `"region": "us-east-1", "zones": 2,`)
	checkProblems(t, problems(t, in),
		want{7, 15, "dns.ttlSec", `the string "60"; want a whole number`},
		want{25, 17, "fleets[0].weight", "300; allowed: 0..255 (0 = standby)"},
		want{30, 9, "fleets[0].relay.maxTask", `unknown field; did you mean "maxTasks"?`},
		want{30, 23, "fleets[0].relay.colour", "unknown field; allowed here: minTasks, maxTasks, cpu, memoryMiB,"},
		want{42, 30, "fleets[1].zones", "unknown field; allowed here: name, account, region, availabilityZones,"},
	)
	// A refused value is not reported again by the rule its zero value
	// breaks (dns.ttlSec "60" is not also "0; allowed: 1..60").
	_, err := Decode(strings.NewReader(in))
	if msg := err.Error(); !strings.HasPrefix(msg, "deployment config: 5 problems:\n  line 7, column 15: dns.ttlSec: ") {
		t.Errorf("error text:\n%s", msg)
	}
}

// Two fleets in one region would each create the region's IoT role alias
// and IoT policy under the same name, so the second identity stack could
// not deploy; the singleton switches do not change that. The problem points
// at the second fleet's region.
func TestSecondFleetInARegionIsRefused(t *testing.T) {
	in := edit(t, exampleText(t), `"region": "us-east-1",
      "availabilityZones": ["us-east-1a", "us-east-1b"],`, `"region": "eu-west-1",
      "availabilityZones": ["eu-west-1a", "eu-west-1b"],`)
	refused := want{42, 17, "fleets[1].region", `"eu-west-1"; allowed: a region no other fleet uses (fleets[0] is in eu-west-1)`}
	checkProblems(t, problems(t, in), refused)

	off := edit(t, in, `"credentialDurationSec": 3600`, `"credentialDurationSec": 3600, "manageIotLogging": false, "manageDeviceDefenderAudit": false`)
	checkProblems(t, problems(t, off), refused)
}

func TestValueErrorsPointIntoTheFile(t *testing.T) {
	in := exampleText(t)
	in = edit(t, in, `"cpu": 512`, `"cpu": 300`)
	// A rule about a field that was left out points at its object.
	in = edit(t, in, `"hostedZoneId": "Z0123456789EXAMPLE",`, ``)
	checkProblems(t, problems(t, in),
		want{3, 10, "dns.hostedZoneId", `""; allowed: a Route 53 hosted zone ID`},
		want{31, 16, "fleets[0].relay.cpu", "300; allowed: 256, 512, 1024, 2048 or 4096"},
	)
}

func TestWrongTypes(t *testing.T) {
	ex := exampleText(t)
	for _, tc := range []struct {
		name, old, new string
		want           want
	}{
		{"string for a number", `"ttlSec": 60`, `"ttlSec": "60"`, want{7, 15, "dns.ttlSec", `the string "60"; want a whole number`}},
		{"fraction", `"minTasks": 2`, `"minTasks": 2.5`, want{29, 21, "fleets[0].relay.minTasks", "2.5; want a whole number (no fraction or exponent)"}},
		{"exponent", `"minTasks": 2`, `"minTasks": 2e0`, want{29, 21, "fleets[0].relay.minTasks", "2e0; want a whole number"}},
		{"overflow", `"minTasks": 2`, `"minTasks": 99999999999999999999`, want{29, 21, "fleets[0].relay.minTasks", "99999999999999999999 is out of range"}},
		{"number for a string", `"project": "agentgate"`, `"project": 7`, want{2, 14, "project", "the number 7; want a string"}},
		{"string for a list", `"releaseChannels": ["stable", "beta"]`, `"releaseChannels": "stable"`, want{15, 24, "topics.releaseChannels", `the string "stable"; want an array of strings`}},
		{"number in a list", `"releaseChannels": ["stable", "beta"]`, `"releaseChannels": ["stable", 2]`, want{15, 35, "topics.releaseChannels[1]", "the number 2; want a string"}},
		{"object for a list", `"availabilityZones": ["us-east-1a", "us-east-1b"]`, `"availabilityZones": {"a": "us-east-1a"}`, want{43, 28, "fleets[1].availabilityZones", "an object; want an array of strings"}},
		{"list for an object", `"dns": {`, `"dns": [], "x": {`, want{3, 10, "dns", "an array; want an object"}},
		{"bool for a number", `"weight": 0`, `"weight": false`, want{45, 17, "fleets[1].weight", "false; want a whole number"}},
		{"null", `"weight": 0`, `"weight": null`, want{45, 17, "fleets[1].weight", "null; leave the field out to take its default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := edit(t, ex, tc.old, tc.new)
			got := problems(t, in)
			if tc.name == "list for an object" {
				got = got[:1] // the "x" it left behind is an unknown field
			}
			checkProblems(t, got, tc.want)
		})
	}
}

func TestYAMLIsNamed(t *testing.T) {
	for _, in := range []string{
		"project: agentgate\ndns:\n  zoneName: example.com\n",
		"---\nproject: agentgate\n",
		"# my deployment\nproject: agentgate\n",
		"\n\n  fleets:\n    - name: euw1\n",
	} {
		got := problems(t, in)
		if len(got) != 1 || !strings.Contains(got[0].Message, "the config is JSON, but this looks like YAML") {
			t.Errorf("%q: %+v", in, got)
		}
	}
	checkProblems(t, problems(t, "\n\n  fleets:\n"), want{3, 3, "", "looks like YAML"})
	checkProblems(t, problems(t, `"project": "agentgate"`), want{1, 1, "", "wrap its members in { … }"})
}

func TestTrailingCommas(t *testing.T) {
	ex := exampleText(t)
	checkProblems(t, problems(t, edit(t, ex, `"eu-west-1b"]`, `"eu-west-1b",]`)),
		want{23, 55, "fleets[0].availabilityZones", "trailing comma: JSON allows no ',' after the last element"})
	checkProblems(t, problems(t, edit(t, ex, `"nlbIdleTimeoutSec": 400`, `"nlbIdleTimeoutSec": 400,`)),
		want{36, 33, "fleets[0].relay", "trailing comma: JSON allows no ',' after the last member"})
	checkProblems(t, problems(t, edit(t, ex, `"vpcCidr": "10.41.0.0/16"
    }`, `"vpcCidr": "10.41.0.0/16"
    },`)), want{47, 6, "fleets", "trailing comma"})
}

func TestDuplicateKeys(t *testing.T) {
	ex := exampleText(t)
	// Both copies are reported against the first; the rest of the file is
	// still checked.
	in := edit(t, ex, `"ttlSec": 60,`, `"ttlSec": 60, "ttlSec": 30,`)
	in = edit(t, in, `"weight": 0,`, `"weight": 0, "weight": 5, "cpu": 1,`)
	checkProblems(t, problems(t, in),
		want{7, 19, "dns.ttlSec", "duplicate key (first at line 7, column 5)"},
		want{45, 20, "fleets[1].weight", "duplicate key (first at line 45, column 7)"},
		want{45, 33, "fleets[1].cpu", "unknown field"},
	)
}

// Syntax errors name their line and column, the path they are in, and say
// what JSON wants in words a person can act on.
func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     want
	}{
		{"comment", "{\n  \"project\": \"x\", // mine\n}", want{2, 19, "", "JSON has no comments"}},
		{"block comment", "{\"dns\": {\"ttlSec\": /* s */ 60}}", want{1, 20, "dns.ttlSec", "JSON has no comments"}},
		{"unquoted key", `{project: "x"}`, want{1, 2, "", `keys take double quotes: write "project"`}},
		{"single quotes", `{"project": 'x'}`, want{1, 13, "project", "strings take double quotes"}},
		{"bare word", `{"project": agentgate}`, want{1, 13, "project", `unexpected agentgate: a string takes double quotes ("agentgate")`}},
		{"capital literal", `{"x": True}`, want{1, 7, "x", "JSON's literals are lowercase"}},
		{"missing comma", "{\"project\": \"x\"\n \"dns\": {}}", want{2, 2, "", "missing ',' before this key"}},
		{"missing colon", `{"project" "x"}`, want{1, 12, "project", `missing ':' after the key "project"`}},
		{"missing value", `{"project": , "dns": {}}`, want{1, 13, "project", "a value is missing before this ','"}},
		{"unclosed object", "{\"dns\": {\"ttlSec\": 60}\n", want{2, 1, "", "the file ends inside the object opened at line 1, column 1: a '}' is missing"}},
		{"unclosed array", `{"fleets": [{}`, want{1, 15, "fleets", "the file ends inside the array opened at line 1, column 12"}},
		{"unclosed string", `{"project": "agentgate}`, want{1, 13, "project", "the file ends inside the string that starts here"}},
		{"raw line break in a string", "{\"project\": \"a\ngate\"}", want{1, 15, "project", "control character"}},
		{"bad escape", `{"project": "a\qb"}`, want{1, 15, "project", `unknown escape \q`}},
		{"short unicode escape", `{"project": "\u12"}`, want{1, 14, "project", `\u takes four hex digits`}},
		{"leading zero", `{"dns": {"ttlSec": 060}}`, want{1, 20, "dns.ttlSec", "JSON numbers do not start with 0"}},
		{"plus sign", `{"dns": {"ttlSec": +60}}`, want{1, 20, "dns.ttlSec", "unexpected '+' where a value should be"}},
		{"bare fraction", `{"dns": {"ttlSec": 6.}}`, want{1, 20, "dns.ttlSec", "a digit must follow '.'"}},
		{"junk after a value", `{"dns": {"ttlSec": 60s}}`, want{1, 22, "dns", `unexpected 's' after the value of "ttlSec"`}},
		{"two documents", "{}\n{}", want{2, 1, "", "the file holds exactly one JSON object"}},
		{"an array", `[{"project": "x"}]`, want{1, 1, "", "the config is an array; want a JSON object"}},
		{"null", `null`, want{1, 1, "", "the config is null; want a JSON object"}},
		{"empty", "  \n", want{2, 1, "", "the file is empty"}},
		{"odd key in the path", `{"a.b": {"c": 1,}}`, want{1, 16, `["a.b"]`, "trailing comma"}},
		{"column counts characters", `{"project": "ä", x}`, want{1, 18, "", `keys take double quotes: write "x"`}},
		{"too deep", `{"x":` + strings.Repeat("[", 100), want{1, 69, "x" + strings.Repeat("[0]", 63), "nested deeper than 64 levels"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problems(t, tc.in), tc.want)
		})
	}
}

func TestOversizeFile(t *testing.T) {
	in := `{"project": "` + strings.Repeat("a", MaxFileBytes) + `"}`
	checkProblems(t, problems(t, in), want{0, 0, "", "the file is larger than 1048576 bytes"})
	// The limit is on what is read, not on what the reader offers.
	if _, err := Decode(endless{}); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Fatalf("endless input: %v", err)
	}
}

// endless is an input that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestByteOrderMarkIsAccepted(t *testing.T) {
	if _, err := Decode(strings.NewReader("\xef\xbb\xbf" + exampleText(t))); err != nil {
		t.Fatal(err)
	}
}

// A key is read as written: "st\u0061ticIpCount" decodes to staticIpCount,
// but it is not how the documentation spells any key.
func TestEscapedKeysAreRefused(t *testing.T) {
	in := edit(t, exampleText(t), `"staticIpCount": 2,
      "weight": 100`, `"st\u0061ticIpCount": 4,
      "weight": 100`)
	in = edit(t, in, `"project": "agentgate"`, `"pro\u006aect": "agentgate"`)
	checkProblems(t, problems(t, in),
		want{2, 3, "project", `the key "pro\u006aect" is written with escape sequences (it reads "project"): write the key as plain text`},
		want{24, 7, "fleets[0].staticIpCount", `the key "st\u0061ticIpCount" is written with escape sequences (it reads "staticIpCount"): write the key as plain text`},
	)
	// Any escape, not only \u: "\/" is "/" to a JSON decoder.
	in = edit(t, exampleText(t), `"ttlSec": 60`, `"ttl\/Sec": 60`)
	got := problems(t, in)
	if len(got) == 0 || got[0].Path != `dns["ttl/Sec"]` || !strings.Contains(got[0].Message, "written with escape sequences") {
		t.Errorf("problems: %+v", got)
	}
}

// encodeUTF16 encodes s as UTF-16 in the given byte order, with a byte order
// mark if bom.
func encodeUTF16(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xfeff}, units...)
	}
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		if bigEndian {
			out = binary.BigEndian.AppendUint16(out, u)
		} else {
			out = binary.LittleEndian.AppendUint16(out, u)
		}
	}
	return out
}

// A file saved in another encoding is named as such, not reported as an
// unexpected character nobody can see.
func TestFileEncodingIsNamed(t *testing.T) {
	ex := exampleText(t)
	const save = "; save it as UTF-8"
	for _, tc := range []struct {
		name string
		in   []byte
		want want
	}{
		{"UTF-16 little-endian with BOM", encodeUTF16(ex, false, true), want{0, 0, "", "the file is UTF-16 (little-endian, with a byte order mark)" + save}},
		{"UTF-16 big-endian with BOM", encodeUTF16(ex, true, true), want{0, 0, "", "the file is UTF-16 (big-endian, with a byte order mark)" + save}},
		{"UTF-16 little-endian", encodeUTF16(ex, false, false), want{0, 0, "", "the file is UTF-16 (little-endian, without a byte order mark)" + save}},
		{"UTF-16 big-endian", encodeUTF16(ex, true, false), want{0, 0, "", "the file is UTF-16 (big-endian, without a byte order mark)" + save}},
		{"UTF-32", append([]byte{0xff, 0xfe, 0, 0}, '{', 0, 0, 0, '}', 0, 0, 0), want{0, 0, "", "the file is UTF-32 (little-endian, with a byte order mark)" + save}},
		{"two UTF-8 byte order marks", []byte("\xef\xbb\xbf\xef\xbb\xbf" + ex), want{0, 0, "", "the file starts with two UTF-8 byte order marks (EF BB BF EF BB BF)"}},
		{"Windows-1252", []byte(edit(t, ex, `"zoneName": "example.com"`, "\"zoneName\": \"ex\xe4mple.com\"")), want{4, 20, "", "byte 0xE4 is not UTF-8: the file is in another encoding (such as Windows-1252 or Latin-1)" + save}},
		{"a NUL byte", []byte(edit(t, ex, `"ttlSec": 60,`, "\"ttlSec\": 60,\x00")), want{7, 18, "", "a NUL byte: this is not a UTF-8 text file" + save}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problems(t, string(tc.in)), tc.want)
		})
	}
}

// Characters an editor shows as nothing, or as a space, are named by code
// point and kind.
func TestInvisibleCharactersAreNamed(t *testing.T) {
	in := edit(t, exampleText(t), `"ttlSec": 60,`, "\"ttlSec\": 60,\ufeff")
	checkProblems(t, problems(t, in), want{7, 18, "dns", "unexpected U+FEFF (a byte order mark) where a key in double quotes should be"})
	in = edit(t, exampleText(t), `"ttlSec": 60,`, "\"ttlSec\":\u00a060,")
	checkProblems(t, problems(t, in), want{7, 14, "dns.ttlSec", "unexpected U+00A0 (a no-break space) where a value should be"})
}

// Load names the file in the compilers' file:line:column form.
func TestLoadNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agentgate.json")
	if err := os.WriteFile(path, []byte(edit(t, exampleText(t), `"weight": 100`, `"weight": 300`)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || err.Error() != "deployment config "+path+":25:17: fleets[0].weight: 300; allowed: 0..255 (0 = standby)" {
		t.Fatalf("error: %v", err)
	}
	if err := os.WriteFile(path, []byte("project: x\nfleets: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(path); err == nil || !strings.HasPrefix(err.Error(), "deployment config "+path+":1:1: the config is JSON, but this looks like YAML") {
		t.Fatalf("error: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"project": 1, "dns": 2, "fleets": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), "deployment config "+path+": ") ||
		!strings.Contains(err.Error(), "3 problems:\n  "+path+":1:13: project: the number 1; want a string\n  "+path+":1:23: dns: the number 2; want an object\n  "+path+":1:36: fleets: []; allowed: at least one fleet") {
		t.Fatalf("error: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "nope.json")); err == nil || err.Error() != "deployment config "+filepath.Join(dir, "nope.json")+": no such file or directory" {
		t.Fatalf("missing file: %v", err)
	}
}

// Every field of Config is reachable by its documented name: a config
// written by encoding/json (which uses the same tags) decodes back to the
// same value. A field type the decoder cannot take would panic here.
func TestEveryFieldDecodesByItsTag(t *testing.T) {
	cfg, err := Load("../../../agentgate.example.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(cfg, again) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v", cfg, again)
	}
}

// The README shows what synth prints for a file with three mistakes; it
// must be what Load really says (the CDK app prefixes "agentgate: ").
func TestREADMEShowsTheRealError(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(readme), "agentgate: deployment config agentgate.json")
	if start < 0 {
		t.Fatal("README.md shows no deployment config error")
	}
	shown := string(readme[start:])
	shown = shown[:strings.Index(shown, "\n   ```")]
	shown = strings.ReplaceAll(shown, "\n   ", "\n") // the block is indented in a list item

	in := exampleText(t)
	in = edit(t, in, `"staticIpCount": 2,
      "weight": 100`, `"staticIPCount": 2,
      "weight": 300`)
	in = edit(t, in, `"maxTasks": 8`, `"maxTask": 8`)
	t.Chdir(t.TempDir())
	if err := os.WriteFile("agentgate.json", []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load("agentgate.json")
	if err == nil {
		t.Fatal("accepted")
	}
	if got := "agentgate: " + err.Error(); got != shown {
		t.Errorf("README.md shows:\n%s\nLoad says:\n%s", shown, got)
	}
}

// Every field of Config, set or not in the example, is one the reader can
// take: a JSON value is made for each from its type and assigned. A field
// of a type the assigner does not handle panics here, naming it, instead
// of in a user's synth.
func TestEveryFieldTypeIsReadable(t *testing.T) {
	var sample func(reflect.Type) any
	sample = func(t reflect.Type) any {
		switch t.Kind() {
		case reflect.Struct:
			m := map[string]any{}
			for name, i := range jsonFields(t) {
				m[name] = sample(t.Field(i).Type)
			}
			return m
		case reflect.Slice:
			return []any{sample(t.Elem())}
		case reflect.Pointer:
			return sample(t.Elem())
		case reflect.String:
			return "x"
		case reflect.Bool:
			return true
		case reflect.Float32, reflect.Float64:
			return 1.5
		default:
			return 1
		}
	}
	data, err := json.Marshal(sample(reflect.TypeOf(Config{})))
	if err != nil {
		t.Fatal(err)
	}
	root, dups, syntax := readDocument(data)
	if syntax != nil || len(dups) > 0 {
		t.Fatalf("%v %v", syntax, dups)
	}
	var cfg Config
	a := newAssigner()
	a.assign(root, reflect.ValueOf(&cfg).Elem(), "")
	if len(a.problems) > 0 {
		t.Fatalf("%+v\n%s", a.problems, data)
	}
	if cfg.Fleets[0].Relay.MaxTasks != 1 || cfg.Topics.ReleaseChannels[0] != "x" {
		t.Fatalf("not assigned: %+v", cfg)
	}
}
