// Package agentlab runs a whole agentgate path on loopback for the reference
// agent's end-to-end tests and the smoke test's tests, with real TLS
// everywhere, the real relay, and stand-ins only for what cannot run here:
//
//	agent ──DNS──▶ DNS stand-in (Route 53 records for the agents' name; each
//	        │      static IP's health from the Route 53 health-check stand-in,
//	        │      which checks HTTPS with the health SNI through the NLB)
//	        └─TCP─▶ NLB stand-in: one listener per zone on its static IP
//	                (127.0.0.2, 127.0.0.3), cross-zone off, PROXY v2 on
//	                every connection, target health checks GET /readyz with a
//	                PROXY LOCAL header
//	                 └─▶ one real relay process per zone (proxyimage/cmd/relay),
//	                     started from the environment the fleet construct
//	                     renders (relayspec.Env) with RelayOverrides only
//	                      ├─ SNI credentials host ─▶ credentials-provider stand-in
//	                      └─ SNI IoT data host ────▶ IoT gateway stand-in (SigV4,
//	                                                 or certificate + ALPN
//	                                                 x-amzn-mqtt-ca) ─▶ mochi-mqtt
//
// With Options.Standby a second region (its own stand-ins, broker, relays
// and load balancer on 127.0.0.4 and 127.0.0.5) joins the DNS name as a
// weight-0 standby, and every relay of both regions routes both regions'
// endpoints, as the stacks deploy a standby fleet.
//
// Intervals and drain durations run TimeScale times faster than deployed;
// counts and thresholds are the deployed ones.
//
// It is test support: only tests import it.
package agentlab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
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

// The standby region's hosts (Options.Standby).
const (
	StandbyIoTHost   = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
	StandbyCredsHost = "c1b2c3d4e5f6g7.credentials.iot.us-east-1.amazonaws.com"
	StandbyRegion    = "us-east-1"
)

// RelayIPs are the home region's static IPs, one per zone, in the order
// DNS answers them in multi-address mode.
var RelayIPs = []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}

// StandbyIPs are the standby region's static IPs (Options.Standby).
var StandbyIPs = []netip.Addr{netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.5")}

// patience bounds the lab's own waits (a relay's first health check, ...):
// a deadlock guard, not a performance threshold.
const patience = 60 * time.Second

// Options tune a lab.
type Options struct {
	// CredentialsDuration is the lifetime of issued credentials; default 15 min.
	CredentialsDuration time.Duration
	// Standby adds the standby region and puts DNS in weighted mode: the
	// home region's static IPs weight 1, the standby's weight 0.
	Standby bool
	// Load-test settings (internal/testkit/storm); none changes what the
	// agent tests run.
	//
	// RelayEnvExtra is added to every relay's environment after RelayEnv
	// (e.g. a higher RELAY_MAX_CONNS, or RELAY_SOURCE_RATE=0 when thousands
	// of agents share the lab's one source address). RelayEnv itself, which
	// constructs/relayfleet compares with the deployed environment, is
	// unchanged.
	RelayEnvExtra map[string]string
	// UnhealthyDrainingInterval replaces the target group's lab-time
	// draining interval (set it with a longer RELAY_DRAIN_TIMEOUT, which
	// it must match as deployed).
	UnhealthyDrainingInterval time.Duration
	// BrokerInMemory hands the IoT gateway stand-in's connections to mochi
	// through in-memory pipes instead of TCP: two file descriptors fewer
	// per agent in the test process.
	BrokerInMemory bool
	// DeployedCheckTimeouts gives the Route 53 health checks and the
	// target group's health check their deployed timeouts (Route 53: 4 s
	// to connect, 2 s for the status; target group:
	// relayspec.TargetHealthCheckTimeoutSeconds) instead of the lab's 1 s,
	// intervals staying scaled. A timeout is not a wait a test sits out
	// but how slow an answer still passes: a host loaded by thousands of
	// agents answers slower than a deployed relay would, and at the lab's
	// 100 ms interval three 1 s timeouts in a row took a live relay's
	// address out of DNS (internal/testkit/storm, docs/benchmarks.md).
	DeployedCheckTimeouts bool

	// ArtifactsBucket, when set, adds the artifacts bucket's S3 host to
	// every relay's routes, served by the S3 stand-in behind a TLS front
	// that admits only the agents' role credentials (s3route.go).
	ArtifactsBucket string
}

// Lab is a running local deployment.
type Lab struct {
	CA *testpki.CA
	// Regions are the home region and, with Options.Standby, the standby.
	Regions []*AWSRegion
	// Broker, Creds, Gateway and Relays are the home region's.
	Broker  *mqtt.Server
	Creds   *awsstandin.CredentialsProvider
	Gateway *awsstandin.IoTGateway
	Relays  []*Relay
	// DNS answers RelayName; Checks are the Route 53 health checks of every
	// static IP that feed it.
	DNS    *awsstandin.DNS
	Checks *awsstandin.Route53Checks
	// RelayPort is the port of every static IP (the load balancers' listeners).
	RelayPort string
	// Routes are the relays' routes as SNI=HOST:PORT (every region's IoT
	// data and credentials hosts).
	Routes []string
	// AgentCert is the device certificate of ThingName.
	AgentCert tls.Certificate
	// Files written for CLI use: CA bundle, agent certificate and key.
	CAFile, CertFile, KeyFile string

	// S3 and ArtifactsHost: the artifacts bucket's S3 stand-in and host
	// (Options.ArtifactsBucket).
	S3            *awsstandin.AWS
	ArtifactsHost string

	dir       string
	closers   []func()
	artifacts *artifactsFront
}

// Start starts everything and returns once every relay is healthy at its
// load balancer; Close stops it. dir receives the PEM files.
func Start(dir string, opts Options) (_ *Lab, err error) {
	l := &Lab{dir: dir}
	defer func() {
		if err != nil {
			l.Close() // l, not the nil an error return sets the result to
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
	home := &AWSRegion{Name: Region, IoTHost: IoTHost, CredsHost: CredsHost, StaticIPs: RelayIPs}
	l.Regions = []*AWSRegion{home}
	if opts.Standby {
		l.Regions = append(l.Regions, &AWSRegion{Name: StandbyRegion, IoTHost: StandbyIoTHost, CredsHost: StandbyCredsHost, StaticIPs: StandbyIPs})
	}
	for _, r := range l.Regions {
		r.relayExtra = opts.RelayEnvExtra
		if err := r.startEndpoints(l, opts.CredentialsDuration, opts.BrokerInMemory); err != nil {
			return nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
		l.Routes = append(l.Routes, r.IoTHost+"="+r.Gateway.Addr, r.CredsHost+"="+r.Creds.Addr)
	}
	l.Broker, l.Creds, l.Gateway = home.Broker, home.Creds, home.Gateway
	tg := targetGroup()
	if opts.DeployedCheckTimeouts {
		tg.HealthCheck.Timeout = relayspec.TargetHealthCheckTimeoutSeconds * time.Second
	}
	if opts.UnhealthyDrainingInterval > 0 {
		tg.UnhealthyDrainingInterval = opts.UnhealthyDrainingInterval
	}
	if opts.ArtifactsBucket != "" {
		route, err := l.startArtifacts(opts.ArtifactsBucket)
		if err != nil {
			return nil, err
		}
		l.Routes = append(l.Routes, route)
	}
	if err := l.startLoadBalancers(tg); err != nil {
		return nil, err
	}
	routes, err := parseRoutes(l.Routes)
	if err != nil {
		return nil, err
	}
	for _, r := range l.Regions {
		if err := r.startRelays(routes); err != nil {
			return nil, fmt.Errorf("region %s: %w", r.Name, err)
		}
	}
	l.Relays = home.Relays
	if l.DNS, err = awsstandin.StartDNS(RelayName, RelayIPs...); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.DNS.Close)
	if opts.Standby {
		var records []awsstandin.WeightedRecord
		for _, r := range l.Regions {
			weight := 0
			if r == home {
				weight = 1
			}
			for _, ip := range r.StaticIPs {
				records = append(records, awsstandin.WeightedRecord{Addr: ip, Weight: weight, Healthy: true})
			}
		}
		l.DNS.SetWeighted(records...)
	}
	var ips []netip.Addr
	for _, r := range l.Regions {
		ips = append(ips, r.StaticIPs...)
	}
	checks := route53Checks(home.NLB.Port)
	if opts.DeployedCheckTimeouts {
		checks.ConnectTimeout, checks.ResponseTimeout = awsstandin.Route53ConnectTimeout, awsstandin.Route53ResponseTimeout
	}
	if l.Checks, err = awsstandin.StartRoute53Checks(checks, ips...); err != nil {
		return nil, err
	}
	l.closers = append(l.closers, l.Checks.Close)
	l.DNS.SetHealthSource(l.Checks)
	// Route 53 counts a new check healthy before it has run; waiting for
	// one real pass per address makes a relay that cannot pass it (its
	// health name, TLS versions, path) fail here instead of failing open.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	for _, ip := range ips {
		if err := l.Checks.AwaitPassed(ctx, ip); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// startLoadBalancers starts every region's load balancer on one port (the
// first picks it; a retry covers the rare race for it on another address).
func (l *Lab) startLoadBalancers(tg awsstandin.TargetGroup) error {
	var lastErr error
	for try := 0; try < 5; try++ {
		port := 0
		var started []*awsstandin.NLB
		for _, r := range l.Regions {
			n, err := awsstandin.StartNLB(port, tg, r.StaticIPs...)
			if err != nil {
				lastErr = err
				break
			}
			port = n.Port
			started = append(started, n)
		}
		if len(started) == len(l.Regions) {
			for i, r := range l.Regions {
				r.NLB = started[i]
				l.closers = append(l.closers, started[i].Close)
			}
			l.RelayPort = fmt.Sprint(port)
			return nil
		}
		for _, n := range started {
			n.Close()
		}
	}
	return fmt.Errorf("could not start the load balancers on one port: %w", lastErr)
}

// StartRelays replaces the home region's relays with new ones routing
// routes (SNI=HOST:PORT), registered with its load balancer, and waits
// until they are healthy there.
func (l *Lab) StartRelays(routes []string) error {
	parsed, err := parseRoutes(routes)
	if err != nil {
		return err
	}
	err = l.Regions[0].startRelays(parsed)
	l.Relays = l.Regions[0].Relays
	return err
}

// Close stops everything the lab started.
func (l *Lab) Close() {
	for _, r := range l.Regions {
		for _, relay := range r.Relays {
			relay.Kill()
		}
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

// awaitHealthy waits until the relay is healthy at its load balancer.
func awaitHealthy(n *awsstandin.NLB, r *Relay) error {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := n.AwaitState(ctx, r.Addr, awsstandin.TargetHealthy); err != nil {
		return errors.Join(err, fmt.Errorf("relay log:\n%s", r.Logs()))
	}
	return nil
}
