package releasepub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

const bucket = "artifacts"

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

type env struct {
	aws     *awsstandin.AWS
	kms     *awsstandin.KMS
	h       *Handler
	metrics *bytes.Buffer
	verify  *artifacts.Verifier
}

func newEnv(t *testing.T) *env {
	a := awsstandin.Start()
	t.Cleanup(a.Close)
	cfg := awsstandin.Config()
	lambdakit.RetryPolicy{MaxAttempts: 3, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, AttemptTimeout: 300 * time.Millisecond}.Apply(&cfg)
	k := awsstandin.StartKMS()
	t.Cleanup(k.Close)
	keyARN := k.CreateSigningKey()
	v, err := artifacts.NewVerifier(k.PublicKey(keyARN))
	if err != nil {
		t.Fatal(err)
	}
	m := &bytes.Buffer{}
	return &env{aws: a, kms: k, metrics: m, verify: v, h: &Handler{
		KMS:        kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(k.URL) }),
		SigningKey: keyARN,
		S3:         s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(a.S3URL); o.UsePathStyle = true }),
		Data:       iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(a.DataURL) }),
		Bucket:     bucket,
		Channels:   []string{"stable", "beta"},
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:    &lambdakit.Metrics{W: m, Namespace: "agentgate/ControlPlane", Service: "releasepublisher"},
	}}
}

func event(key string) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-11-02T09:00:00.000Z",
		"s3": map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key}},
	}}})
	return string(b)
}

func (e *env) handle(t *testing.T, bodies ...string) events.SQSEventResponse {
	t.Helper()
	var ev events.SQSEvent
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprint("m", i), Body: b})
	}
	resp, err := e.h.Handle(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func TestReleaseIsAnnouncedWithSizeAndSHA256(t *testing.T) {
	e := newEnv(t)
	linux := bytes.Repeat([]byte("L"), 300_000)
	win := []byte("windows build")
	e.aws.PutObject(bucket, artifacts.ReleaseFileKey("stable", "1.4.2", "linux-arm64", "agentgate-agent"), linux, t0)                 // hashed by streaming
	e.aws.PutObjectWithChecksum(bucket, artifacts.ReleaseFileKey("stable", "1.4.2", "windows-amd64", "agentgate-agent.exe"), win, t0) // S3 checksum used
	e.aws.PutObject(bucket, "releases/stable/1.4.2/manifest.json", []byte(`{"version":"1.4.2","platforms":{"windows-amd64":"agentgate-agent.exe","linux-arm64":"agentgate-agent"},"sequence":7,"rollout":{"percent":10,"customers":["acme"]}}`), t0)
	body := event("releases/stable/1.4.2/manifest.json")
	if resp := e.handle(t, body); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %+v", resp.BatchItemFailures)
	}
	raw, ok := e.aws.Retained(topics.ReleaseTopic("stable"))
	if !ok {
		t.Fatal("nothing retained on the release topic")
	}
	ann, err := artifacts.ParseAnnouncement(raw)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.verify.Verify(ann)
	if err != nil {
		t.Fatalf("announcement does not verify with the KMS key's public key: %v", err)
	}
	if a.Sequence != 7 || a.Rollout.Percent != 10 || len(a.Rollout.Customers) != 1 || a.Rollback || a.IssuedAt != "2026-11-02T09:00:00Z" {
		t.Errorf("manifest %+v", a)
	}
	if e.kms.Count("Sign") != 1 || e.kms.Count("GetPublicKey") != 1 {
		t.Errorf("KMS calls: %d Sign, %d GetPublicKey", e.kms.Count("Sign"), e.kms.Count("GetPublicKey"))
	}
	want := []artifacts.ReleaseArtifact{
		{Platform: "linux-arm64", Key: "releases/stable/1.4.2/linux-arm64/agentgate-agent", Size: int64(len(linux)), SHA256: hexSHA(linux)},
		{Platform: "windows-amd64", Key: "releases/stable/1.4.2/windows-amd64/agentgate-agent.exe", Size: int64(len(win)), SHA256: hexSHA(win)},
	}
	if a.Version != "1.4.2" || a.Channel != "stable" || a.Bucket != bucket || len(a.Artifacts) != 2 {
		t.Fatalf("announcement %+v", a)
	}
	for i, w := range want {
		got := a.Artifacts[i]
		if got.VersionID == "" {
			t.Errorf("artifact %d has no version ID", i)
		}
		got.VersionID = ""
		if got != w {
			t.Errorf("artifact %d = %+v, want %+v", i, got, w)
		}
	}
	if n := e.aws.Count("GetObject"); n != 2 { // manifest + the linux build; the windows build's hash came from its checksum
		t.Errorf("GetObject calls = %d, want 2", n)
	}
	// Replay: the same manifest (ECDSA signatures differ from one signing
	// to the next; the signed bytes do not), and the key is fetched once.
	e.handle(t, body)
	again, _ := e.aws.Retained(topics.ReleaseTopic("stable"))
	if ann2, err := artifacts.ParseAnnouncement(again); err != nil || !bytes.Equal(ann2.Manifest, ann.Manifest) {
		t.Errorf("replay changed the manifest: %v", err)
	}
	if e.kms.Count("GetPublicKey") != 1 {
		t.Errorf("GetPublicKey called %d times", e.kms.Count("GetPublicKey"))
	}
}

func TestInvalidReleasesAreRejectedAndNotPublished(t *testing.T) {
	e := newEnv(t)
	e.aws.PutObject(bucket, "releases/stable/2.0.0/manifest.json", []byte(`{"version":"2.0.0","platforms":{"linux-amd64":"missing"},"sequence":1,"rollout":{"percent":100}}`), t0)
	e.aws.PutObject(bucket, "releases/stable/2.0.1/manifest.json", []byte(`{"version":"9.9.9","platforms":{"linux-amd64":"a"},"sequence":1,"rollout":{"percent":100}}`), t0)
	e.aws.PutObject(bucket, "releases/stable/2.0.2/manifest.json", []byte(`{"version":`), t0)
	e.aws.PutObject(bucket, "releases/nightly/2.0.3/manifest.json", []byte(`{}`), t0)
	e.aws.PutObject(bucket, "releases/stable/2.0.4/manifest.json", []byte(`{"version":"2.0.4","platforms":{"linux-amd64":"../../x"},"sequence":1,"rollout":{"percent":100}}`), t0)
	resp := e.handle(t,
		event("releases/stable/2.0.0/manifest.json"),
		event("releases/stable/2.0.1/manifest.json"),
		event("releases/stable/2.0.2/manifest.json"),
		event("releases/nightly/2.0.3/manifest.json"),
		event("releases/stable/2.0.4/manifest.json"),
		event("releases/stable/manifest.json"),
		`not json`,
	)
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("invalid input reported for retry: %+v", resp.BatchItemFailures)
	}
	if n := e.aws.Count("Publish"); n != 0 {
		t.Errorf("%d publishes for invalid releases", n)
	}
	for _, r := range []string{"missing_artifact", "bad_manifest", "unknown_channel", "bad_key", "bad_event"} {
		if !strings.Contains(e.metrics.String(), `"Reason":"`+r+`"`) {
			t.Errorf("no ReleaseRejected metric with reason %s", r)
		}
	}
}

func TestTransientFailuresAreReportedForRetry(t *testing.T) {
	e := newEnv(t)
	e.aws.PutObject(bucket, artifacts.ReleaseFileKey("beta", "3.0.0", "linux-amd64", "a"), []byte("x"), t0)
	e.aws.PutObject(bucket, "releases/beta/3.0.0/manifest.json", []byte(`{"version":"3.0.0","platforms":{"linux-amd64":"a"},"sequence":1,"rollout":{"percent":100}}`), t0)
	e.aws.SetFault(func(op, target string) awsstandin.Fault {
		if op == "Publish" {
			return awsstandin.Fault{Status: http.StatusTooManyRequests}
		}
		return awsstandin.Fault{}
	})
	resp := e.handle(t, event("releases/beta/3.0.0/manifest.json"))
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m0" {
		t.Fatalf("failures = %+v, want m0", resp.BatchItemFailures)
	}
	e.aws.SetFault(nil)
	if resp := e.handle(t, event("releases/beta/3.0.0/manifest.json")); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failed: %+v", resp.BatchItemFailures)
	}
	if _, ok := e.aws.Retained(topics.ReleaseTopic("beta")); !ok {
		t.Error("not announced after retry")
	}
}

func FuzzManifest(f *testing.F) {
	f.Add("releases/stable/1.0.0/manifest.json", `{"version":"1.0.0","platforms":{"linux-amd64":"a"},"sequence":1,"rollout":{"percent":5}}`)
	f.Add("releases/x/../manifest.json", `{"version":"..","platforms":{"a-b":".."}}`)
	f.Fuzz(func(t *testing.T, key, body string) {
		ch, v, err := artifacts.ParseManifestKey(key)
		if err != nil {
			return
		}
		m, err := ParseManifest([]byte(body), v)
		if err != nil {
			return
		}
		for p, file := range m.Platforms {
			k := artifacts.ReleaseFileKey(ch, v, p, file)
			if strings.Contains(k, "..") || strings.Count(k, "/") != 4 || !strings.HasPrefix(k, artifacts.ReleasePrefix+ch+"/"+v+"/") {
				t.Fatalf("accepted manifest yields artifact key %q outside its release folder", k)
			}
		}
	})
}

// TestParseEventRefusesRecordsOfSeveralBuckets: every record must name the
// one bucket, so an empty bucket name next to a named one is refused (a
// reject, never a retry), whichever comes first.
func TestParseEventRefusesRecordsOfSeveralBuckets(t *testing.T) {
	record := func(bucket string) string {
		return `{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","eventTime":"2026-11-02T09:00:00.123Z","s3":{"bucket":{"name":"` + bucket + `"},"object":{"key":"releases/stable/1.0.0/manifest.json"}}}`
	}
	for _, buckets := range [][2]string{{"", "rel"}, {"rel", ""}, {"rel", "other"}} {
		body := `{"Records":[` + record(buckets[0]) + `,` + record(buckets[1]) + `]}`
		_, _, err := ParseEvent(body)
		r, ok := lambdakit.AsReject(err)
		if !ok || r.Reason != ReasonBadEvent || !strings.Contains(err.Error(), "several buckets") {
			t.Errorf("buckets %q: err = %v, want a bad_event reject for several buckets", buckets, err)
		}
	}
	bucket, keys, err := ParseEvent(`{"Records":[` + record("rel") + `,` + record("rel") + `]}`)
	if err != nil || bucket != "rel" || len(keys) != 2 {
		t.Errorf("one bucket: %q %q %v, want rel with two keys", bucket, keys, err)
	}
}

// A manifest without a sequence or an explicit rollout, or with a version
// agents cannot order, is refused: nothing reaches every agent by default.
func TestManifestWithoutSequenceOrRolloutIsRejected(t *testing.T) {
	e := newEnv(t)
	for i, body := range []string{
		`{"version":"1.0.0","platforms":{"linux-amd64":"a"},"rollout":{"percent":100}}`,
		`{"version":"1.0.0","platforms":{"linux-amd64":"a"},"sequence":3}`,
		`{"version":"1.0.0","platforms":{"linux-amd64":"a"},"sequence":3,"rollout":{"percent":101}}`,
	} {
		e.aws.PutObject(bucket, "releases/stable/1.0.0/manifest.json", []byte(body), t0)
		if resp := e.handle(t, event("releases/stable/1.0.0/manifest.json")); len(resp.BatchItemFailures) != 0 {
			t.Errorf("%d: reported for retry", i)
		}
	}
	e.aws.PutObject(bucket, artifacts.ReleaseFileKey("stable", "1.0.0-rc1", "linux-amd64", "a"), []byte("x"), t0)
	e.aws.PutObject(bucket, "releases/stable/1.0.0-rc1/manifest.json", []byte(`{"version":"1.0.0-rc1","platforms":{"linux-amd64":"a"},"sequence":3,"rollout":{"percent":1}}`), t0)
	e.handle(t, event("releases/stable/1.0.0-rc1/manifest.json"))
	if n := e.aws.Count("Publish"); n != 0 || e.kms.Count("Sign") != 0 {
		t.Errorf("%d publishes, %d signatures for rejected manifests", n, e.kms.Count("Sign"))
	}
	if c := strings.Count(e.metrics.String(), `"Reason":"bad_manifest"`); c != 4 {
		t.Errorf("%d bad_manifest rejections, want 4", c)
	}
}

// KMS refusing to sign (a key policy without kms:Sign for the publisher, a
// throttle) is a failure SQS retries, and nothing unsigned is published.
func TestSigningFailureIsRetriedAndNothingUnsignedIsPublished(t *testing.T) {
	e := newEnv(t)
	e.aws.PutObject(bucket, artifacts.ReleaseFileKey("stable", "1.0.0", "linux-amd64", "a"), []byte("x"), t0)
	e.aws.PutObject(bucket, "releases/stable/1.0.0/manifest.json", []byte(`{"version":"1.0.0","platforms":{"linux-amd64":"a"},"sequence":1,"rollout":{"percent":100}}`), t0)
	e.kms.SetDeny(func(op, _ string) bool { return op == "Sign" })
	if resp := e.handle(t, event("releases/stable/1.0.0/manifest.json")); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("failures = %+v, want the message back for retry", resp.BatchItemFailures)
	}
	if n := e.aws.Count("Publish"); n != 0 {
		t.Fatalf("%d publishes without a signature", n)
	}
	e.kms.SetDeny(nil)
	if resp := e.handle(t, event("releases/stable/1.0.0/manifest.json")); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failed: %+v", resp.BatchItemFailures)
	}
	raw, _ := e.aws.Retained(topics.ReleaseTopic("stable"))
	ann, err := artifacts.ParseAnnouncement(raw)
	if err == nil {
		_, err = e.verify.Verify(ann)
	}
	if err != nil {
		t.Fatalf("announcement after retry: %v", err)
	}
}
