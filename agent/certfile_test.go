package agent

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// TestLoadCertificateNamesTheFile: a certificate or key file that is
// missing, unreadable, not PEM or not a pair is a local file problem
// (ErrCertificateFile) named with its path, never "client certificate
// refused" (ErrBadCertificate), which means the server said no.
func TestLoadCertificateNamesTheFile(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.ClientLeaf("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.ClientLeaf("dev-2")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := testpki.PEM(leaf)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKeyPEM, err := testpki.PEM(other)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile, keyFile := write("thing.crt", certPEM), write("thing.key", keyPEM)
	otherKey := write("other.key", otherKeyPEM)
	garbage := write("garbage.pem", []byte("not a certificate\x00\xff"))
	huge := write("huge.pem", make([]byte, MaxCertificateFileBytes+1))
	missing := filepath.Join(dir, "missing.crt")

	if _, err := LoadCertificate(certFile, keyFile, nil); err != nil {
		t.Fatalf("a good pair: %v", err)
	}
	for _, tc := range []struct {
		name, cert, key string
		want            string
		notExist        bool
	}{
		{"missing certificate", missing, keyFile, "cannot read certificate file " + missing + ": no such file or directory", true},
		{"missing key", certFile, missing, "cannot read key file " + missing + ": no such file or directory", true},
		{"certificate is a directory", dir, keyFile, "cannot read certificate file " + dir + ": is a directory", false},
		{"no certificate given", "", keyFile, "no certificate file given", false},
		{"certificate not PEM", garbage, keyFile, "certificate file " + garbage + " and key file " + keyFile + " are not a usable pair: tls: failed to find any PEM data in certificate input", false},
		{"key not PEM", certFile, garbage, "certificate file " + certFile + " and key file " + garbage + " are not a usable pair: tls: failed to find any PEM data in key input", false},
		{"key of another certificate", certFile, otherKey, "certificate file " + certFile + " and key file " + otherKey + " are not a usable pair: tls: private key does not match public key", false},
		{"oversize file", huge, keyFile, "certificate file " + huge + " is larger than 1048576 bytes: too large for a PEM file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCertificate(tc.cert, tc.key, nil)
			if err == nil {
				t.Fatal("loaded")
			}
			if err.Error() != tc.want {
				t.Errorf("error %q, want %q", err, tc.want)
			}
			if !errors.Is(err, agenterr.ErrCertificateFile) || errors.Is(err, agenterr.ErrBadCertificate) {
				t.Errorf("error %v: want ErrCertificateFile and not ErrBadCertificate", err)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("errors.Is(fs.ErrNotExist) = %v", !tc.notExist)
			}
		})
	}

	// Expired: readable, but IoT would refuse it; said before connecting.
	later := func() time.Time { return leaf.Leaf.NotAfter.Add(time.Hour) }
	_, err = LoadCertificate(certFile, keyFile, later)
	if !errors.Is(err, agenterr.ErrCertificateFile) || !errors.Is(err, agenterr.ErrBadCertificate) ||
		!strings.HasPrefix(err.Error(), "certificate file "+certFile+" expired at ") {
		t.Errorf("expired: %v", err)
	}
}

// TestLoadCAFileIsBounded: the CA bundle is read under the same byte cap
// as the certificate and key, and its errors name the file the same way.
func TestLoadCAFileIsBounded(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("ca.pem", ca.CertPEM())
	if pool, err := LoadCAFile(good); err != nil || pool == nil {
		t.Fatalf("a good bundle: %v", err)
	}
	// A valid bundle followed by padding: read whole, it would parse.
	huge := write("huge.pem", append(ca.CertPEM(), make([]byte, MaxCertificateFileBytes)...))
	garbage := write("garbage.pem", []byte("not a certificate\x00\xff"))
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct{ name, path, want string }{
		{"oversize", huge, "CA file " + huge + " is larger than 1048576 bytes: too large for a PEM file"},
		{"not PEM", garbage, "CA file " + garbage + " holds no PEM certificate"},
		{"missing", missing, "cannot read CA file " + missing + ": no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCAFile(tc.path)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !errors.Is(err, agenterr.ErrCertificateFile) {
				t.Errorf("error %v: want ErrCertificateFile", err)
			}
		})
	}
}
