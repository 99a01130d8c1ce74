package lambdakit

import (
	"errors"
	"fmt"
)

// Reasons shared by both publishers; each publisher adds its own. A reason is
// the Reason dimension of the publisher's rejected-message metric, so the set
// must stay small and fixed.
const (
	// ReasonBadEvent is a message that is not an event this publisher serves.
	ReasonBadEvent = "bad_event"
	// ReasonBadKey is an object key outside the bucket's layout, or one that
	// is not URL-encoded as S3 encodes event keys.
	ReasonBadKey = "bad_key"
	// ReasonOversize is an object or message above a size limit.
	ReasonOversize = "oversize"
)

// RejectError is input that is invalid and will stay invalid: it is logged
// and counted (Reporter.Rejected), never published, and not reported as a
// batch item failure, because SQS redelivering it cannot help. Any other
// error is a failure SQS redelivers.
type RejectError struct {
	// Reason is a short, fixed, snake_case cause (a metric dimension value).
	Reason string
	// Err explains it.
	Err error
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns the explanation.
func (e *RejectError) Unwrap() error { return e.Err }

// Reject returns a RejectError for reason with a formatted explanation.
func Reject(reason, format string, args ...any) error {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// AsReject returns the RejectError in err's chain, if any.
func AsReject(err error) (*RejectError, bool) {
	var r *RejectError
	ok := errors.As(err, &r)
	return r, ok
}
