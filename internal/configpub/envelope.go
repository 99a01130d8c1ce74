package configpub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/agentgate/agentgate/internal/cpkit"
)

// Envelope is the retained message on an agent's config topic.
//
// Version orders configurations: it is the Unix time in milliseconds of the
// S3 object (version) the configuration comes from (S3 reports whole
// seconds, so it is a multiple of 1000 unless a delete event's time set it),
// and SHA256 breaks ties. Agents apply an envelope only when it is Newer
// than the one they hold.
type Envelope struct {
	// Version is monotonic per agent: see Envelope.
	Version int64 `json:"version"`
	// SHA256 is the hex SHA-256 of Config's bytes exactly as sent.
	SHA256 string `json:"sha256"`
	// IssuedAt is the RFC 3339 time of the source object (not of publishing,
	// so republishing the same change yields the same bytes).
	IssuedAt string `json:"issuedAt"`
	// Config is the configuration document, a JSON object, compacted.
	Config json.RawMessage `json:"config"`
}

// Newer reports whether e should replace cur on an agent.
func (e Envelope) Newer(cur Envelope) bool {
	if e.Version != cur.Version {
		return e.Version > cur.Version
	}
	return e.SHA256 > cur.SHA256
}

// Reasons a configuration is rejected; they are the Reason dimension of the
// ConfigRejected metric.
const (
	ReasonBadJSON         = "bad_json"
	ReasonNotObject       = "not_object"
	ReasonOversize        = "oversize"
	ReasonBadKey          = "bad_key"
	ReasonUnknownCustomer = "unknown_customer"
	ReasonUnknownAgent    = "unknown_agent"
	ReasonBadEvent        = "bad_event"
)

// RejectError is invalid input: it is logged and counted, never published
// and never retried.
type RejectError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Err explains it.
	Err error
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// AsReject returns the RejectError in err's chain, if any.
func AsReject(err error) (*RejectError, bool) {
	var r *RejectError
	ok := errors.As(err, &r)
	return r, ok
}

// ValidateConfig checks a configuration document and returns it compacted:
// it must be one JSON object.
func ValidateConfig(doc []byte) ([]byte, error) {
	if !utf8.Valid(doc) {
		return nil, reject(ReasonBadJSON, "configuration is not UTF-8")
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v)
		return nil, reject(ReasonBadJSON, "configuration is not valid JSON: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return nil, reject(ReasonBadJSON, "configuration is not valid JSON: %v", err)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, reject(ReasonNotObject, "configuration must be a JSON object")
	}
	return buf.Bytes(), nil
}

// BuildEnvelope validates doc and returns the envelope's bytes. The result
// depends only on its inputs, so replaying a change publishes the same bytes.
func BuildEnvelope(doc []byte, version int64, issuedAt time.Time) ([]byte, Envelope, error) {
	cfg, err := ValidateConfig(doc)
	if err != nil {
		return nil, Envelope{}, err
	}
	sum := sha256.Sum256(cfg)
	env := Envelope{Version: version, SHA256: hex.EncodeToString(sum[:]), IssuedAt: issuedAt.UTC().Format(time.RFC3339Nano), Config: cfg}
	// Written by hand, not json.Marshal: Marshal would re-escape the config
	// (e.g. '&' as \u0026), and the hash must cover the exact bytes sent.
	b := fmt.Appendf(nil, `{"version":%d,"sha256":%q,"issuedAt":%q,"config":`, env.Version, env.SHA256, env.IssuedAt)
	b = append(append(b, cfg...), '}')
	if len(b) > cpkit.MaxIoTMessageBytes {
		return nil, Envelope{}, reject(ReasonOversize, "envelope is %d bytes; IoT Core messages are limited to %d", len(b), cpkit.MaxIoTMessageBytes)
	}
	return b, env, nil
}

// ParseEnvelope decodes and checks a retained config message as an agent would.
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("envelope: %w", err)
	}
	if e.Version <= 0 {
		return Envelope{}, fmt.Errorf("envelope version %d is not positive", e.Version)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.IssuedAt); err != nil {
		return Envelope{}, fmt.Errorf("envelope issuedAt: %w", err)
	}
	cfg, err := ValidateConfig(e.Config)
	if err != nil {
		return Envelope{}, fmt.Errorf("envelope config: %w", err)
	}
	sum := sha256.Sum256(cfg)
	if hex.EncodeToString(sum[:]) != e.SHA256 {
		return Envelope{}, fmt.Errorf("envelope sha256 %s does not match its config", e.SHA256)
	}
	return e, nil
}
