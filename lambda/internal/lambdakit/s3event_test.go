package lambdakit_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// s3Record renders one record as S3 sends it (event structure 2.1, "Event
// message structure", Amazon S3 User Guide), with the key already encoded.
func s3Record(source, name, bucket, encodedKey, versionID string) map[string]any {
	return map[string]any{
		"eventVersion": "2.1", "eventSource": source, "awsRegion": "eu-west-1",
		"eventTime": "2026-11-02T09:00:00.123Z", "eventName": name,
		"userIdentity":      map[string]any{"principalId": "AWS:EXAMPLE"},
		"requestParameters": map[string]any{"sourceIPAddress": "192.0.2.1"},
		"responseElements":  map[string]any{"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "cfg",
			"bucket": map[string]any{"name": bucket, "ownerIdentity": map[string]any{"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::" + bucket},
			"object": map[string]any{"key": encodedKey, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "versionId": versionID, "sequencer": "0055AED6DCD90281E5"},
		},
	}
}

func s3Body(records ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"Records": records})
	return string(b)
}

func TestParseS3EventDecodesKeysAndKinds(t *testing.T) {
	body := s3Body(
		s3Record("aws:s3", "ObjectCreated:Put", "b", "configs/acme/red+flower.json", "v1"),
		s3Record("aws:s3", "ObjectRemoved:DeleteMarkerCreated", "b", "configs/acme/a%2Fb%2B1.json", ""),
	)
	n, err := lambdakit.ParseS3Event(body)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 2, 9, 0, 0, 123e6, time.UTC)
	want := []lambdakit.S3Change{
		{Bucket: "b", Key: "configs/acme/red flower.json", VersionID: "v1", EventName: "ObjectCreated:Put", EventTime: at},
		{Bucket: "b", Key: "configs/acme/a/b+1.json", EventName: "ObjectRemoved:DeleteMarkerCreated", Removed: true, EventTime: at},
	}
	if n.Test || len(n.Changes) != len(want) {
		t.Fatalf("notification %+v, want %d changes", n, len(want))
	}
	for i, w := range want {
		if g := n.Changes[i]; g.Bucket != w.Bucket || g.Key != w.Key || g.VersionID != w.VersionID || g.EventName != w.EventName || g.Removed != w.Removed || !g.EventTime.Equal(w.EventTime) {
			t.Errorf("change %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseS3EventTestEventCarriesNothing(t *testing.T) {
	// The message S3 sends when a notification configuration is created
	// ("Event message structure", Amazon S3 User Guide).
	n, err := lambdakit.ParseS3Event(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2014-10-13T15:57:02.089Z","Bucket":"amzn-s3-demo-bucket","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}`)
	if err != nil || !n.Test || len(n.Changes) != 0 {
		t.Errorf("test event parsed as %+v, %v; want Test and no changes", n, err)
	}
}

func TestParseS3EventRejectsWhatIsNotAnObjectEvent(t *testing.T) {
	cases := []struct {
		name, body, reason, says string
	}{
		{"not JSON", `not json`, lambdakit.ReasonBadEvent, "not JSON"},
		{"JSON array", `[1,2]`, lambdakit.ReasonBadEvent, "not JSON"},
		{"no records", `{"hello":"world"}`, lambdakit.ReasonBadEvent, "no Records"},
		{"empty records", `{"Records":[]}`, lambdakit.ReasonBadEvent, "no Records"},
		{"another source", s3Body(s3Record("aws:sqs", "ObjectCreated:Put", "b", "k", "")), lambdakit.ReasonBadEvent, `eventSource "aws:sqs"`},
		{"restore event", s3Body(s3Record("aws:s3", "ObjectRestore:Completed", "b", "k", "")), lambdakit.ReasonBadEvent, "neither ObjectCreated nor ObjectRemoved"},
		{"second record bad", s3Body(s3Record("aws:s3", "ObjectCreated:Put", "b", "k", ""), s3Record("aws:s3", "", "b", "k", "")), lambdakit.ReasonBadEvent, "record 1"},
		{"bad key escape", s3Body(s3Record("aws:s3", "ObjectCreated:Put", "b", "configs/a%zz.json", "")), lambdakit.ReasonBadKey, `invalid URL escape "%zz"`},
		{"records not a list", `{"Records":{"a":1}}`, lambdakit.ReasonBadEvent, "not JSON"},
		{"bad event time", strings.Replace(s3Body(s3Record("aws:s3", "ObjectCreated:Put", "b", "k", "")), "2026-11-02T09:00:00.123Z", "yesterday", 1), lambdakit.ReasonBadEvent, "not JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := lambdakit.ParseS3Event(c.body)
			r, ok := lambdakit.AsReject(err)
			if !ok {
				t.Fatalf("ParseS3Event = %+v, %v; want a RejectError", n, err)
			}
			if r.Reason != c.reason || !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q, want reason %s saying %q", err, c.reason, c.says)
			}
		})
	}
}

// Whatever the body, ParseS3Event never panics and returns only
// RejectErrors of the two parsing reasons; what it accepts is a test event
// or object-level changes whose Removed flag matches their event name.
func FuzzParseS3Event(f *testing.F) {
	f.Add(s3Body(s3Record("aws:s3", "ObjectCreated:Put", "b", "releases/stable/1.0.0/manifest.json", "v1")))
	f.Add(s3Body(s3Record("aws:s3", "ObjectRemoved:Delete", "b", "a+b%2Bc%25", "")))
	f.Add(`{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}`)
	f.Add(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"%"}}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		n, err := lambdakit.ParseS3Event(body)
		if err != nil {
			r, ok := lambdakit.AsReject(err)
			if !ok || (r.Reason != lambdakit.ReasonBadEvent && r.Reason != lambdakit.ReasonBadKey) {
				t.Fatalf("error %v is not a bad_event or bad_key RejectError", err)
			}
			return
		}
		if n.Test == (len(n.Changes) > 0) {
			t.Fatalf("accepted %+v: want either the test event or changes", n)
		}
		for _, c := range n.Changes {
			if c.Removed != strings.HasPrefix(c.EventName, "ObjectRemoved:") || !c.Removed && !strings.HasPrefix(c.EventName, "ObjectCreated:") {
				t.Fatalf("accepted change %+v", c)
			}
		}
	})
}
