package netpath

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/agentgate/agentgate/agent/agenterr"
)

// ClassifyTLS turns a TLS failure talking to host into an error that wraps
// the matching agenterr sentinel and says what to check; other errors are
// returned unchanged. clientCert says whether the handshake offered a
// client certificate: only then can a TLS alert from the server mean the
// certificate was refused (ErrBadCertificate); without one it is a generic
// refusal (ErrRefused). With TLS 1.3 a server's refusal of the client
// certificate arrives as an alert on the first read, after the handshake
// "succeeded", so callers pass read errors through here too.
func ClassifyTLS(host string, err error, clientCert bool) error {
	if err == nil {
		return nil
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Errorf("%w: %s presented a certificate that does not verify (%v): check the root CA bundle (Amazon Root CA 1 for IoT ATS endpoints) and that nothing intercepts TLS between the agent and the relay",
			agenterr.ErrServerCertificate, host, verr.Err)
	}
	msg := err.Error()
	if strings.Contains(msg, "remote error: tls:") {
		if !clientCert {
			return fmt.Errorf("%w: %s refused the TLS handshake (%s); no client certificate was sent on this path: check the TLS versions and that nothing between the agent and the relay terminates TLS",
				agenterr.ErrRefused, host, alertText(msg))
		}
		return fmt.Errorf("%w: %s refused the client certificate (%s): is it signed by a CA registered in IoT, ACTIVE, attached to the thing, and is the key its pair?",
			agenterr.ErrBadCertificate, host, alertText(msg))
	}
	return err
}

// ClassifyTLS is the package's ClassifyTLS for a connection to host:443
// made by d: when that connection went through d's proxy and the server's
// certificate did not verify, the proxy (or a box behind it) intercepts
// TLS, and the error wraps agenterr.ErrProxyIntercepts and says what to ask
// the site for. host may carry a port.
func (d *Dialer) ClassifyTLS(host string, err error, clientCert bool) error {
	name, port, serr := net.SplitHostPort(host)
	if serr != nil {
		name, port = host, "443"
	}
	var verr *tls.CertificateVerificationError
	p, proxied := d.Proxied(name, port)
	if err == nil || !proxied || !errors.As(err, &verr) {
		return ClassifyTLS(name, err, clientCert)
	}
	issuer := "an unknown issuer"
	if len(verr.UnverifiedCertificates) > 0 {
		issuer = fmt.Sprintf("%q", printable(verr.UnverifiedCertificates[0].Issuer.String()))
	}
	exempt, _ := d.target(name, port)
	return fmt.Errorf("%w: the proxy at %s intercepts TLS: %s presented a certificate issued by %s that does not verify against the expected roots (%v); ask the site to exempt %s and the relay's static IPs (agentgate-agent doctor lists them) from TLS inspection",
		agenterr.ErrProxyIntercepts, p.Addr(), name, issuer, verr.Err, exempt)
}

func alertText(msg string) string {
	if i := strings.Index(msg, "remote error: "); i >= 0 {
		return msg[i:]
	}
	return msg
}
