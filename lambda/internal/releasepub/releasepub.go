// Package releasepub is the release publisher's logic: when a release
// manifest lands in the artifacts bucket it announces the build on the
// channel's retained release topic with, per platform, the object key,
// version ID, size and SHA-256.
//
// Package artifacts holds the bucket's key layout; the manifest
// (releases/<channel>/<version>/manifest.json) is uploaded last.
//
// The manifest names the files: {"version":"1.4.2","platforms":{"linux-amd64":"agentgate-agent"}}.
package releasepub

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// MaxManifestBytes bounds a manifest.
const MaxManifestBytes = 64 * 1024

var (
	platformPattern = regexp.MustCompile(`^[a-z0-9]+-[a-z0-9_]+$`)
	filePattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Manifest is the uploaded description of one release.
type Manifest struct {
	// Version must equal the version in the manifest's key.
	Version string `json:"version"`
	// Platforms maps "<os>-<arch>" to the file name under that platform's folder.
	Platforms map[string]string `json:"platforms"`
}

// ParseManifest decodes and validates a manifest for the version in its key.
func ParseManifest(b []byte, keyVersion string) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest is not valid JSON of the expected shape: %w", err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("manifest has trailing data")
	}
	if m.Version != keyVersion {
		return Manifest{}, fmt.Errorf("manifest version %q differs from the version %q in its key", m.Version, keyVersion)
	}
	if len(m.Platforms) == 0 {
		return Manifest{}, fmt.Errorf("manifest lists no platforms")
	}
	if len(m.Platforms) > 32 {
		return Manifest{}, fmt.Errorf("manifest lists %d platforms; at most 32", len(m.Platforms))
	}
	for p, f := range m.Platforms {
		if !platformPattern.MatchString(p) {
			return Manifest{}, fmt.Errorf("platform %q must look like linux-amd64", p)
		}
		if !filePattern.MatchString(f) || strings.Contains(f, "..") {
			return Manifest{}, fmt.Errorf("file name %q of platform %s must match %s", f, p, filePattern)
		}
	}
	return m, nil
}

// Artifact is one platform's build in an announcement.
type Artifact struct {
	Platform  string `json:"platform"`
	Key       string `json:"key"`
	VersionID string `json:"versionId,omitempty"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
}

// Announcement is the retained message on agentgate/releases/<channel>.
type Announcement struct {
	Channel string `json:"channel"`
	Version string `json:"version"`
	// IssuedAt is the manifest's LastModified, so a replay yields the same bytes.
	IssuedAt  string     `json:"issuedAt"`
	Bucket    string     `json:"bucket"`
	Artifacts []Artifact `json:"artifacts"`
}

// Reasons a release is rejected; they are the Reason dimension of the
// ReleaseRejected metric.
const (
	ReasonBadEvent        = lambdakit.ReasonBadEvent
	ReasonBadKey          = lambdakit.ReasonBadKey
	ReasonOversize        = lambdakit.ReasonOversize
	ReasonUnknownChannel  = "unknown_channel"
	ReasonMissingManifest = "missing_manifest"
	ReasonBadManifest     = "bad_manifest"
	ReasonMissingArtifact = "missing_artifact"
)

// Handler consumes the release queue (S3 event notifications of manifests).
type Handler struct {
	// S3 reads the artifacts bucket.
	S3 *s3.Client
	// Data publishes to iot-data.
	Data *iotdataplane.Client
	// Bucket is the artifacts bucket.
	Bucket string
	// Channels are the release channels that may be announced.
	Channels []string
	// Log and Metrics record decisions.
	Log     *slog.Logger
	Metrics *lambdakit.Metrics
}

// Handle processes an SQS batch of S3 events and reports exactly the
// messages that failed transiently.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return lambdakit.Consumer{Reporter: h.reporter()}.Handle(ctx, ev, h.message)
}

// reporter logs and counts rejections as ReleaseRejected{Reason}; failures
// are logged only (the release queue's DLQ alarm covers them).
func (h *Handler) reporter() lambdakit.Reporter {
	return lambdakit.Reporter{
		Log:            h.Log,
		Metrics:        h.Metrics,
		RejectedMsg:    "release rejected, nothing published",
		RejectedMetric: "ReleaseRejected",
		FailedMsg:      "release message failed; SQS will retry it",
	}
}

// ParseEvent returns the manifest keys an S3 event notification body names
// (none for the s3:TestEvent): only object-created records of one bucket.
func ParseEvent(body string) (bucket string, keys []string, err error) {
	n, err := lambdakit.ParseS3Event(body)
	if err != nil {
		return "", nil, err
	}
	for i, c := range n.Changes {
		if c.Removed {
			return "", nil, lambdakit.Reject(ReasonBadEvent, "record %d: %s is not an S3 ObjectCreated event", i, c.EventName)
		}
		if i > 0 && c.Bucket != bucket {
			return "", nil, lambdakit.Reject(ReasonBadEvent, "records of several buckets in one event")
		}
		bucket = c.Bucket
		keys = append(keys, c.Key)
	}
	return bucket, keys, nil
}

func (h *Handler) message(ctx context.Context, body string) error {
	bucket, keys, err := ParseEvent(body)
	if err != nil {
		return err
	}
	if len(keys) > 0 && bucket != h.Bucket {
		return lambdakit.Reject(ReasonBadEvent, "event for bucket %q; this publisher serves %q", bucket, h.Bucket)
	}
	rep := h.reporter()
	var errs []error
	for _, k := range keys {
		errs = append(errs, rep.Settle(h.announce(ctx, k), "key", k))
	}
	return errors.Join(errs...)
}

// Build reads the manifest at key and every artifact it names and returns
// the announcement (not yet published).
func (h *Handler) Build(ctx context.Context, key string) (Announcement, error) {
	channel, version, err := artifacts.ParseManifestKey(key)
	if err != nil {
		return Announcement{}, lambdakit.Reject(ReasonBadKey, "%v", err)
	}
	if !slices.Contains(h.Channels, channel) {
		return Announcement{}, lambdakit.Reject(ReasonUnknownChannel, "channel %q is not one of the configured release channels %v", channel, h.Channels)
	}
	out, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nsk) {
		return Announcement{}, lambdakit.Reject(ReasonMissingManifest, "manifest %s no longer exists", key)
	}
	if err != nil {
		return Announcement{}, fmt.Errorf("get manifest %s: %w", key, err)
	}
	raw, err := io.ReadAll(io.LimitReader(out.Body, MaxManifestBytes+1))
	out.Body.Close()
	if err != nil {
		return Announcement{}, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if len(raw) > MaxManifestBytes {
		return Announcement{}, lambdakit.Reject(ReasonOversize, "manifest %s is larger than %d bytes", key, MaxManifestBytes)
	}
	m, err := ParseManifest(raw, version)
	if err != nil {
		return Announcement{}, lambdakit.Reject(ReasonBadManifest, "%s: %v", key, err)
	}
	a := Announcement{Channel: channel, Version: version, IssuedAt: aws.ToTime(out.LastModified).UTC().Format(time.RFC3339), Bucket: h.Bucket}
	platforms := make([]string, 0, len(m.Platforms))
	for p := range m.Platforms {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		art, err := h.artifact(ctx, artifacts.ReleaseFileKey(channel, version, p, m.Platforms[p]))
		if err != nil {
			return Announcement{}, err
		}
		art.Platform = p
		a.Artifacts = append(a.Artifacts, art)
	}
	return a, nil
}

// artifact returns an object's size, version and SHA-256. It uses the
// object's full-object SHA-256 checksum when S3 has one (uploaded with
// x-amz-checksum-sha256, not multipart-composite), and otherwise streams
// the pinned version through SHA-256 (constant memory).
func (h *Handler) artifact(ctx context.Context, key string) (Artifact, error) {
	head, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return Artifact{}, lambdakit.Reject(ReasonMissingArtifact, "artifact %s named by the manifest does not exist; upload it, then the manifest again", key)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("head artifact %s: %w", key, err)
	}
	art := Artifact{Key: key, VersionID: aws.ToString(head.VersionId), Size: aws.ToInt64(head.ContentLength)}
	if c := aws.ToString(head.ChecksumSHA256); c != "" && head.ChecksumType == s3types.ChecksumTypeFullObject {
		if sum, err := base64.StdEncoding.DecodeString(c); err == nil && len(sum) == sha256.Size {
			art.SHA256 = hex.EncodeToString(sum)
			return art, nil
		}
	}
	in := &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)}
	if art.VersionID != "" {
		in.VersionId = aws.String(art.VersionID)
	}
	obj, err := h.S3.GetObject(ctx, in)
	if err != nil {
		return Artifact{}, fmt.Errorf("get artifact %s: %w", key, err)
	}
	defer obj.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, obj.Body)
	if err != nil {
		return Artifact{}, fmt.Errorf("hash artifact %s: %w", key, err)
	}
	if n != art.Size {
		return Artifact{}, fmt.Errorf("artifact %s: read %d bytes, HeadObject said %d", key, n, art.Size)
	}
	art.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return art, nil
}

func (h *Handler) announce(ctx context.Context, key string) error {
	a, err := h.Build(ctx, key)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if len(payload) > topics.MaxMessageBytes {
		return lambdakit.Reject(ReasonOversize, "announcement is %d bytes", len(payload))
	}
	topic := topics.ReleaseTopic(a.Channel)
	if err := lambdakit.PublishRetained(ctx, h.Data, topic, payload); err != nil {
		return err
	}
	h.Log.Info("release announced", "topic", topic, "version", a.Version, "artifacts", len(a.Artifacts))
	h.Metrics.Count("ReleaseAnnounced", 1, nil)
	return nil
}
