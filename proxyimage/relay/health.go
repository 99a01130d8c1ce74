//go:build linux

package relay

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// healthCertificates makes the health name's certificates at start, in
// memory only: ECDSA P-256 and RSA 2048, self-signed. Route 53 HTTPS health
// checks do not validate the chain, but its documentation (API reference,
// HealthCheckConfig: "the endpoint must support TLS v1.0, v1.1, or v1.2")
// does not say which certificate key types its checkers accept: unverified,
// so both are served and crypto/tls picks per handshake (the first one the
// client's cipher suites and signature algorithms support: ECDSA for any
// modern client, RSA for one that only takes RSA).
func healthCertificates(name string) ([]tls.Certificate, error) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	var certs []tls.Certificate
	for _, key := range []crypto.Signer{ecKey, rsaKey} {
		cert, err := selfSignedCert(name, key)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// selfSignedCert makes a server certificate for name signed by key itself.
func selfSignedCert(name string, key crypto.Signer) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature, // (EC)DHE signatures only
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// errRequestTooLong is what cappedReader returns once its budget is spent.
var errRequestTooLong = errors.New("request longer than the cap")

// cappedReader reads at most left bytes from r, then fails with
// errRequestTooLong instead of reporting EOF, so a request cut by the cap is
// told apart from a client that closed.
type cappedReader struct {
	r    io.Reader
	left int
}

func (c *cappedReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errRequestTooLong
	}
	if len(b) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= n
	return n, err
}

// prefixConn replays bytes already read (the ClientHello) before reading
// from the connection, so crypto/tls sees the whole handshake.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// serveHealth terminates TLS for the health server name and answers one
// request: GET /healthz → 200 when ready, 503 otherwise; anything else 404.
func (s *Server) serveHealth(c net.Conn, hello []byte, deadline time.Time) {
	tc := tls.Server(&prefixConn{Conn: c, prefix: hello}, s.healthTLS)
	defer tc.Close()
	_ = c.SetDeadline(deadline)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		s.reject(c, ReasonHealthHandshake, addrPort(c.RemoteAddr()), err)
		return
	}
	// Every read before routing is bounded: the request (line and headers)
	// by a byte cap, as the CONNECT path is, and all of it by the deadline.
	// Without the cap one client sending a request line without a newline
	// grew the relay by ~400 MB in seconds (TestHealthNameMemoryExhaustion).
	req, err := http.ReadRequest(bufio.NewReaderSize(&cappedReader{r: tc, left: maxHTTPRequest}, 4096))
	if err != nil {
		reason := ReasonClientClosed
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			reason = ReasonPeekTimeout
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		default:
			reason = ReasonHealthBadRequest
			io.WriteString(tc, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
		s.reject(c, reason, addrPort(c.RemoteAddr()), err)
		return
	}
	status, body := http.StatusNotFound, "not found\n"
	if req.URL.Path == relayspec.HealthPath && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		if s.Ready() {
			status, body = http.StatusOK, "ok\n"
			s.m.HealthChecks.WithLabelValues("ready").Inc()
		} else {
			status, body = http.StatusServiceUnavailable, "unready\n"
			s.m.HealthChecks.WithLabelValues("unready").Inc()
		}
	}
	if req.Method == http.MethodHead {
		body = ""
	}
	fmt.Fprintf(tc, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n%s",
		status, http.StatusText(status), len(body), body)
}
