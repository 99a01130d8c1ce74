package configpub

import (
	"errors"
	"time"

	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// Envelope is the retained message on an agent's config topic; see
// contract/envelope, which the reference agent shares.
type Envelope = envelope.Envelope

// Reasons a configuration is rejected; they are the Reason dimension of the
// ConfigRejected metric.
const (
	ReasonBadJSON         = "bad_json"
	ReasonNotObject       = "not_object"
	ReasonOversize        = lambdakit.ReasonOversize
	ReasonBadKey          = lambdakit.ReasonBadKey
	ReasonUnknownCustomer = "unknown_customer"
	ReasonUnknownAgent    = "unknown_agent"
	ReasonBadEvent        = lambdakit.ReasonBadEvent
)

// ValidateConfig checks a configuration document and returns it compacted:
// it must be one JSON object.
func ValidateConfig(doc []byte) ([]byte, error) {
	cfg, err := envelope.CompactObject(doc)
	switch {
	case errors.Is(err, envelope.ErrNotObject):
		return nil, &lambdakit.RejectError{Reason: ReasonNotObject, Err: err}
	case err != nil:
		return nil, &lambdakit.RejectError{Reason: ReasonBadJSON, Err: err}
	}
	return cfg, nil
}

// BuildEnvelope validates doc and returns the envelope's bytes. The result
// depends only on its inputs, so replaying a change publishes the same bytes.
func BuildEnvelope(doc []byte, version int64, issuedAt time.Time) ([]byte, Envelope, error) {
	cfg, err := ValidateConfig(doc)
	if err != nil {
		return nil, Envelope{}, err
	}
	b, env := envelope.Encode(cfg, version, issuedAt)
	if len(b) > topics.MaxMessageBytes {
		return nil, Envelope{}, lambdakit.Reject(ReasonOversize, "envelope is %d bytes; IoT Core messages are limited to %d", len(b), topics.MaxMessageBytes)
	}
	return b, env, nil
}

// ParseEnvelope decodes and checks a retained config message as an agent would.
func ParseEnvelope(b []byte) (Envelope, error) { return envelope.Parse(b) }
