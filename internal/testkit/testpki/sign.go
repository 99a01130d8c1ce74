package testpki

import (
	"crypto/rand"
	"crypto/x509"
)

// Sign issues tmpl for the public key pub, signed by the CA (as AWS IoT's
// CreateCertificateFromCsr signs a device's CSR), and returns the DER.
func (ca *CA) Sign(tmpl *x509.Certificate, pub any) ([]byte, error) {
	return x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
}
