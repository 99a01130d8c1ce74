package artifacts_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/release/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKnownAnswerOpenSSL verifies a signature made by openssl (gen.sh), not
// by this package: the key was generated once by openssl, the signed input
// (context line + manifest.json) hashed and signed by `openssl dgst -sha256
// -sign`, and the key ID computed by `openssl pkey -outform DER | sha256sum`.
// A change to the context, the digest or the key ID rule fails it.
func TestKnownAnswerOpenSSL(t *testing.T) {
	pub, err := artifacts.ParsePublicKey(readFile(t, "signing-pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := artifacts.KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(readFile(t, "keyid.txt"))); id != want {
		t.Fatalf("KeyID = %s, openssl says %s", id, want)
	}
	v, err := artifacts.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	a := artifacts.Announcement{Manifest: readFile(t, "manifest.json"), KeyID: id, Signature: readFile(t, "manifest.sig")}
	m, err := v.Verify(a)
	if err != nil {
		t.Fatalf("openssl's signature does not verify: %v", err)
	}
	if m.Version != "1.5.0" || m.Sequence != 7 || m.Rollout.Percent != 10 || m.Artifacts[0].Size != 21 {
		t.Fatalf("manifest decoded as %+v", m)
	}
	if got := artifacts.SHA256Hex([]byte("agentgate-agent-1.5.0")); got != m.Artifacts[0].SHA256 {
		t.Fatalf("sha256 %s, manifest (printf | sha256sum) says %s", got, m.Artifacts[0].SHA256)
	}
	// One flipped byte of the manifest, of the signature, or no context.
	bad := append([]byte(nil), a.Manifest...)
	bad[len(bad)-3] ^= 1
	if _, err := v.Verify(artifacts.Announcement{Manifest: bad, KeyID: id, Signature: a.Signature}); !errors.Is(err, artifacts.ErrBadSignature) {
		t.Errorf("tampered manifest: %v", err)
	}
	sig := append([]byte(nil), a.Signature...)
	sig[len(sig)-1] ^= 1
	if _, err := v.Verify(artifacts.Announcement{Manifest: a.Manifest, KeyID: id, Signature: sig}); !errors.Is(err, artifacts.ErrBadSignature) {
		t.Errorf("tampered signature: %v", err)
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, k *ecdsa.PrivateKey, m artifacts.ReleaseManifest) artifacts.Announcement {
	t.Helper()
	c, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	d := artifacts.ManifestDigest(c)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	id, _ := artifacts.KeyID(&k.PublicKey)
	return artifacts.Announcement{Manifest: c, KeyID: id, Signature: sig}
}

func TestVerifierRotationAndUnknownKey(t *testing.T) {
	oldK, newK, other := newKey(t), newKey(t), newKey(t)
	v, err := artifacts.NewVerifier(&oldK.PublicKey, &newK.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	m := validManifest()
	for _, k := range []*ecdsa.PrivateKey{oldK, newK} {
		if _, err := v.Verify(sign(t, k, m)); err != nil {
			t.Errorf("pinned key refused: %v", err)
		}
	}
	if _, err := v.Verify(sign(t, other, m)); !errors.Is(err, artifacts.ErrUnknownKey) {
		t.Errorf("unknown key: %v", err)
	}
	// A pinned key's ID with another key's signature.
	a := sign(t, other, m)
	a.KeyID, _ = artifacts.KeyID(&oldK.PublicKey)
	if _, err := v.Verify(a); !errors.Is(err, artifacts.ErrBadSignature) {
		t.Errorf("signature of another key under a pinned ID: %v", err)
	}
	if _, err := artifacts.NewVerifier(); err == nil {
		t.Error("no pinned key accepted")
	}
	if _, err := artifacts.NewVerifier(&oldK.PublicKey, &newK.PublicKey, &other.PublicKey); err == nil {
		t.Error("three pinned keys accepted")
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := artifacts.NewVerifier(&p384.PublicKey); err == nil {
		t.Error("P-384 key accepted")
	}
}

func TestParsePublicKey(t *testing.T) {
	k := newKey(t)
	p, err := artifacts.PublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	got, err := artifacts.ParsePublicKey(p)
	if err != nil || !got.Equal(&k.PublicKey) {
		t.Fatalf("PEM round trip: %v", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if got, err := artifacts.ParsePublicKey(der); err != nil || !got.Equal(&k.PublicKey) {
		t.Fatalf("DER: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	for name, b := range map[string][]byte{
		"P-384":        der384,
		"garbage":      []byte("not a key"),
		"private PEM":  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}),
		"PEM and more": append(append([]byte(nil), p...), "extra"...),
		"empty":        nil,
	} {
		if _, err := artifacts.ParsePublicKey(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestParseAnnouncementRefusesHostileInput(t *testing.T) {
	good := sign(t, newKey(t), validManifest())
	enc, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifacts.ParseAnnouncement(enc); err != nil {
		t.Fatalf("good announcement: %v", err)
	}
	big := strings.Repeat("A", topics.MaxMessageBytes)
	for name, s := range map[string]string{
		"not json":       "nope",
		"unknown field":  strings.Replace(string(enc), `"keyId"`, `"x":1,"keyId"`, 1),
		"trailing":       string(enc) + "{}",
		"short key id":   `{"manifest":"e30=","keyId":"abc","signature":"MEU="}`,
		"no signature":   strings.Replace(string(enc), `"signature":"`, `"signature":"","x":"`, 1),
		"oversize":       `{"manifest":"` + big + `"}`,
		"long sig":       `{"manifest":"e30=","keyId":"` + strings.Repeat("a", 64) + `","signature":"` + strings.Repeat("A", 200) + `"}`,
		"empty manifest": `{"manifest":"","keyId":"` + strings.Repeat("a", 64) + `","signature":"MEU="}`,
	} {
		if _, err := artifacts.ParseAnnouncement([]byte(s)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// FuzzParseAnnouncement: never panics; whatever parses re-encodes and
// parses to the same announcement, and never verifies under a fresh key.
func FuzzParseAnnouncement(f *testing.F) {
	f.Add([]byte(`{"manifest":"e30=","keyId":"` + strings.Repeat("a", 64) + `","signature":"MEUCIQ=="}`))
	f.Add([]byte(`{}`))
	k := newKey(f)
	v, _ := artifacts.NewVerifier(&k.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := artifacts.ParseAnnouncement(b)
		if err != nil {
			return
		}
		enc, err := a.Encode()
		if err != nil {
			t.Fatalf("accepted announcement does not encode: %v", err)
		}
		b2, err := artifacts.ParseAnnouncement(enc)
		if err != nil || string(b2.Manifest) != string(a.Manifest) || b2.KeyID != a.KeyID {
			t.Fatalf("round trip: %v", err)
		}
		if _, err := v.Verify(a); err == nil {
			t.Fatal("a fuzzed announcement verified")
		}
	})
}

// FuzzParseReleaseManifest: never panics; whatever parses is valid, is its
// own canonical form and fits an announcement.
func FuzzParseReleaseManifest(f *testing.F) {
	c, _ := validManifest().Canonical()
	f.Add(c)
	f.Add([]byte(`{"channel":"stable"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := artifacts.ParseReleaseManifest(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted invalid manifest: %v", err)
		}
		c, err := m.Canonical()
		if err != nil || string(c) != string(b) {
			t.Fatalf("accepted bytes are not canonical: %v", err)
		}
		var back artifacts.ReleaseManifest
		if err := json.Unmarshal(c, &back); err != nil {
			t.Fatal(err)
		}
	})
}
