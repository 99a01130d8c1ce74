package agent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
)

// MaxCertificateFileBytes bounds a certificate, key or CA bundle file (a
// device certificate is ~1.2 KB, a chain a few KB, Amazon's root CA bundle
// a few KB; a system-wide bundle of every public root is ~220 KB).
const MaxCertificateFileBytes = 1 << 20

// LoadCertificate reads the device certificate and its private key from PEM
// files. Every error wraps agenterr.ErrCertificateFile and names the file:
//
//	cannot read certificate file thing.crt: no such file or directory
//	cannot read key file thing.key: permission denied
//	certificate file thing.crt and key file thing.key are not a usable pair: tls: private key does not match public key
//
// except an expired certificate, which also wraps agenterr.ErrBadCertificate
// (IoT would refuse it). now is the local clock; nil means time.Now.
func LoadCertificate(certFile, keyFile string, now func() time.Time) (tls.Certificate, error) {
	certPEM, err := readCertificateFile("certificate", certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readCertificateFile("key", keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &certFileError{
			msg:   fmt.Sprintf("certificate file %s and key file %s are not a usable pair: %v", certFile, keyFile, err),
			cause: err,
		}
	}
	if cert.Leaf == nil { // set by X509KeyPair unless GODEBUG x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, &certFileError{msg: fmt.Sprintf("certificate file %s: %v", certFile, err), cause: err}
		}
	}
	if now == nil {
		now = time.Now
	}
	if t := now(); t.After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, &certFileError{
			msg:   fmt.Sprintf("certificate file %s expired at %s: IoT refuses it; issue a new certificate", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339)),
			cause: agenterr.ErrBadCertificate,
		}
	}
	return cert, nil
}

// LoadCAFile reads a PEM bundle of root CAs, bounded like the certificate
// and key files. Every error wraps agenterr.ErrCertificateFile and names
// the file:
//
//	cannot read CA file ca.pem: no such file or directory
//	CA file ca.pem holds no PEM certificate
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := readCertificateFile("CA", path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, &certFileError{msg: fmt.Sprintf("CA file %s holds no PEM certificate", path), cause: fs.ErrInvalid}
	}
	return pool, nil
}

// readCertificateFile reads one PEM file, bounded; role is "certificate",
// "key" or "CA".
func readCertificateFile(role, path string) ([]byte, error) {
	if path == "" {
		return nil, &certFileError{msg: fmt.Sprintf("no %s file given", role), cause: fs.ErrInvalid}
	}
	cannot := func(err error) error {
		var pe *fs.PathError
		reason := err
		if errors.As(err, &pe) {
			reason = pe.Err // the path is in the message already
		}
		return &certFileError{msg: fmt.Sprintf("cannot read %s file %s: %v", role, path, reason), cause: err}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, cannot(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCertificateFileBytes+1))
	if err != nil {
		return nil, cannot(err)
	}
	if len(data) > MaxCertificateFileBytes {
		return nil, &certFileError{msg: fmt.Sprintf("%s file %s is larger than %d bytes: too large for a PEM file", role, path, MaxCertificateFileBytes), cause: fs.ErrInvalid}
	}
	return data, nil
}

// certFileError is a certificate or key file problem: it wraps
// agenterr.ErrCertificateFile and its cause (e.g. fs.ErrNotExist).
type certFileError struct {
	msg   string
	cause error
}

func (e *certFileError) Error() string   { return e.msg }
func (e *certFileError) Unwrap() []error { return []error{agenterr.ErrCertificateFile, e.cause} }
