//go:build linux

package releasepub

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/agent/update"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/testkit/releasekit"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

const labBucket = "acme-artifacts"

// TestReleaseEndToEndThroughTheRelays: a build and its manifest are
// uploaded to the artifacts bucket, the publisher signs the manifest with
// the KMS stand-in's key and retains the announcement, the broker carries it
// to an agent connected through the lab's relays, and the agent downloads
// its build by version ID through the relays' S3 route with its own role
// credentials, verifies signature and SHA-256, and hands it to the hook;
// its reports arrive on its up topic. Then the first relay dies and a
// second release, whose object is tampered with in S3, reaches the agent
// through the other relay and is refused before the hook.
func TestReleaseEndToEndThroughTheRelays(t *testing.T) {
	l, err := agentlab.Start(t.TempDir(), agentlab.Options{ArtifactsBucket: labBucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	k := awsstandin.StartKMS()
	t.Cleanup(k.Close)
	keyARN := k.CreateSigningKey()
	cfg := awsstandin.Config()
	lambdakit.RetryPolicy{MaxAttempts: 3, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 10 * time.Millisecond, AttemptTimeout: 5 * time.Second}.Apply(&cfg)
	pub := &Handler{
		S3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(l.S3.S3URL); o.UsePathStyle = true }),
		Data:   iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(l.S3.DataURL) }),
		Bucket: labBucket, Channels: []string{"stable"},
		KMS: kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(k.URL) }), SigningKey: keyARN,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: &lambdakit.Metrics{W: io.Discard, Namespace: "t", Service: "t"},
	}
	// publish uploads build and manifest, runs the publisher on the S3
	// event and forwards the retained announcement to the lab's broker
	// (iot-data's retained store is the broker's in AWS).
	publish := func(version string, seq uint64, build []byte) string {
		key := artifacts.ReleaseFileKey("stable", version, "linux-amd64", "agentgate-agent")
		l.S3.PutObjectWithChecksum(labBucket, key, build, time.Now())
		mkey := "releases/stable/" + version + "/manifest.json"
		m, _ := json.Marshal(artifacts.UploadManifest{Version: version, Platforms: map[string]string{"linux-amd64": "agentgate-agent"}, Sequence: seq, Rollout: &artifacts.Rollout{Percent: 100}})
		l.S3.PutObject(labBucket, mkey, m, time.Now())
		resp, err := pub.Handle(t.Context(), sqsEvent(mkey))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("publisher: %v %+v", err, resp)
		}
		raw, ok := l.S3.Retained(topics.ReleaseTopic("stable"))
		if !ok {
			t.Fatal("nothing announced")
		}
		if err := l.Broker.Publish(topics.ReleaseTopic("stable"), raw, true, 1); err != nil {
			t.Fatal(err)
		}
		return key
	}

	reports := releasekit.SubscribeReports(t, l)
	type handed struct {
		update.Release
		body []byte
	}
	installed := make(chan handed, 2)
	var u *update.Updater
	a, err := agent.New(agent.Config{
		CustomerID: agentlab.CustomerID, ThingName: agentlab.ThingName,
		IoTEndpoint: agentlab.IoTHost, CredentialsEndpoint: agentlab.CredsHost, RoleAlias: agentlab.RoleAlias,
		Certificate: l.AgentCert, RootCAs: l.CA.Pool,
		Dialer:      &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: l.RelayPort, Resolver: l.DNS.Resolver(), Timeout: 2 * time.Second},
		BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second, ConnectTimeout: 10 * time.Second,
		OnRelease: func(p []byte) { u.Offer(p) },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	u, err = update.New(update.Config{
		CustomerID: agentlab.CustomerID, ThingName: agentlab.ThingName, Platform: "linux-amd64", CurrentVersion: "1.4.0",
		Keys:        []*ecdsa.PublicKey{k.PublicKey(keyARN)},
		Credentials: a.Credentials(), Region: a.Region(), HTTPClient: a.HTTPClient(), // no endpoint override: the bucket's S3 host via the relay
		Dir: t.TempDir(), StallTimeout: 5 * time.Second,
		Installer: update.InstallerFunc(func(_ context.Context, r update.Release) error {
			b, err := os.ReadFile(r.Path) // the file is the hook's only while it runs
			installed <- handed{r, b}
			return err
		}),
		Report: func(ctx context.Context, p []byte) error {
			return a.Publish(ctx, update.ReportSubject, p)
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { a.Run(ctx); done <- struct{}{} }()
	go func() { u.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	build := bytes.Repeat([]byte("agentgate-agent 1.5.0 "), 20000)
	publish("1.5.0", 1, build)
	deadline := time.After(60 * time.Second) // deadlock guard, not a performance bound
	select {
	case r := <-installed:
		if !bytes.Equal(r.body, build) || r.Version != "1.5.0" {
			t.Fatalf("hook got %d bytes of version %s", len(r.body), r.Version)
		}
	case <-deadline:
		t.Fatal("the release never reached the hook")
	}
	awaitReport(t, reports, update.PhaseInstalled, "")
	admitted, denied := l.ArtifactRequests(agentlab.ThingName)
	if admitted < 1 || denied != 0 {
		t.Errorf("S3 front admitted %d requests signed with %s's role credentials, denied %d", admitted, agentlab.ThingName, denied)
	}
	viaRelay := func(i int) float64 {
		v, err := l.Relays[i].Metric("agentgate_relay_connections_total", "route="+l.ArtifactsHost)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if viaRelay(0) < 1 {
		t.Errorf("relay 0 relayed %v connections to the artifacts host", viaRelay(0))
	}

	// The first relay dies; a tampered second release comes through the other.
	l.Relays[0].Kill()
	key := artifacts.ReleaseFileKey("stable", "1.6.0", "linux-amd64", "agentgate-agent")
	l.S3.SetBodyFault(func(k string, _ int) awsstandin.BodyFault {
		if k == labBucket+"/"+key {
			return awsstandin.BodyFault{Replace: []byte("agentgate-agent 6.6.6")} // same length, other bytes
		}
		return awsstandin.BodyFault{}
	})
	publish("1.6.0", 2, []byte("agentgate-agent 1.6.0"))
	awaitReport(t, reports, update.PhaseFailed, update.ReasonBadSHA256)
	select {
	case r := <-installed:
		t.Fatalf("a tampered build reached the hook: %+v", r)
	default:
	}
	if viaRelay(1) < 1 {
		t.Errorf("relay 1 relayed %v connections to the artifacts host after relay 0 died", viaRelay(1))
	}
}

func sqsEvent(key string) events.SQSEvent {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "eventTime": "2026-12-01T10:00:00.000Z",
		"s3": map[string]any{"bucket": map[string]any{"name": labBucket}, "object": map[string]any{"key": key}},
	}}})
	return events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m0", Body: string(b)}}}
}

func awaitReport(t *testing.T, reports <-chan update.Report, phase, reason string) {
	t.Helper()
	deadline := time.After(60 * time.Second) // deadlock guard
	for {
		select {
		case r := <-reports:
			if r.Phase == phase && r.Reason == reason {
				return
			}
		case <-deadline:
			t.Fatalf("no %s/%s report on the up topic", phase, reason)
		}
	}
}
