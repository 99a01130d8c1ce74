package lambdakit

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// S3TestEventName is the Event of the test message S3 sends to a
// destination when a notification configuration is set up.
const S3TestEventName = "s3:TestEvent"

// S3Change is one record of an S3 event notification.
type S3Change struct {
	// Bucket is the bucket the event came from.
	Bucket string
	// Key is the object key, URL-decoded.
	Key string
	// VersionID is the object version the event is about (empty when the
	// bucket is not versioned).
	VersionID string
	// EventName is e.g. "ObjectCreated:Put" or "ObjectRemoved:DeleteMarkerCreated".
	EventName string
	// Removed is true for ObjectRemoved events (a delete or a delete marker).
	Removed bool
	// EventTime is when S3 finished processing the request.
	EventTime time.Time
}

// S3Notification is one S3 event notification as S3 delivers it to an SQS
// queue (the message body; no SNS envelope: the buckets notify the queues
// directly). Exactly one of Test and Changes is set.
type S3Notification struct {
	// Test is true for the s3:TestEvent message, which carries no records.
	Test bool
	// Changes are the object-level records, in order.
	Changes []S3Change
}

// s3Body is either shape of an S3 notification body: the event with
// Records, or the test message.
type s3Body struct {
	events.S3Event
	events.S3TestEvent
}

// ParseS3Event parses an S3 event notification body ("Event message
// structure", Amazon S3 User Guide). It accepts only object-created and
// object-removed records from aws:s3, and returns RejectErrors only: a body
// that does not parse now never will.
//
// Object keys arrive URL-encoded in the form encoding, "red flower.jpg" as
// "red+flower.jpg" (same page). aws-lambda-go decodes them with
// url.QueryUnescape into S3Object.URLDecodedKey while unmarshalling, which is
// the one decoding both publishers use; a key that is not validly encoded
// fails the whole body and is rejected as ReasonBadKey.
func ParseS3Event(body string) (S3Notification, error) {
	var b s3Body
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		var esc url.EscapeError
		if errors.As(err, &esc) {
			return S3Notification{}, Reject(ReasonBadKey, "event object key is not URL-encoded as S3 encodes keys: %v", err)
		}
		return S3Notification{}, Reject(ReasonBadEvent, "message body is not JSON of an S3 event notification: %v", err)
	}
	if b.Event == S3TestEventName {
		return S3Notification{Test: true}, nil
	}
	if len(b.Records) == 0 {
		return S3Notification{}, Reject(ReasonBadEvent, "message is not an S3 event notification (no Records)")
	}
	n := S3Notification{Changes: make([]S3Change, 0, len(b.Records))}
	for i, r := range b.Records {
		if r.EventSource != "aws:s3" {
			return S3Notification{}, Reject(ReasonBadEvent, "record %d: eventSource %q is not aws:s3", i, r.EventSource)
		}
		var removed bool
		switch {
		case strings.HasPrefix(r.EventName, "ObjectCreated:"):
		case strings.HasPrefix(r.EventName, "ObjectRemoved:"):
			removed = true
		default:
			return S3Notification{}, Reject(ReasonBadEvent, "record %d: event %q is neither ObjectCreated nor ObjectRemoved", i, r.EventName)
		}
		n.Changes = append(n.Changes, S3Change{
			Bucket:    r.S3.Bucket.Name,
			Key:       r.S3.Object.URLDecodedKey,
			VersionID: r.S3.Object.VersionID,
			EventName: r.EventName,
			Removed:   removed,
			EventTime: r.EventTime,
		})
	}
	return n, nil
}
