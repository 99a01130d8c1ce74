// Package envelope is the retained configuration message an agent receives on
// its exact config topic, {version, sha256, issuedAt, config}: the type, the
// ordering rule and the checks an agent runs before applying one. The config
// publisher Lambda (lambda/internal/configpub) builds envelopes with it and the
// reference agent (agent/) parses them with it, so both sides agree byte for
// byte. It imports nothing beyond the standard library.
package envelope

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
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

// Errors CompactObject wraps, so callers can classify a bad document.
var (
	// ErrNotUTF8 means the document is not valid UTF-8.
	ErrNotUTF8 = errors.New("configuration is not UTF-8")
	// ErrBadJSON means the document is not valid JSON.
	ErrBadJSON = errors.New("configuration is not valid JSON")
	// ErrNotObject means the document is valid JSON but not one object.
	ErrNotObject = errors.New("configuration must be a JSON object")
)

// CompactObject checks that doc is one JSON object and returns it compacted:
// the exact bytes an envelope carries and hashes.
func CompactObject(doc []byte) ([]byte, error) {
	if !utf8.Valid(doc) {
		return nil, ErrNotUTF8
	}
	if !json.Valid(doc) {
		var v any
		err := json.Unmarshal(doc, &v)
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if buf.Len() == 0 || buf.Bytes()[0] != '{' {
		return nil, ErrNotObject
	}
	return buf.Bytes(), nil
}

// Sum is the hex SHA-256 an envelope carries for a compacted configuration.
func Sum(cfg []byte) string {
	s := sha256.Sum256(cfg)
	return hex.EncodeToString(s[:])
}

// Encode returns an envelope's bytes for a configuration already compacted by
// CompactObject. It is written by hand, not json.Marshal: Marshal would
// re-escape the config (e.g. '&' as \u0026), and the hash must cover the
// exact bytes sent.
func Encode(cfg []byte, version int64, issuedAt time.Time) ([]byte, Envelope) {
	env := Envelope{Version: version, SHA256: Sum(cfg), IssuedAt: issuedAt.UTC().Format(time.RFC3339Nano), Config: cfg}
	b := fmt.Appendf(nil, `{"version":%d,"sha256":%q,"issuedAt":%q,"config":`, env.Version, env.SHA256, env.IssuedAt)
	b = append(append(b, cfg...), '}')
	return b, env
}

// Parse decodes and checks a retained config message as an agent must
// before applying it: known fields only, a positive version, an RFC 3339
// issuedAt, a JSON object config whose compacted bytes' SHA-256 matches.
// The returned Config is those compacted bytes.
func Parse(b []byte) (Envelope, error) {
	var e Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Envelope{}, fmt.Errorf("envelope: %w", err)
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) != 0 {
		return Envelope{}, fmt.Errorf("envelope: %d bytes of trailing data after the JSON object", len(rest))
	}
	if e.Version <= 0 {
		return Envelope{}, fmt.Errorf("envelope version %d is not positive", e.Version)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.IssuedAt); err != nil {
		return Envelope{}, fmt.Errorf("envelope issuedAt: %w", err)
	}
	cfg, err := CompactObject(e.Config)
	if err != nil {
		return Envelope{}, fmt.Errorf("envelope config: %w", err)
	}
	if Sum(cfg) != e.SHA256 {
		return Envelope{}, fmt.Errorf("envelope sha256 %.64q does not match its config", e.SHA256)
	}
	e.Config = cfg // the bytes the hash covers, as Config's doc says
	return e, nil
}
