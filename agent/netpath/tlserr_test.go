package netpath

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// handshake runs one TLS handshake against a server with serverCfg and
// returns the client's error (the first read's, for TLS 1.3 client
// certificate refusals).
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) error {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake()
		c.Close()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), clientCfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	return err
}

// TestClassifyTLSAlerts: a TLS alert is blamed on the client certificate
// only when one was offered.
func TestClassifyTLSAlerts(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	const host = "abc-ats.iot.eu-west-1.amazonaws.com"
	serverCert, err := ca.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := other.ClientLeaf("dev-1")
	if err != nil {
		t.Fatal(err)
	}

	// No client certificate on the path (WebSocket): the server refuses
	// the TLS version with an alert.
	err = handshake(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS13},
		&tls.Config{RootCAs: ca.Pool, ServerName: host, MaxVersion: tls.VersionTLS12})
	got := ClassifyTLS(host, err, false)
	if !errors.Is(got, agenterr.ErrRefused) || errors.Is(got, agenterr.ErrBadCertificate) ||
		strings.Contains(got.Error(), "client certificate (") || !strings.Contains(got.Error(), "refused the TLS handshake (remote error: tls: protocol version not supported)") {
		t.Errorf("without a client certificate: %v", got)
	}

	// A client certificate from a CA the server does not know.
	err = handshake(t, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool},
		&tls.Config{RootCAs: ca.Pool, ServerName: host, Certificates: []tls.Certificate{rogue}})
	got = ClassifyTLS(host, err, true)
	if !errors.Is(got, agenterr.ErrBadCertificate) || !strings.Contains(got.Error(), host+" refused the client certificate (remote error: tls:") {
		t.Errorf("with a refused client certificate: %v", got)
	}

	// Not a TLS alert: unchanged.
	plain := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	if got := ClassifyTLS(host, plain, true); got != error(plain) {
		t.Errorf("a dial error became %v", got)
	}
}
