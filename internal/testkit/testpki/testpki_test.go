package testpki

import (
	"crypto/x509"
	"testing"
)

// TestLoadCARoundTrip: a CA written with CertPEM and KeyPEM and read back
// with LoadCA issues leaves the original verifies; garbage is refused.
func TestLoadCARoundTrip(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadCA(ca.CertPEM(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := again.ClientLeaf("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("leaf from the loaded CA: %v", err)
	}
	if _, err := LoadCA([]byte("junk"), key); err == nil {
		t.Error("LoadCA accepted a certificate that is not PEM")
	}
	if _, err := LoadCA(ca.CertPEM(), ca.CertPEM()); err == nil {
		t.Error("LoadCA accepted a certificate as the key")
	}
}
