package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/topics"
)

// The signed release manifest: what the release publisher signs and every
// agent verifies before it downloads anything. The publisher builds it from
// the uploaded manifest.json (see UploadManifest) and the objects it names;
// its JSON encoding (Canonical) is the exact byte string that is signed.
//
// Ordering: Sequence only grows per channel (a replay of an older signed
// manifest is refused by every agent that saw a newer one), and Version only
// grows unless Rollback is set.

// Limits of a signed manifest.
const (
	// MaxSignedManifestBytes bounds the canonical manifest; with its
	// base64 encoding and the signature it fits one IoT message.
	MaxSignedManifestBytes = 64 << 10
	// MaxPlatforms bounds the builds of one release.
	MaxPlatforms = 32
	// MaxRolloutCustomers bounds a rollout's customer list.
	MaxRolloutCustomers = 256
	// MaxReleaseBytes bounds one build (1 GiB); agents refuse a larger size.
	MaxReleaseBytes = 1 << 30
	// MaxVersionIDLen bounds an S3 version ID. S3 documents version IDs as
	// opaque strings; their maximum length is unverified, so this is a
	// generous cap (observed IDs are 32 characters).
	MaxVersionIDLen = 1024
)

// releaseVersionPattern: dotted numbers (2 to 4 parts, no leading zeros),
// so that versions have one total order every agent computes alike.
var releaseVersionPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8})){1,3}$`)

// bucketPattern is S3's general purpose bucket naming rule
// (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html),
// without the rarely used dots.
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ReleaseManifest is one signed release statement for one channel.
type ReleaseManifest struct {
	// Channel is the release channel; the manifest is announced on
	// topics.ReleaseTopic(Channel).
	Channel string `json:"channel"`
	// Version is the release's version (ValidateReleaseVersion).
	Version string `json:"version"`
	// Sequence grows with every manifest published on the channel
	// (widening or pausing a rollout publishes a new one for the same
	// version); agents refuse one not above the last they accepted.
	Sequence uint64 `json:"sequence"`
	// IssuedAt is when the manifest was uploaded (RFC 3339, UTC).
	IssuedAt string `json:"issuedAt"`
	// Bucket holds the builds.
	Bucket string `json:"bucket"`
	// Rollout says which agents install this release.
	Rollout Rollout `json:"rollout"`
	// Rollback allows agents on a newer version to install this older one.
	Rollback bool `json:"rollback,omitempty"`
	// Artifacts are the builds, one per platform, sorted by platform.
	Artifacts []ReleaseArtifact `json:"artifacts"`
}

// Rollout selects the agents of a channel that install a release.
type Rollout struct {
	// Percent (0..100) of the selected agents, each deciding from a stable
	// hash of its thing name and the version (InRollout). 0 pauses.
	Percent int `json:"percent"`
	// Customers, when not empty, limits the rollout to these customer IDs.
	Customers []string `json:"customers,omitempty"`
}

// ReleaseArtifact is one platform's build, pinned to one object version.
type ReleaseArtifact struct {
	// Platform is "<os>-<arch>" (ValidatePlatform).
	Platform string `json:"platform"`
	// Key is ReleaseFileKey(channel, version, platform, file).
	Key string `json:"key"`
	// VersionID is the S3 object version agents download.
	VersionID string `json:"versionId"`
	// Size in bytes; agents never read more.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex SHA-256 of the object.
	SHA256 string `json:"sha256"`
}

// ValidateReleaseVersion checks a release version: 2 to 4 dot-separated
// decimal numbers without leading zeros, such as 1.4.2.
func ValidateReleaseVersion(v string) error {
	if !releaseVersionPattern.MatchString(v) {
		return fmt.Errorf("release version %q must be 2 to 4 dot-separated numbers without leading zeros, like 1.4.2", v)
	}
	return nil
}

// CompareVersions orders two release versions like 1.4.2 < 1.10.0 (a
// missing part counts as 0); both must pass ValidateReleaseVersion.
func CompareVersions(a, b string) (int, error) {
	if err := ValidateReleaseVersion(a); err != nil {
		return 0, err
	}
	if err := ValidateReleaseVersion(b); err != nil {
		return 0, err
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y uint64
		if i < len(pa) {
			x, _ = strconv.ParseUint(pa[i], 10, 32)
		}
		if i < len(pb) {
			y, _ = strconv.ParseUint(pb[i], 10, 32)
		}
		if x != y {
			if x < y {
				return -1, nil
			}
			return 1, nil
		}
	}
	return 0, nil
}

// Validate checks every field.
func (m ReleaseManifest) Validate() error {
	if err := topics.ValidateChannel(m.Channel); err != nil {
		return err
	}
	if err := ValidateReleaseVersion(m.Version); err != nil {
		return err
	}
	if m.Sequence == 0 {
		return fmt.Errorf("sequence must be at least 1")
	}
	t, err := time.Parse(time.RFC3339, m.IssuedAt)
	if err != nil || t.UTC().Format(time.RFC3339) != m.IssuedAt {
		return fmt.Errorf("issuedAt %q must be RFC 3339 UTC without fractions", m.IssuedAt)
	}
	if !bucketPattern.MatchString(m.Bucket) {
		return fmt.Errorf("bucket %q is not a bucket name", m.Bucket)
	}
	if err := m.Rollout.Validate(); err != nil {
		return err
	}
	if len(m.Artifacts) == 0 || len(m.Artifacts) > MaxPlatforms {
		return fmt.Errorf("%d artifacts; want 1..%d", len(m.Artifacts), MaxPlatforms)
	}
	for i, a := range m.Artifacts {
		if i > 0 && m.Artifacts[i-1].Platform >= a.Platform {
			return fmt.Errorf("artifacts must be sorted by platform without repeats (%q after %q)", a.Platform, m.Artifacts[i-1].Platform)
		}
		if err := a.validate(m.Channel, m.Version); err != nil {
			return err
		}
	}
	return nil
}

// Validate checks a rollout.
func (r Rollout) Validate() error {
	if r.Percent < 0 || r.Percent > 100 {
		return fmt.Errorf("rollout percent %d must be within 0..100", r.Percent)
	}
	if len(r.Customers) > MaxRolloutCustomers {
		return fmt.Errorf("rollout names %d customers; at most %d", len(r.Customers), MaxRolloutCustomers)
	}
	for i, c := range r.Customers {
		if err := topics.ValidateCustomerID(c); err != nil {
			return fmt.Errorf("rollout customer: %w", err)
		}
		if slices.Contains(r.Customers[:i], c) {
			return fmt.Errorf("rollout customer %q is listed twice", c)
		}
	}
	return nil
}

func (a ReleaseArtifact) validate(channel, version string) error {
	ch, v, p, _, err := ParseReleaseFileKey(a.Key)
	if err != nil {
		return err
	}
	if ch != channel || v != version || p != a.Platform {
		return fmt.Errorf("artifact key %q is not below %s%s/%s/%s/", a.Key, ReleasePrefix, channel, version, a.Platform)
	}
	if a.VersionID == "" || len(a.VersionID) > MaxVersionIDLen || strings.ContainsFunc(a.VersionID, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return fmt.Errorf("artifact %s: version ID must be 1..%d printable ASCII characters", a.Platform, MaxVersionIDLen)
	}
	if a.Size < 1 || a.Size > MaxReleaseBytes {
		return fmt.Errorf("artifact %s: size %d must be within 1..%d", a.Platform, a.Size, MaxReleaseBytes)
	}
	if !sha256Pattern.MatchString(a.SHA256) {
		return fmt.Errorf("artifact %s: sha256 must be 64 lowercase hex digits", a.Platform)
	}
	return nil
}

// Canonical validates m and returns the exact bytes that are signed: its
// compact JSON encoding in field order.
func (m ReleaseManifest) Canonical() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSignedManifestBytes {
		return nil, fmt.Errorf("manifest is %d bytes; at most %d", len(b), MaxSignedManifestBytes)
	}
	return b, nil
}

// ParseReleaseManifest decodes a signed manifest strictly: bounded, no
// unknown fields, valid, and b must be exactly its canonical encoding (so
// one manifest has one byte string and one signature input).
func ParseReleaseManifest(b []byte) (ReleaseManifest, error) {
	if len(b) > MaxSignedManifestBytes {
		return ReleaseManifest{}, fmt.Errorf("manifest is %d bytes; at most %d", len(b), MaxSignedManifestBytes)
	}
	var m ReleaseManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return ReleaseManifest{}, fmt.Errorf("manifest is not JSON of the expected shape: %w", err)
	}
	c, err := m.Canonical()
	if err != nil {
		return ReleaseManifest{}, err
	}
	if !bytes.Equal(c, b) {
		return ReleaseManifest{}, fmt.Errorf("manifest is not in canonical form (compact JSON, fields in order)")
	}
	return m, nil
}

// Artifact returns the build for platform.
func (m ReleaseManifest) Artifact(platform string) (ReleaseArtifact, bool) {
	for _, a := range m.Artifacts {
		if a.Platform == platform {
			return a, true
		}
	}
	return ReleaseArtifact{}, false
}

// RolloutBucket is an agent's stable position in 0..9999 for a release
// version: the first 8 bytes of SHA-256("agentgate-rollout\x00" version
// "\x00" thing), big-endian, modulo 10000. Salting with the version gives
// each release a different canary set.
func RolloutBucket(version, thing string) int {
	s := sha256.Sum256([]byte("agentgate-rollout\x00" + version + "\x00" + thing))
	return int(binary.BigEndian.Uint64(s[:8]) % 10000)
}

// InRollout reports whether the agent thing of customer installs m: its
// customer is listed (or no list is given) and its RolloutBucket is below
// Percent·100. Widening the percentage keeps every agent already in.
func (m ReleaseManifest) InRollout(customer, thing string) bool {
	if len(m.Rollout.Customers) > 0 && !slices.Contains(m.Rollout.Customers, customer) {
		return false
	}
	return RolloutBucket(m.Version, thing) < m.Rollout.Percent*100
}

// SHA256Hex is the lowercase hex SHA-256 of b, as ReleaseArtifact.SHA256.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
