// Command agentgate-agent is the reference agent as a program:
//
//	agentgate-agent run   [flags]   connect and stay connected, applying configuration
//	agentgate-agent smoke [flags]   one pass through every step against a deployment, each reported
//	agentgate-agent doctor [flags]  what the site must allow, and each network hop checked
//
// Every flag can also be set from the environment: --iot-endpoint is
// AGENTGATE_IOT_ENDPOINT. Flags win over the environment.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/timing"
)

// EnvPrefix prefixes the environment variable of every flag.
const EnvPrefix = "AGENTGATE_"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

const usage = `usage: agentgate-agent run|smoke|enroll|doctor [flags]

  run     connect through the relay and stay connected; apply each newer configuration;
          with --release-keys, install signed releases (docs/releases.md)
  smoke   post-deploy check: resolve, TLS through the relay, credentials, presign,
          connect, subscribe, retained configuration, publish and receive; one line
          per step with ok/FAIL, time and reason; exit status 1 if a step fails
  enroll  first start on a new host: create a key, enrol with an install token
          (fleet provisioning by claim) and keep the certificate (docs/identity.md)
  doctor  print the relay's static IPs the site must allow, then check each hop: DNS,
          proxy, TLS through the relay, credentials, IoT connect; one ok/FAIL line each

An explicit proxy comes from --proxy or HTTPS_PROXY/https_proxy (NO_PROXY honoured);
--proxy direct ignores the environment (docs/agent.md).

Every flag can be set from the environment as AGENTGATE_<FLAG> (--iot-endpoint is
AGENTGATE_IOT_ENDPOINT). Run "agentgate-agent run -h" for the flags.
`

func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, args := args[0], args[1:]
	if cmd == "enroll" {
		return enrollCmd(ctx, args, getenv, stdout, stderr)
	}
	if cmd != "run" && cmd != "smoke" && cmd != "doctor" {
		fmt.Fprintf(stderr, "agentgate-agent: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	o, err := parseFlags(cmd, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent %s: %v\n", cmd, err)
		return 2
	}
	switch cmd {
	case "smoke":
		return smoke(ctx, o, stdout)
	case "doctor":
		return doctor(ctx, o, stdout)
	}
	return runAgent(ctx, o, getenv, stderr)
}

// options are the parsed flags.
type options struct {
	customer, thing, transport                       string
	iotEndpoint, credsEndpoint, alias                string
	region                                           string
	certFile, keyFile, caFile                        string
	relayName, relayPort, dnsServer                  string
	keepAlive, sessionExpiry                         time.Duration
	backoffFloor, backoffBase, backoffMax, connectTO time.Duration
	reconnectSpread                                  time.Duration
	stateFile, logLevel                              string
	timeout                                          time.Duration
	publishSubject                                   string
	expectConfig                                     bool
	px                                               proxyFlags
	proxy                                            *netpath.Proxy // resolved from px and the environment
	staticIPs                                        string         // doctor.go
	upd                                              updateOptions  // update.go
}

func parseFlags(cmd string, args []string, getenv func(string) (string, bool), stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("agentgate-agent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.customer, "customer", "", "customer ID (the thing's thing type): topics are <customer>/<thing>/…")
	fs.StringVar(&o.thing, "thing", "", "thing name: MQTT client ID and x-amzn-iot-thingname")
	fs.StringVar(&o.transport, "transport", string(agent.TransportWebSocket), "wss (SigV4 WebSocket with role credentials) or mqtts (certificate, ALPN x-amzn-mqtt-ca)")
	fs.StringVar(&o.iotEndpoint, "iot-endpoint", "", "IoT data endpoint host, e.g. abc123-ats.iot.eu-west-1.amazonaws.com (aws iot describe-endpoint --endpoint-type iot:Data-ATS)")
	fs.StringVar(&o.credsEndpoint, "credentials-endpoint", "", "credentials provider host (aws iot describe-endpoint --endpoint-type iot:CredentialProvider); wss only")
	fs.StringVar(&o.alias, "role-alias", "agentgate-agent", "role alias name; wss only")
	fs.StringVar(&o.region, "region", "", "region for SigV4 (default: taken from --iot-endpoint)")
	fs.StringVar(&o.certFile, "cert", "", "device certificate PEM file")
	fs.StringVar(&o.keyFile, "key", "", "device private key PEM file")
	fs.StringVar(&o.caFile, "ca", "", "PEM bundle of root CAs for AWS's certificates (default: the system pool; AWS IoT ATS endpoints chain to Amazon Root CA 1)")
	fs.StringVar(&o.relayName, "relay", "", "the agents' DNS name (the relay's static IPs); empty connects to the endpoints directly")
	fs.StringVar(&o.relayPort, "relay-port", "443", "the relay's port")
	fs.StringVar(&o.dnsServer, "dns-server", "", "host:port of a DNS server to resolve --relay with (default: the system resolver)")
	fs.DurationVar(&o.keepAlive, "keep-alive", timing.DefaultMQTTKeepAlive, fmt.Sprintf("MQTT keep-alive, whole seconds, at most %s", timing.MaxMQTTKeepAlive))
	fs.DurationVar(&o.sessionExpiry, "session-expiry", agent.DefaultSessionExpiry, "how long the broker keeps the session and queues QoS 1 messages while the agent is away")
	fs.DurationVar(&o.backoffFloor, "backoff-floor", 0, "reconnect backoff floor: every attempt waits at least this (0: the least of 1s, base and max/2)")
	fs.DurationVar(&o.backoffBase, "backoff-base", agent.DefaultBackoffBase, "reconnect backoff: attempt n waits floor + random [0, min(max-floor, base·2ⁿ))")
	fs.DurationVar(&o.backoffMax, "backoff-max", agent.DefaultBackoffMax, "reconnect backoff cap")
	fs.DurationVar(&o.reconnectSpread, "reconnect-spread", 0, "first reconnect after a lost connection waits floor + random [0, spread); at least the capacity report's agentReconnectSpreadSec (0: 18s or backoff-max if less)")
	fs.DurationVar(&o.connectTO, "connect-timeout", agent.DefaultConnectTimeout, "bound on one connection attempt")
	fs.StringVar(&o.stateFile, "state-file", "", "file keeping the last applied configuration envelope across restarts")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	addProxyFlags(fs, &o.px)
	if cmd == "run" {
		addUpdateFlags(fs, &o.upd)
	}
	if cmd == "doctor" {
		addDoctorFlags(fs, o)
	}
	if cmd == "smoke" {
		fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "bound on each step that waits for the broker (retained config, publish echo)")
		fs.StringVar(&o.publishSubject, "publish", "smoke", "subject to publish to (<customer>/<thing>/up/<subject>, checked by its PUBACK); empty skips the step")
		fs.BoolVar(&o.expectConfig, "expect-config", true, "fail if no retained configuration arrives")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := EnvName(f.Name)
		if v, ok := getenv(name); ok {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	_, noProxyEnv := getenv(EnvName("no-proxy"))
	px, err := o.px.resolve(set["no-proxy"] || noProxyEnv, getenv)
	if err != nil {
		return nil, err
	}
	o.proxy = px
	var missing []string
	for name, v := range map[string]string{"customer": o.customer, "thing": o.thing, "iot-endpoint": o.iotEndpoint, "cert": o.certFile, "key": o.keyFile} {
		if v == "" {
			missing = append(missing, "--"+name)
		}
	}
	if o.transport == string(agent.TransportWebSocket) && o.credsEndpoint == "" {
		missing = append(missing, "--credentials-endpoint")
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("missing %s (or their %s* environment variables)", strings.Join(missing, ", "), EnvPrefix)
	}
	return o, nil
}

// EnvName is the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// loadTLS reads the certificate, key and CA bundle, naming the file at fault.
func loadTLS(o *options) (tls.Certificate, *x509.CertPool, error) {
	cert, err := agent.LoadCertificate(o.certFile, o.keyFile, nil)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if o.caFile == "" {
		return cert, nil, nil
	}
	pool, err := agent.LoadCAFile(o.caFile)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return cert, pool, nil
}

func dialer(o *options) *netpath.Dialer {
	d := &netpath.Dialer{RelayName: o.relayName, RelayPort: o.relayPort, Proxy: o.proxy}
	if o.relayName == "" {
		d.RelayPort = ""
	}
	if o.dnsServer != "" {
		server := o.dnsServer
		d.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, network, server)
		}}
	}
	return d
}

func logger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func agentConfig(o *options, log *slog.Logger) (agent.Config, error) {
	cert, pool, err := loadTLS(o)
	if err != nil {
		return agent.Config{}, err
	}
	return agent.Config{
		CustomerID: o.customer, ThingName: o.thing, Transport: agent.Transport(o.transport),
		IoTEndpoint: o.iotEndpoint, CredentialsEndpoint: o.credsEndpoint, RoleAlias: o.alias, Region: o.region,
		Certificate: cert, RootCAs: pool, Dialer: dialer(o),
		KeepAlive: o.keepAlive, SessionExpiry: o.sessionExpiry,
		BackoffFloor: o.backoffFloor, BackoffBase: o.backoffBase, BackoffMax: o.backoffMax, ReconnectSpread: o.reconnectSpread, ConnectTimeout: o.connectTO,
		StateFile: o.stateFile, Logger: log,
		ClientVersion: version, // update.go: this build's release version, announced on up/status
	}, nil
}

func runAgent(ctx context.Context, o *options, getenv func(string) (string, bool), stderr io.Writer) int {
	log, err := logger(o.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent run: %v\n", err)
		return 2
	}
	cfg, err := agentConfig(o, log)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent run: %v\n", err)
		return 2
	}
	cfg.OnConfig = func(e envelope.Envelope) error {
		log.Info("configuration applied", "version", e.Version, "sha256", e.SHA256, "issued_at", e.IssuedAt, "bytes", len(e.Config))
		return nil
	}
	cfg.OnMessage = func(m agent.Message) {
		log.Info("message", "topic", m.Topic, "bytes", len(m.Payload), "qos", m.QoS, "duplicate", m.Duplicate)
	}
	cfg.OnEvent = func(e agent.Event) {
		if e.Err == nil {
			log.Info("step", "step", e.Step, "attempt", e.Attempt, "detail", e.Detail)
		}
	}
	su := newSelfUpdate(o, log, getenv) // update.go; nil without --release-keys
	su.prepare(&cfg)
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-agent run: %v\n", err)
		return 2
	}
	if cur, ok := a.Current(); ok {
		log.Info("configuration from the state file", "version", cur.Version, "sha256", cur.SHA256)
	}
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	runDone := make(chan struct{})
	if err := su.start(ctx, a, func() { stopAgent(); <-runDone }); err != nil {
		fmt.Fprintf(stderr, "agentgate-agent run: %v\n", err)
		return 2
	}
	signalHealthy(agentCtx, a, getenv)
	err = a.Run(agentCtx)
	close(runDone)
	if code, ok := su.afterRun(ctx); ok {
		return code
	}
	if err != nil {
		log.Error("run", "err", err)
		return 1
	}
	return 0
}
