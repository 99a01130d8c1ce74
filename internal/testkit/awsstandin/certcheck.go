package awsstandin

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// CertificateCheck decides whether a device certificate that verified
// against the trusted CAs may still be used; nil error admits it. It is how
// the credentials-provider and IoT-gateway stand-ins learn a certificate's
// registry status: AWS IoT admits only ACTIVE certificates ("Devices cannot
// use a certificate that is not in the ACTIVE state to reconnect",
// https://docs.aws.amazon.com/iot/latest/apireference/API_UpdateCertificate.html).
type CertificateCheck func(leaf *x509.Certificate) error

// CertificateID is AWS IoT's ID of a certificate: the hex SHA-256 of its DER.
func CertificateID(leaf *x509.Certificate) string {
	sum := sha256.Sum256(leaf.Raw)
	return hex.EncodeToString(sum[:])
}

// RegistryCheck returns the check that admits a certificate only while the
// IoT registry stand-in holds it ACTIVE (see Enrol).
func (a *AWS) RegistryCheck() CertificateCheck {
	return func(leaf *x509.Certificate) error {
		if st := a.CertificateStatus(CertificateID(leaf)); st != "ACTIVE" {
			return fmt.Errorf("certificate %s is %q, not ACTIVE", CertificateID(leaf), st)
		}
		return nil
	}
}

// SetCertificateCheck installs (or with nil removes) the check the
// credentials provider applies to every request's client certificate; a
// refused certificate gets 403 (AWS's status and message for it are
// unverified).
func (p *CredentialsProvider) SetCertificateCheck(f CertificateCheck) {
	p.mu.Lock()
	p.certCheck = f
	p.mu.Unlock()
}

// SetCertificateCheck installs (or with nil removes) the check the gateway
// applies to certificate-authenticated MQTT connections; a refused one is
// closed after the handshake, before any MQTT byte, and counted in
// Refused (AWS refuses it in or right after the TLS handshake: unverified
// which).
func (g *IoTGateway) SetCertificateCheck(f CertificateCheck) {
	g.mu.Lock()
	g.certCheck = f
	g.mu.Unlock()
}
