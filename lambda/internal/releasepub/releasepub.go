// Package releasepub is the release publisher's logic: when a release
// manifest lands in the artifacts bucket it announces the build on the
// channel's retained release topic with, per platform, the object key,
// version ID, size and SHA-256, signed with a KMS key (ECDSA P-256).
//
// Package artifacts holds the bucket's key layout; the manifest
// (releases/<channel>/<version>/manifest.json) is uploaded last.
//
// The manifest names the files, the sequence and the rollout:
// {"version":"1.4.2","platforms":{"linux-amd64":"agentgate-agent"},"sequence":7,"rollout":{"percent":10}}.
// The announcement is signed: the publisher pins each build's version ID,
// size and SHA-256 in an artifacts.ReleaseManifest and signs it with the
// KMS signing key (artifacts.Announcement).
package releasepub

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// MaxManifestBytes bounds an uploaded manifest.
const MaxManifestBytes = artifacts.MaxUploadManifestBytes

// Manifest is the uploaded description of one release (package artifacts
// defines it for the publisher and the CLI that writes it).
type Manifest = artifacts.UploadManifest

// ParseManifest decodes and validates a manifest for the version in its key.
func ParseManifest(b []byte, keyVersion string) (Manifest, error) {
	return artifacts.ParseUploadManifest(b, keyVersion)
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
	ReasonSigningKey      = "signing_key"
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
	// KMS signs manifests with SigningKey, an ECC_NIST_P256 SIGN_VERIFY
	// key (ID or ARN).
	KMS        *kms.Client
	SigningKey string
	// Log and Metrics record decisions.
	Log     *slog.Logger
	Metrics *lambdakit.Metrics

	keyMu sync.Mutex
	keyID string // artifacts.KeyID of SigningKey's public key, once known
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
// the release manifest to sign (not yet signed).
func (h *Handler) Build(ctx context.Context, key string) (artifacts.ReleaseManifest, error) {
	channel, version, err := artifacts.ParseManifestKey(key)
	if err != nil {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonBadKey, "%v", err)
	}
	if !slices.Contains(h.Channels, channel) {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonUnknownChannel, "channel %q is not one of the configured release channels %v", channel, h.Channels)
	}
	out, err := h.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key)})
	var nsk *s3types.NoSuchKey
	if errors.As(err, &nsk) {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonMissingManifest, "manifest %s no longer exists", key)
	}
	if err != nil {
		return artifacts.ReleaseManifest{}, fmt.Errorf("get manifest %s: %w", key, err)
	}
	raw, err := io.ReadAll(io.LimitReader(out.Body, MaxManifestBytes+1))
	out.Body.Close()
	if err != nil {
		return artifacts.ReleaseManifest{}, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if len(raw) > MaxManifestBytes {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonOversize, "manifest %s is larger than %d bytes", key, MaxManifestBytes)
	}
	m, err := ParseManifest(raw, version)
	if err != nil {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonBadManifest, "%s: %v", key, err)
	}
	rm := artifacts.ReleaseManifest{
		Channel: channel, Version: version, Sequence: m.Sequence,
		// The manifest's LastModified, so a replay yields the same manifest.
		IssuedAt: aws.ToTime(out.LastModified).UTC().Format(time.RFC3339),
		Bucket:   h.Bucket, Rollout: *m.Rollout, Rollback: m.Rollback,
	}
	platforms := make([]string, 0, len(m.Platforms))
	for p := range m.Platforms {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		art, err := h.artifact(ctx, artifacts.ReleaseFileKey(channel, version, p, m.Platforms[p]))
		if err != nil {
			return artifacts.ReleaseManifest{}, err
		}
		art.Platform = p
		rm.Artifacts = append(rm.Artifacts, art)
	}
	if err := rm.Validate(); err != nil {
		return artifacts.ReleaseManifest{}, lambdakit.Reject(ReasonBadManifest, "%s: %v", key, err)
	}
	return rm, nil
}

// artifact returns an object's size, version and SHA-256. It uses the
// object's full-object SHA-256 checksum when S3 has one (uploaded with
// x-amz-checksum-sha256, not multipart-composite), and otherwise streams
// the pinned version through SHA-256 (constant memory).
func (h *Handler) artifact(ctx context.Context, key string) (artifacts.ReleaseArtifact, error) {
	head, err := h.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(h.Bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled})
	var nf *s3types.NotFound
	if errors.As(err, &nf) {
		return artifacts.ReleaseArtifact{}, lambdakit.Reject(ReasonMissingArtifact, "artifact %s named by the manifest does not exist; upload it, then the manifest again", key)
	}
	if err != nil {
		return artifacts.ReleaseArtifact{}, fmt.Errorf("head artifact %s: %w", key, err)
	}
	if aws.ToString(head.VersionId) == "" {
		return artifacts.ReleaseArtifact{}, lambdakit.Reject(ReasonMissingArtifact, "artifact %s has no version ID: the bucket must be versioned", key)
	}
	art := artifacts.ReleaseArtifact{Key: key, VersionID: aws.ToString(head.VersionId), Size: aws.ToInt64(head.ContentLength)}
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
		return artifacts.ReleaseArtifact{}, fmt.Errorf("get artifact %s: %w", key, err)
	}
	defer obj.Body.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, obj.Body)
	if err != nil {
		return artifacts.ReleaseArtifact{}, fmt.Errorf("hash artifact %s: %w", key, err)
	}
	if n != art.Size {
		return artifacts.ReleaseArtifact{}, fmt.Errorf("artifact %s: read %d bytes, HeadObject said %d", key, n, art.Size)
	}
	art.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return art, nil
}

func (h *Handler) announce(ctx context.Context, key string) error {
	m, err := h.Build(ctx, key)
	if err != nil {
		return err
	}
	a, err := h.Sign(ctx, m)
	if err != nil {
		return err
	}
	payload, err := a.Encode()
	if err != nil {
		return lambdakit.Reject(ReasonOversize, "%v", err)
	}
	topic := topics.ReleaseTopic(m.Channel)
	if err := lambdakit.PublishRetained(ctx, h.Data, topic, payload); err != nil {
		return err
	}
	h.Log.Info("release announced", "topic", topic, "version", m.Version, "sequence", m.Sequence,
		"rolloutPercent", m.Rollout.Percent, "customers", len(m.Rollout.Customers), "rollback", m.Rollback, "artifacts", len(m.Artifacts), "keyId", a.KeyID)
	h.Metrics.Count("ReleaseAnnounced", 1, nil)
	return nil
}

// Sign signs the canonical manifest with KMS (ECDSA_SHA_256, MessageType
// DIGEST over artifacts.ManifestDigest) and returns the announcement.
func (h *Handler) Sign(ctx context.Context, m artifacts.ReleaseManifest) (artifacts.Announcement, error) {
	c, err := m.Canonical()
	if err != nil {
		return artifacts.Announcement{}, lambdakit.Reject(ReasonBadManifest, "%v", err)
	}
	id, err := h.signingKeyID(ctx)
	if err != nil {
		return artifacts.Announcement{}, err
	}
	d := artifacts.ManifestDigest(c)
	out, err := h.KMS.Sign(ctx, &kms.SignInput{
		KeyId: aws.String(h.SigningKey), Message: d[:],
		MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpec(artifacts.SigningAlgorithm),
	})
	if err != nil {
		return artifacts.Announcement{}, fmt.Errorf("kms sign with %s: %w", h.SigningKey, err)
	}
	return artifacts.Announcement{Manifest: c, KeyID: id, Signature: out.Signature}, nil
}

// signingKeyID fetches the signing key's public key once (GetPublicKey)
// and returns its artifacts.KeyID; a key that is not P-256 is refused.
func (h *Handler) signingKeyID(ctx context.Context) (string, error) {
	h.keyMu.Lock()
	defer h.keyMu.Unlock()
	if h.keyID != "" {
		return h.keyID, nil
	}
	out, err := h.KMS.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(h.SigningKey)})
	if err != nil {
		return "", fmt.Errorf("kms get public key of %s: %w", h.SigningKey, err)
	}
	pub, err := artifacts.ParsePublicKey(out.PublicKey)
	if err != nil {
		return "", lambdakit.Reject(ReasonSigningKey, "signing key %s: %v", h.SigningKey, err)
	}
	id, err := artifacts.KeyID(pub)
	if err != nil {
		return "", err
	}
	h.keyID = id
	return id, nil
}
