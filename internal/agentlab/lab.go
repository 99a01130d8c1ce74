// Package agentlab runs a whole agentgate path on loopback for the reference
// agent's end-to-end tests and the smoke test's tests, with real TLS
// everywhere and stand-ins only for what cannot run here:
//
//	agent ──DNS──▶ DNS stand-in (Route 53): the relay name → 127.0.0.2, 127.0.0.3
//	agent ──TCP──▶ two real relay processes (proxyimage/cmd/relay), same port
//	        ├─ SNI credentials host ─▶ credentials-provider stand-in (mutual TLS)
//	        └─ SNI IoT data host ────▶ IoT gateway stand-in (verifies SigV4,
//	                                   or a device certificate with ALPN
//	                                   x-amzn-mqtt-ca) ─▶ mochi-mqtt (real broker)
//
// It is test support: only tests import it.
package agentlab

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/agentgate/agentgate/internal/awsstandin"
	"github.com/agentgate/agentgate/internal/testpki"
)

// Names of the lab's hosts; the region is taken from the IoT host as the
// agent would.
const (
	IoTHost    = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
	CredsHost  = "c1b2c3d4e5f6g7.credentials.iot.eu-west-1.amazonaws.com"
	RelayName  = "agents.agentgate.test"
	Region     = "eu-west-1"
	RoleAlias  = "agentgate-agent"
	CustomerID = "acme-01"
	ThingName  = "dev-4711"
)

// RelayIPs are the two loopback addresses the relays listen on, in the
// order DNS answers them.
var RelayIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}

// Options tune a lab.
type Options struct {
	// CredentialsDuration is the lifetime of issued credentials; default 15 min.
	CredentialsDuration time.Duration
	// RelayArgs are extra flags for both relays.
	RelayArgs []string
}

// Lab is a running local deployment.
type Lab struct {
	CA      *testpki.CA
	Broker  *mqtt.Server
	Creds   *awsstandin.CredentialsProvider
	Gateway *awsstandin.IoTGateway
	DNS     *awsstandin.DNS
	Relays  []*Relay
	// RelayPort is the port both relays listen on.
	RelayPort string
	// Routes are the relays' --route values (IoT data and credentials hosts).
	Routes []string
	// AgentCert is the device certificate of ThingName.
	AgentCert tls.Certificate
	// Files written for CLI use: CA bundle, agent certificate and key.
	CAFile, CertFile, KeyFile string

	dir     string
	closers []func()
}

// Start starts everything; Close stops it. dir receives the PEM files.
func Start(dir string, opts Options) (l *Lab, err error) {
	l = &Lab{dir: dir}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if opts.CredentialsDuration == 0 {
		opts.CredentialsDuration = 15 * time.Minute
	}
	if l.CA, err = testpki.NewCA(); err != nil {
		return nil, err
	}
	if l.AgentCert, err = l.CA.ClientLeaf(ThingName); err != nil {
		return nil, err
	}
	if err := l.writePEM(); err != nil {
		return nil, err
	}
	brokerAddr, err := l.startBroker()
	if err != nil {
		return nil, err
	}
	credsCert, err := l.CA.Leaf(CredsHost)
	if err != nil {
		return nil, err
	}
	if l.Creds, err = awsstandin.StartCredentialsProvider(credsCert, l.CA.Pool, RoleAlias, opts.CredentialsDuration); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.Creds.Close)
	iotCert, err := l.CA.Leaf(IoTHost)
	if err != nil {
		return nil, err
	}
	if l.Gateway, err = awsstandin.StartIoTGateway(iotCert, l.CA.Pool, l.Creds, Region, brokerAddr); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.Gateway.Close)
	if l.DNS, err = awsstandin.StartDNS(RelayName, RelayIPs...); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.DNS.Close)
	l.Routes = []string{IoTHost + "=" + l.Gateway.Addr, CredsHost + "=" + l.Creds.Addr}
	if err := l.StartRelays(l.Routes, opts.RelayArgs...); err != nil {
		return nil, err
	}
	return l, nil
}

// StartRelays starts one relay per RelayIPs entry, all on one port, with
// the given routes (replacing any running ones).
func (l *Lab) StartRelays(routes []string, extra ...string) error {
	for _, r := range l.Relays {
		r.Kill()
	}
	l.Relays = nil
	// The first relay picks a free port; the others take the same one on
	// their own address (a retry covers the rare race for it).
	var lastErr error
	for try := 0; try < 5; try++ {
		first, err := StartRelay(net.JoinHostPort(RelayIPs[0].String(), "0"), routes, extra...)
		if err != nil {
			return err
		}
		_, port, _ := net.SplitHostPort(first.Addr)
		relays := []*Relay{first}
		for _, ip := range RelayIPs[1:] {
			r, err := StartRelay(net.JoinHostPort(ip.String(), port), routes, extra...)
			if err != nil {
				lastErr = err
				break
			}
			relays = append(relays, r)
		}
		if len(relays) == len(RelayIPs) {
			l.Relays, l.RelayPort = relays, port
			return nil
		}
		for _, r := range relays {
			r.Kill()
		}
	}
	return fmt.Errorf("could not start the relays on one port: %w", lastErr)
}

// Close stops everything the lab started.
func (l *Lab) Close() {
	for _, r := range l.Relays {
		r.Kill()
	}
	for i := len(l.closers) - 1; i >= 0; i-- {
		l.closers[i]()
	}
}

func (l *Lab) writePEM() error {
	certPEM, keyPEM, err := testpki.PEM(l.AgentCert)
	if err != nil {
		return err
	}
	l.CAFile = filepath.Join(l.dir, "ca.pem")
	l.CertFile = filepath.Join(l.dir, "agent.crt")
	l.KeyFile = filepath.Join(l.dir, "agent.key")
	for path, b := range map[string][]byte{l.CAFile: l.CA.CertPEM(), l.CertFile: certPEM, l.KeyFile: keyPEM} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startBroker runs mochi-mqtt with a plain TCP listener on loopback (the
// gateway stand-in terminates TLS and WebSocket in front of it).
func (l *Lab) startBroker() (string, error) {
	// mochi serves the listener it is given: no port picked, closed and
	// bound again (which another process could take in between).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l.Broker = mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet})
	if err := l.Broker.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return "", err
	}
	if err := l.Broker.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return "", err
	}
	go l.Broker.Serve()
	l.closers = append(l.closers, func() { l.Broker.Close() })
	return addr, nil // connections queue in the bound listener until Serve accepts
}
