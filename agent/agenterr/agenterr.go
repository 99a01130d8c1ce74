// Package agenterr names the failures an agent operator must be able to tell
// apart, so a log line or the smoke test can say what to fix. Every error the
// agent packages return for one of these situations wraps the matching
// sentinel (test with errors.Is) and says, in its text, what was seen and what
// to check.
package agenterr

import "errors"

var (
	// ErrCertificateFile: the agent's certificate or key file is missing,
	// unreadable, not PEM, or the two are not a pair. A problem on the
	// agent's host, found before anything is sent: not a certificate the
	// server refused.
	ErrCertificateFile = errors.New("certificate file unusable")
	// ErrBadCertificate: the agent's own certificate is unusable (expired)
	// or was refused in the TLS handshake (not signed by a CA IoT knows, not
	// registered or inactive, key not matching).
	ErrBadCertificate = errors.New("client certificate refused")
	// ErrServerCertificate: the server's certificate did not verify against
	// the configured roots or for the expected name (a wrong CA bundle or a
	// TLS-intercepting middlebox).
	ErrServerCertificate = errors.New("server certificate did not verify")
	// ErrUnreachable: no resolved address of the relay (or endpoint)
	// accepted a TCP connection, or the name did not resolve.
	ErrUnreachable = errors.New("endpoint unreachable")
	// ErrCredentialsExpired: the credentials provider returned, or IoT
	// refused, credentials that are already expired.
	ErrCredentialsExpired = errors.New("credentials expired")
	// ErrClockSkew: the local clock differs from AWS's by more than SigV4
	// allows (5 minutes).
	ErrClockSkew = errors.New("clock skew")
	// ErrRefused: the service answered and said no (403 from the credentials
	// provider or the IoT gateway for a reason other than the above, or a
	// CONNACK/SUBACK failure code): an authorization or configuration problem.
	ErrRefused = errors.New("refused")

	// ErrProxyUnreachable: the explicit HTTP proxy (HTTPS_PROXY, --proxy)
	// did not accept a TCP connection or its name did not resolve.
	ErrProxyUnreachable = errors.New("proxy unreachable")
	// ErrProxyAuth: the proxy answered CONNECT with 407: it wants
	// credentials and none were configured, or it refused those sent.
	ErrProxyAuth = errors.New("proxy authentication failed")
	// ErrProxyDenied: the proxy answered CONNECT with another non-2xx status
	// (403 and the like): its policy does not allow the relay's host or port.
	ErrProxyDenied = errors.New("proxy denied the tunnel")
	// ErrProxyProtocol: the proxy's answer to CONNECT was not HTTP, exceeded
	// the size bound or did not complete in time.
	ErrProxyProtocol = errors.New("proxy answered CONNECT badly")
	// ErrProxyIntercepts: through the proxy, the server's certificate did
	// not verify against the expected roots: the proxy (or a box behind it)
	// terminates TLS and re-signs it with its own CA.
	ErrProxyIntercepts = errors.New("TLS intercepted")
)
