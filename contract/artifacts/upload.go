package artifacts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxUploadManifestBytes bounds an uploaded manifest.json.
const MaxUploadManifestBytes = 64 << 10

// UploadManifest is releases/<channel>/<version>/manifest.json as an
// operator uploads it (agentgate-admin release publish writes it): the
// release publisher reads it, pins every build it names to its current
// object version, size and SHA-256, and signs the result as a
// ReleaseManifest. Uploading it again with a higher Sequence and another
// Rollout widens, pauses or narrows the rollout of the same builds.
type UploadManifest struct {
	// Version must equal the version in the manifest's key.
	Version string `json:"version"`
	// Platforms maps "<os>-<arch>" to the file name under that platform's folder.
	Platforms map[string]string `json:"platforms"`
	// Sequence must grow with every manifest uploaded for the channel
	// (agents refuse one not above the last they accepted).
	Sequence uint64 `json:"sequence"`
	// Rollout says which agents install it; required, so that nothing
	// reaches every agent by default.
	Rollout *Rollout `json:"rollout"`
	// Rollback lets agents on newer versions install this one.
	Rollback bool `json:"rollback,omitempty"`
}

// ParseUploadManifest decodes and validates an uploaded manifest for the
// version in its key.
func ParseUploadManifest(b []byte, keyVersion string) (UploadManifest, error) {
	if len(b) > MaxUploadManifestBytes {
		return UploadManifest{}, fmt.Errorf("manifest is %d bytes; at most %d", len(b), MaxUploadManifestBytes)
	}
	var m UploadManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return UploadManifest{}, fmt.Errorf("manifest is not valid JSON of the expected shape: %w", err)
	}
	if dec.More() {
		return UploadManifest{}, errors.New("manifest has trailing data")
	}
	if m.Version != keyVersion {
		return UploadManifest{}, fmt.Errorf("manifest version %q differs from the version %q in its key", m.Version, keyVersion)
	}
	if err := ValidateReleaseVersion(m.Version); err != nil {
		return UploadManifest{}, err
	}
	if m.Sequence == 0 {
		return UploadManifest{}, errors.New("manifest has no sequence (a number above the channel's last one)")
	}
	if m.Rollout == nil {
		return UploadManifest{}, errors.New(`manifest has no rollout; say {"percent":N} explicitly`)
	}
	if err := m.Rollout.Validate(); err != nil {
		return UploadManifest{}, err
	}
	if len(m.Platforms) == 0 {
		return UploadManifest{}, errors.New("manifest lists no platforms")
	}
	if len(m.Platforms) > MaxPlatforms {
		return UploadManifest{}, fmt.Errorf("manifest lists %d platforms; at most %d", len(m.Platforms), MaxPlatforms)
	}
	for p, f := range m.Platforms {
		if err := ValidatePlatform(p); err != nil {
			return UploadManifest{}, err
		}
		if err := ValidateFileName(f); err != nil {
			return UploadManifest{}, fmt.Errorf("platform %s: %w", p, err)
		}
	}
	return m, nil
}
