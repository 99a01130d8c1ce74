package envelope

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var issued = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

func TestEncodeParseRoundTrip(t *testing.T) {
	cfg, err := CompactObject([]byte(`{ "a": "x&y", "n": [1, 2] }`))
	if err != nil {
		t.Fatal(err)
	}
	b, env := Encode(cfg, 1764406800000, issued)
	if !strings.Contains(string(b), `"config":{"a":"x&y","n":[1,2]}`) {
		t.Fatalf("config not carried byte for byte: %s", b)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != env.Version || got.SHA256 != env.SHA256 || string(got.Config) != string(cfg) || got.IssuedAt != "2026-11-29T09:00:00Z" {
		t.Fatalf("round trip: %+v vs %+v", got, env)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := Encode([]byte(`{"a":1}`), 5, issued)
	sum := Sum([]byte(`{"a":1}`))
	cases := map[string]struct{ in, want string }{
		"not json":        {`{`, "envelope: unexpected EOF"},
		"unknown field":   {`{"version":5,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":{"a":1},"x":1}`, `unknown field "x"`},
		"trailing data":   {string(good) + `{}`, "2 bytes of trailing data"},
		"zero version":    {`{"version":0,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":{"a":1}}`, "version 0 is not positive"},
		"negative":        {`{"version":-3,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":{"a":1}}`, "version -3 is not positive"},
		"bad time":        {`{"version":5,"sha256":"` + sum + `","issuedAt":"yesterday","config":{"a":1}}`, "envelope issuedAt"},
		"array config":    {`{"version":5,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":[1]}`, "must be a JSON object"},
		"missing config":  {`{"version":5,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z"}`, "configuration is not valid JSON"},
		"hash mismatch":   {`{"version":5,"sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":{"a":2}}`, "does not match its config"},
		"hash not hex":    {`{"version":5,"sha256":"zz","issuedAt":"2026-11-29T09:00:00Z","config":{"a":1}}`, "does not match its config"},
		"version as text": {`{"version":"5","sha256":"` + sum + `","issuedAt":"2026-11-29T09:00:00Z","config":{"a":1}}`, "cannot unmarshal string"},
	}
	for name, tc := range cases {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Parse = %v, want error containing %q", name, err, tc.want)
		}
	}
	if _, err := Parse(append(append([]byte(nil), good...), " \n"...)); err != nil {
		t.Errorf("trailing whitespace refused: %v", err)
	}
}

func TestCompactObjectClassifies(t *testing.T) {
	for in, want := range map[string]error{"\xff": ErrNotUTF8, "{": ErrBadJSON, "[]": ErrNotObject, "7": ErrNotObject} {
		if _, err := CompactObject([]byte(in)); !errors.Is(err, want) {
			t.Errorf("CompactObject(%q) = %v, want %v", in, err, want)
		}
	}
}

func TestNewer(t *testing.T) {
	a := Envelope{Version: 2, SHA256: "aa"}
	if !a.Newer(Envelope{Version: 1, SHA256: "ff"}) || a.Newer(Envelope{Version: 3}) {
		t.Error("version must order first")
	}
	if !a.Newer(Envelope{Version: 2, SHA256: "a0"}) || a.Newer(a) {
		t.Error("sha256 breaks ties; an envelope is not newer than itself")
	}
	if !a.Newer(Envelope{}) {
		t.Error("any valid envelope is newer than none")
	}
}

// FuzzParse: Parse never panics, and whatever it accepts re-encodes to an
// envelope it accepts again with the same fields.
func FuzzParse(f *testing.F) {
	good, _ := Encode([]byte(`{"a":"x&y"}`), 1764406800000, issued)
	f.Add(good)
	f.Add([]byte(`{"version":1,"sha256":"","issuedAt":"","config":{}}`))
	f.Add([]byte(`{"version":9007199254740993,"config":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		ts, err := time.Parse(time.RFC3339Nano, e.IssuedAt)
		if err != nil {
			t.Fatalf("accepted issuedAt %q", e.IssuedAt)
		}
		cfg, err := CompactObject(e.Config)
		if err != nil {
			t.Fatalf("accepted config %q: %v", e.Config, err)
		}
		again, env := Encode(cfg, e.Version, ts)
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded envelope refused: %v\n%s", err, again)
		}
		if back.Version != e.Version || back.SHA256 != e.SHA256 || env.SHA256 != e.SHA256 {
			t.Fatalf("fields changed: %+v vs %+v", back, e)
		}
	})
}

// TestParseReturnsTheHashedBytes: a config sent with whitespace is hashed
// compacted, and Parse returns exactly the compacted bytes it hashed.
func TestParseReturnsTheHashedBytes(t *testing.T) {
	compact := []byte(`{"a":1,"b":[1,2]}`)
	msg := fmt.Appendf(nil, `{"version":5,"sha256":%q,"issuedAt":"2026-11-29T09:00:00Z","config":{ "a" : 1,
  "b" : [ 1, 2 ] }}`, Sum(compact))
	e, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if string(e.Config) != string(compact) || Sum(e.Config) != e.SHA256 {
		t.Fatalf("Config %q (sha256 %s), want %q with the envelope's hash %s", e.Config, Sum(e.Config), compact, e.SHA256)
	}
}
