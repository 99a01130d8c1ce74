package artifacts

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"

	"github.com/agentgate/agentgate/contract/topics"
)

// Release signatures. A manifest is signed with an AWS KMS asymmetric key of
// key spec ECC_NIST_P256 and signing algorithm ECDSA_SHA_256, called with
// MessageType DIGEST and Message = ManifestDigest(canonical manifest). KMS
// returns the signature DER-encoded (ANSI X9.62-2005, RFC 3279 §2.2.3) and
// GetPublicKey returns the public key as a DER SubjectPublicKeyInfo
// (RFC 5280): https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_GetPublicKey.html.
// Agents verify with crypto/ecdsa against public keys pinned at build time
// or in their configuration, so verification needs no AWS call.

// SigningAlgorithm is the KMS signing algorithm of release manifests.
const SigningAlgorithm = "ECDSA_SHA_256"

// KeySpec is the KMS key spec of the release signing key.
const KeySpec = "ECC_NIST_P256"

// ManifestSigningContext prefixes the canonical manifest before hashing, so
// a signature over a manifest can never be valid for another message the
// same key might sign.
const ManifestSigningContext = "agentgate release manifest v1\n"

// MaxPinnedKeys is how many public keys an agent accepts at once: the
// current one and the next (rotation).
const MaxPinnedKeys = 2

// maxSignatureBytes bounds a DER ECDSA P-256 signature (at most 72 bytes).
const maxSignatureBytes = 80

var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ManifestDigest is the SHA-256 that is signed: of ManifestSigningContext
// followed by the canonical manifest.
func ManifestDigest(canonical []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(ManifestSigningContext))
	h.Write(canonical)
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}

// Announcement is the retained message on topics.ReleaseTopic(channel).
type Announcement struct {
	// Manifest is the canonical signed manifest (base64 in JSON).
	Manifest []byte `json:"manifest"`
	// KeyID names the signing key: KeyID of its public key.
	KeyID string `json:"keyId"`
	// Signature is the DER ECDSA signature of ManifestDigest(Manifest).
	Signature []byte `json:"signature"`
}

// Encode returns the announcement's JSON; it refuses one larger than an IoT
// message.
func (a Announcement) Encode() ([]byte, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if len(b) > topics.MaxMessageBytes {
		return nil, fmt.Errorf("announcement is %d bytes; IoT carries at most %d", len(b), topics.MaxMessageBytes)
	}
	return b, nil
}

// ParseAnnouncement decodes an announcement strictly and bounded; it does
// not verify it (Verifier.Verify does).
func ParseAnnouncement(b []byte) (Announcement, error) {
	if len(b) > topics.MaxMessageBytes {
		return Announcement{}, fmt.Errorf("announcement is %d bytes; at most %d", len(b), topics.MaxMessageBytes)
	}
	var a Announcement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return Announcement{}, fmt.Errorf("announcement is not JSON of the expected shape: %w", err)
	}
	if dec.More() {
		return Announcement{}, errors.New("announcement has trailing data")
	}
	if !keyIDPattern.MatchString(a.KeyID) {
		return Announcement{}, fmt.Errorf("announcement key ID must be 64 lowercase hex digits")
	}
	if len(a.Signature) == 0 || len(a.Signature) > maxSignatureBytes {
		return Announcement{}, fmt.Errorf("announcement signature is %d bytes; want 1..%d", len(a.Signature), maxSignatureBytes)
	}
	if len(a.Manifest) == 0 || len(a.Manifest) > MaxSignedManifestBytes {
		return Announcement{}, fmt.Errorf("announcement manifest is %d bytes; want 1..%d", len(a.Manifest), MaxSignedManifestBytes)
	}
	return a, nil
}

// ParsePublicKey reads a P-256 public key from a DER SubjectPublicKeyInfo
// (what KMS GetPublicKey returns) or a PEM "PUBLIC KEY" block of one.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if blk, rest := pem.Decode(b); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("PEM block is %q; want PUBLIC KEY", blk.Type)
		}
		if len(bytes.TrimSpace(rest)) != 0 {
			return nil, errors.New("data after the PEM block")
		}
		b = blk.Bytes
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	ek, ok := k.(*ecdsa.PublicKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("public key is %T, want an ECDSA P-256 key (KMS %s)", k, KeySpec)
	}
	return ek, nil
}

// PublicKeyPEM encodes a public key as a PEM "PUBLIC KEY" block.
func PublicKeyPEM(k *ecdsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// KeyID names a public key: the lowercase hex SHA-256 of its DER
// SubjectPublicKeyInfo (openssl pkey -pubin -outform DER | sha256sum).
func KeyID(k *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:]), nil
}

// Verifier checks announcements against pinned public keys.
type Verifier struct {
	keys map[string]*ecdsa.PublicKey
}

// NewVerifier pins 1..MaxPinnedKeys P-256 public keys.
func NewVerifier(keys ...*ecdsa.PublicKey) (*Verifier, error) {
	if len(keys) == 0 || len(keys) > MaxPinnedKeys {
		return nil, fmt.Errorf("%d pinned release keys; want 1..%d", len(keys), MaxPinnedKeys)
	}
	v := &Verifier{keys: map[string]*ecdsa.PublicKey{}}
	for _, k := range keys {
		if k == nil || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("pinned release key must be ECDSA P-256")
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys[id] = k
	}
	return v, nil
}

// Errors of Verify, for errors.Is.
var (
	ErrUnknownKey   = errors.New("release signed with a key that is not pinned")
	ErrBadSignature = errors.New("release signature does not verify")
)

// Verify checks the signature of a with the pinned key it names, then
// parses the manifest. Nothing of the manifest is trusted before the
// signature verifies.
func (v *Verifier) Verify(a Announcement) (ReleaseManifest, error) {
	k, ok := v.keys[a.KeyID]
	if !ok {
		return ReleaseManifest{}, fmt.Errorf("%w: %s", ErrUnknownKey, a.KeyID)
	}
	d := ManifestDigest(a.Manifest)
	if !ecdsa.VerifyASN1(k, d[:], a.Signature) {
		return ReleaseManifest{}, ErrBadSignature
	}
	return ParseReleaseManifest(a.Manifest)
}
