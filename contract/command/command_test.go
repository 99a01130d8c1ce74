package command

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func TestTopics(t *testing.T) {
	if got := RequestTopic("acme", "a1"); got != "acme/a1/down/command" {
		t.Errorf("RequestTopic = %q", got)
	}
	if got := ResultTopic("acme", "a1"); got != "acme/a1/up/result" {
		t.Errorf("ResultTopic = %q", got)
	}
}

func TestRequestRoundTrip(t *testing.T) {
	r := Request{ID: "c-1", Name: "restart", Args: json.RawMessage(`{"service":"spooler"}`), Deadline: now.Add(time.Minute)}
	b, err := r.Marshal(now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRequest(b, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Name != r.Name || string(got.Args) != string(r.Args) || !got.Deadline.Equal(r.Deadline) {
		t.Errorf("round trip: %+v, want %+v", got, r)
	}
}

func TestParseRequestRefusesHostileInput(t *testing.T) {
	ok := `"name":"restart","deadline":"2026-12-04T10:01:00Z"`
	for name, in := range map[string]string{
		"empty":           ``,
		"not json":        `{`,
		"array":           `[]`,
		"no id":           `{` + ok + `}`,
		"wildcard id":     `{"id":"a#",` + ok + `}`,
		"slash id":        `{"id":"../x",` + ok + `}`,
		"long id":         `{"id":"` + strings.Repeat("a", MaxIDLen+1) + `",` + ok + `}`,
		"no name":         `{"id":"x","deadline":"2026-12-04T10:01:00Z"}`,
		"name with space": `{"id":"x","name":"a b","deadline":"2026-12-04T10:01:00Z"}`,
		"no deadline":     `{"id":"x","name":"restart"}`,
		"far deadline":    `{"id":"x","name":"restart","deadline":"2027-12-04T10:01:00Z"}`,
		"bad deadline":    `{"id":"x","name":"restart","deadline":"tomorrow"}`,
		"unknown field":   `{"id":"x",` + ok + `,"responseTopic":"acme/b/down/command"}`,
		"trailing data":   `{"id":"x",` + ok + `}{}`,
		"not utf8":        `{"id":"x",` + ok + `,"args":"\xff"}`,
		"oversize":        `{"id":"x",` + ok + `,"args":"` + strings.Repeat("a", 130<<10) + `"}`,
	} {
		if _, err := ParseRequest([]byte(in), now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A deadline in the past parses: the agent answers it as expired.
	if _, err := ParseRequest([]byte(`{"id":"x",`+ok+`}`), now.Add(time.Hour)); err != nil {
		t.Errorf("past deadline refused: %v", err)
	}
}

func TestResult(t *testing.T) {
	r := Result{ID: "c-1", Status: StatusFailed, Error: strings.Repeat("é", MaxErrorLen)}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Error) > MaxErrorLen || !strings.HasPrefix(r.Error, got.Error) || got.Status != StatusFailed {
		t.Errorf("error truncated to %d bytes (%q…)", len(got.Error), got.Error[:8])
	}
	if _, err := (Result{ID: "x", Status: StatusOK, Output: json.RawMessage(`{`)}).Marshal(); err == nil {
		t.Error("invalid output marshalled")
	}
	for _, in := range []string{`{"id":"x","status":"done"}`, `{"id":"a/b","status":"ok"}`, `{"id":"x","status":"ok","extra":1}`, `null x`} {
		if _, err := ParseResult([]byte(in)); err == nil {
			t.Errorf("ParseResult(%s) accepted", in)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"id":"c-1","name":"restart","deadline":"2026-12-04T10:01:00Z","args":{"a":1}}`))
	f.Add([]byte(`{"id":"c-1","name":"r","deadline":"2026-12-04T10:01:00Z","x":1}`))
	f.Add([]byte(`{"id":"#","name":"/","deadline":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b, now)
		if err != nil {
			return
		}
		if ValidateID(r.ID) != nil || ValidateName(r.Name) != nil || r.Deadline.After(now.Add(MaxDeadline)) {
			t.Fatalf("accepted invalid request %+v", r)
		}
		if _, err := r.Marshal(now); err != nil {
			t.Fatalf("accepted request does not marshal: %v", err)
		}
	})
}

func FuzzParseResult(f *testing.F) {
	f.Add([]byte(`{"id":"c-1","status":"ok","output":{"a":1}}`))
	f.Add([]byte(`{"id":"c-1","status":"failed","error":"x","repeat":true}`))
	f.Add([]byte(`{"id":"#","status":"pwned"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseResult(b)
		if err != nil {
			return
		}
		if r.ID != "" && ValidateID(r.ID) != nil {
			t.Fatalf("accepted invalid id %q", r.ID)
		}
		if _, err := r.Marshal(); err != nil {
			t.Fatalf("accepted result does not marshal: %v", err)
		}
	})
}
