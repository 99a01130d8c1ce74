// Package command is the wire format of commands the SaaS backend sends an
// agent and of the results the agent sends back, shared by the backend's
// sender (package github.com/agentgate/agentgate/command) and the reference
// agent (package agent). It imports nothing beyond the standard library and
// contract/topics.
//
// Protocol (MQTT 5 request/response, QoS 1, see docs/data-plane.md):
//
//	backend → <customer>/<thing>/down/command   Request JSON; MQTT 5 Response Topic =
//	                                             <customer>/<thing>/up/result, Correlation
//	                                             Data = the command ID, Message Expiry =
//	                                             seconds until the deadline
//	agent   → <customer>/<thing>/up/result      Result JSON; Correlation Data = the command ID
//
// The agent publishes a result only on its own up/result topic, whatever
// Response Topic a request names: an agent never publishes outside its own
// up/ space. The command ID makes a command idempotent: an agent executes an
// ID at most once and answers a repeated one with the result it already has.
package command

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/agentgate/agentgate/contract/topics"
)

// Subjects of the command protocol below down/ and up/.
const (
	RequestSubject = "command"
	ResultSubject  = "result"
)

// RequestTopic is the topic an agent receives commands on.
func RequestTopic(customer, thing string) string {
	return topics.DownTopic(customer, thing, RequestSubject)
}

// ResultTopic is the topic an agent publishes results on, and the Response
// Topic of every request.
func ResultTopic(customer, thing string) string {
	return topics.UpTopic(customer, thing, ResultSubject)
}

// Limits of a request. MaxMessageBytes bounds both messages as a whole.
const (
	MaxIDLen   = 64
	MaxNameLen = 64
	// MaxDeadline bounds how far ahead a deadline may be: an agent keeps a
	// command's ID at least this long, so a repeat within it is never
	// executed twice.
	MaxDeadline = 24 * time.Hour
	// MaxErrorLen bounds Result.Error.
	MaxErrorLen = 1024
)

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// Request is one command.
type Request struct {
	// ID identifies the command for idempotency and correlation; the sender
	// picks a random one unless the caller retries with the same ID.
	ID string `json:"id"`
	// Name selects the handler on the agent.
	Name string `json:"name"`
	// Args is the handler's input, a JSON value (may be absent).
	Args json.RawMessage `json:"args,omitempty"`
	// Deadline is when the command stops being worth executing (RFC 3339
	// with milliseconds, UTC); an agent that receives it later answers
	// StatusExpired without executing.
	Deadline time.Time `json:"deadline"`
}

// Status is how a command ended.
type Status string

// Statuses of a Result.
const (
	// StatusOK: the handler ran and succeeded; Output is its output.
	StatusOK Status = "ok"
	// StatusFailed: the handler ran and returned an error.
	StatusFailed Status = "failed"
	// StatusUnknown: the agent has no handler of that name; nothing ran.
	StatusUnknown Status = "unknown-command"
	// StatusExpired: the agent received the command after its deadline;
	// nothing ran.
	StatusExpired Status = "expired"
	// StatusRejected: the request was malformed; nothing ran.
	StatusRejected Status = "rejected"
)

// Result is an agent's answer to a Request.
type Result struct {
	// ID is the request's ID ("" only for a request too malformed to have one).
	ID string `json:"id"`
	// Status says how it ended.
	Status Status `json:"status"`
	// Output is the handler's output (StatusOK), a JSON value.
	Output json.RawMessage `json:"output,omitempty"`
	// Error explains any status other than StatusOK.
	Error string `json:"error,omitempty"`
	// Repeat is set when the agent answered a repeated ID from memory
	// instead of executing again.
	Repeat bool `json:"repeat,omitempty"`
}

// ValidateID reports whether id can be a command ID.
func ValidateID(id string) error {
	switch {
	case id == "":
		return errors.New("command id is empty")
	case len(id) > MaxIDLen:
		return fmt.Errorf("command id %.20q… is %d bytes; at most %d allowed", id, len(id), MaxIDLen)
	case !idPattern.MatchString(id):
		return fmt.Errorf("command id %q has characters outside [a-zA-Z0-9_.-]", id)
	}
	return nil
}

// ValidateName reports whether name can be a command name.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("command name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("command name %.20q… is %d bytes; at most %d allowed", name, len(name), MaxNameLen)
	case !idPattern.MatchString(name):
		return fmt.Errorf("command name %q has characters outside [a-zA-Z0-9_.-]", name)
	}
	return nil
}

// Validate checks a request's fields against now: a deadline in the past is
// valid (the agent answers StatusExpired) but one more than MaxDeadline
// ahead is not.
func (r Request) Validate(now time.Time) error {
	var errs []error
	if err := ValidateID(r.ID); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateName(r.Name); err != nil {
		errs = append(errs, err)
	}
	if r.Deadline.IsZero() {
		errs = append(errs, errors.New("command has no deadline"))
	} else if r.Deadline.After(now.Add(MaxDeadline)) {
		errs = append(errs, fmt.Errorf("deadline %s is more than %s ahead", r.Deadline.UTC().Format(time.RFC3339), MaxDeadline))
	}
	if len(r.Args) > 0 && !json.Valid(r.Args) {
		errs = append(errs, errors.New("args are not valid JSON"))
	}
	return errors.Join(errs...)
}

// Marshal encodes a valid request, refusing one larger than IoT carries.
func (r Request) Marshal(now time.Time) ([]byte, error) {
	if err := r.Validate(now); err != nil {
		return nil, err
	}
	return marshal(r)
}

// ParseRequest decodes and validates a request payload. Unknown fields are
// refused, so a typo in a field name is not silently ignored.
func ParseRequest(b []byte, now time.Time) (Request, error) {
	var r Request
	if err := decode(b, &r); err != nil {
		return Request{}, err
	}
	if err := r.Validate(now); err != nil {
		return r, err
	}
	return r, nil
}

// Marshal encodes a result, truncating Error to MaxErrorLen and refusing
// one larger than IoT carries.
func (r Result) Marshal() ([]byte, error) {
	if len(r.Error) > MaxErrorLen {
		r.Error = truncate(r.Error, MaxErrorLen)
	}
	if len(r.Output) > 0 && !json.Valid(r.Output) {
		return nil, errors.New("result output is not valid JSON")
	}
	return marshal(r)
}

// ParseResult decodes a result payload.
func ParseResult(b []byte) (Result, error) {
	var r Result
	if err := decode(b, &r); err != nil {
		return Result{}, err
	}
	if r.ID != "" {
		if err := ValidateID(r.ID); err != nil {
			return Result{}, err
		}
	}
	switch r.Status {
	case StatusOK, StatusFailed, StatusUnknown, StatusExpired, StatusRejected:
	default:
		return Result{}, fmt.Errorf("result status %.20q is not one of the known statuses", r.Status)
	}
	return r, nil
}

func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b) > topics.MaxMessageBytes {
		return nil, fmt.Errorf("message is %d bytes; IoT Core carries at most %d", len(b), topics.MaxMessageBytes)
	}
	return b, nil
}

func decode(b []byte, v any) error {
	if len(b) > topics.MaxMessageBytes {
		return fmt.Errorf("message is %d bytes; at most %d allowed", len(b), topics.MaxMessageBytes)
	}
	if !utf8.Valid(b) {
		return errors.New("message is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("message is not a valid command document: %w", err)
	}
	if dec.More() {
		return errors.New("message has data after its JSON object")
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
