package configpub

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// Whatever the body, ParseMessage never panics; an accepted fan-out message
// names valid IDs and accepted S3 records name parseable keys.
func FuzzParseMessage(f *testing.F) {
	f.Add(s3EventBody("ObjectCreated:Put", "configs/acme/a1.json", "v1", time.Unix(0, 0)))
	f.Add(s3EventBody("ObjectRemoved:DeleteMarkerCreated", "configs/acme/_default.json", "", time.Unix(0, 0)))
	f.Add(`{"kind":"fanout","customer":"acme","agent":"a1"}`)
	f.Add(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`)
	f.Add(`{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"configs/acme/a%2Fb.json"}}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		m, err := ParseMessage(body)
		if err != nil {
			if _, ok := lambdakit.AsReject(err); !ok {
				t.Fatalf("error %v is not a RejectError", err)
			}
			return
		}
		if m.Fanout != nil {
			if topics.ValidateCustomerID(m.Fanout.Customer) != nil || topics.ValidateThingName(m.Fanout.Agent) != nil {
				t.Fatalf("accepted fan-out %+v", m.Fanout)
			}
		}
		for _, c := range m.Changes {
			if _, err := artifacts.ParseConfigKey(c.Key.String()); err != nil {
				t.Fatalf("accepted change with key %+v: %v", c.Key, err)
			}
		}
	})
}

// An envelope is built only from a JSON object, never exceeds the IoT
// message limit, and parses back (as an agent would) to the same config.
func FuzzBuildEnvelope(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{ "nested": {"x": [1, 2, "three"]}, "u": "\u00e9" }`, `[1]`, `"s"`, `{`, `{"a":1}{"b":2}`, `null`, ""} {
		f.Add([]byte(s), int64(1700000000000))
	}
	f.Fuzz(func(t *testing.T, doc []byte, version int64) {
		if version <= 0 {
			version = 1
		}
		b, env, err := BuildEnvelope(doc, version, time.UnixMilli(version))
		if err != nil {
			if _, ok := lambdakit.AsReject(err); !ok {
				t.Fatalf("error %v is not a RejectError", err)
			}
			return
		}
		if len(b) > topics.MaxMessageBytes {
			t.Fatalf("envelope of %d bytes", len(b))
		}
		back, err := ParseEnvelope(b)
		if err != nil {
			t.Fatalf("built envelope does not parse: %v\n%s", err, b)
		}
		if !bytes.Equal(back.Config, env.Config) || back.SHA256 != env.SHA256 || back.Version != version {
			t.Fatalf("round trip changed the envelope")
		}
		var v map[string]any
		if json.Unmarshal(back.Config, &v) != nil {
			t.Fatalf("config is not an object: %s", back.Config)
		}
		b2, _, _ := BuildEnvelope(doc, version, time.UnixMilli(version))
		if !bytes.Equal(b, b2) {
			t.Fatal("the same input built different envelopes")
		}
	})
}
