// Package agent is agentgate's reference agent: the minimal correct client an
// agent vendor needs to reach AWS IoT Core through the static-IP relay.
//
// One connection attempt (Dial) does, in order:
//
//  1. WebSocket path (default): fetch fresh role credentials from the IoT
//     credentials provider with the device certificate and
//     x-amzn-iot-thingname (agent/credentials), presign
//     wss://<endpoint>/mqtt with SigV4 (agent/presign);
//     certificate path: nothing to fetch, TLS with the certificate and ALPN
//     x-amzn-mqtt-ca on port 443.
//  2. Resolve the agents' DNS name and dial every address in order until one
//     accepts (agent/netpath); TLS always names the real IoT host, so the
//     relay routes by SNI and the certificate verifies end to end.
//
// Run keeps a persistent MQTT 5 session (clean start off, session expiry),
// reconnects with jittered exponential backoff, subscribes to the exact
// config topic (the only subscription that receives the retained config) and
// to <customer>/<thing>/#, and applies a configuration only if it is newer
// than the one applied last (kept in a state file) and its SHA-256 verifies.
package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/credentials"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/agent/presign"
	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/contract/topics"
)

// Transport selects how the agent authenticates to IoT Core.
type Transport string

const (
	// TransportWebSocket is MQTT over WebSocket with a SigV4-presigned URL
	// and role credentials from the credentials provider; authorized by the
	// role's IAM policy.
	TransportWebSocket Transport = "wss"
	// TransportCertificate is MQTT over TLS on 443 with the device
	// certificate and ALPN x-amzn-mqtt-ca; authorized by the IoT policy.
	TransportCertificate Transport = "mqtts"
)

// ALPNCertificate is the ALPN protocol IoT Core needs for certificate
// authenticated MQTT on port 443.
const ALPNCertificate = "x-amzn-mqtt-ca"

// MaxMessageBytes is IoT Core's message size limit; a larger config message
// is refused unread. It is topics.MaxMessageBytes, named here so vendors
// using this package need not import the contract for it.
const MaxMessageBytes = topics.MaxMessageBytes

// Defaults for Config fields left zero.
const (
	DefaultSessionExpiry  = time.Hour
	DefaultBackoffBase    = time.Second
	DefaultBackoffMax     = 2 * time.Minute
	DefaultConnectTimeout = 20 * time.Second
	// DefaultCredentialsRefreshWindow: cached credentials are replaced this
	// long before they expire.
	DefaultCredentialsRefreshWindow = 5 * time.Minute
)

// Config configures an agent. Zero fields take the documented defaults.
type Config struct {
	// CustomerID and ThingName place the agent at <customer>/<thing>/…;
	// ThingName is also the MQTT client ID and the x-amzn-iot-thingname.
	CustomerID, ThingName string
	// Transport defaults to TransportWebSocket.
	Transport Transport
	// IoTEndpoint is the account's IoT data endpoint (host, optional :port;
	// default port 443), e.g. abc123-ats.iot.eu-west-1.amazonaws.com.
	IoTEndpoint string
	// CredentialsEndpoint and RoleAlias are needed for TransportWebSocket.
	CredentialsEndpoint, RoleAlias string
	// Region signs the WebSocket URL; default: taken from IoTEndpoint.
	Region string
	// Certificate is the device certificate and key.
	Certificate tls.Certificate
	// RootCAs verify AWS's certificates; nil means the system pool.
	RootCAs *x509.CertPool
	// Dialer reaches AWS through the relay (RelayName = the agents' DNS
	// name); nil dials the endpoints directly.
	Dialer *netpath.Dialer
	// KeepAlive defaults to timing.DefaultMQTTKeepAlive; at most
	// timing.MaxMQTTKeepAlive (the IoT VPC endpoint's cap).
	KeepAlive time.Duration
	// SessionExpiry is how long the broker keeps the session (and queues
	// QoS 1 messages) while the agent is away; default DefaultSessionExpiry.
	SessionExpiry time.Duration
	// BackoffBase and BackoffMax shape the reconnect backoff: attempt n
	// waits a uniformly random time in [0, min(BackoffMax, BackoffBase·2ⁿ)).
	BackoffBase, BackoffMax time.Duration
	// ConnectTimeout bounds one connection attempt (credentials, dial,
	// CONNECT/CONNACK); default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// StateFile keeps the last applied config envelope across restarts;
	// empty keeps it in memory only.
	StateFile string
	// OnConfig applies a configuration; it is called only for an envelope
	// newer than the last applied one whose SHA-256 verified. An error
	// leaves the previous one current; after a backoff the agent subscribes
	// to the exact config topic again, which makes the broker resend the
	// retained config, and so retries until OnConfig succeeds.
	// It runs on the MQTT receive path: hand long work off.
	OnConfig func(envelope.Envelope) error
	// OnMessage receives every other message under <customer>/<thing>/#.
	// QoS 1 messages may repeat after a reconnect; Message.Duplicate says
	// when the broker flagged a redelivery.
	OnMessage func(Message)
	// OnEvent observes each step of each connection attempt.
	OnEvent func(Event)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock used to sign; default time.Now.
	Now func() time.Time
}

// Message is one message delivered on the agent's topics.
type Message struct {
	// Topic is the full topic, <customer>/<thing>/<subject…>.
	Topic string
	// Payload is the message body as published (at most MaxMessageBytes).
	Payload []byte
	// QoS is the delivery QoS: 0 or 1 (IoT Core has no QoS 2).
	QoS byte
	// Retain is set for a retained message delivered on subscribing.
	Retain bool
	// Duplicate is the broker's DUP flag: a QoS 1 redelivery.
	Duplicate bool
}

// Step names for Event.
const (
	StepCredentials = "credentials"
	StepPresign     = "presign"
	StepResolve     = "resolve"
	StepTCP         = "tcp"
	StepUpgrade     = "tls+websocket"
	StepTLS         = "tls"
	StepConnect     = "mqtt-connect"
	StepSubscribe   = "subscribe"
	StepConfig      = "config"
	StepDisconnect  = "disconnected"
)

// Event reports one step: Err is nil on success.
type Event struct {
	// Step is one of the Step constants.
	Step string
	// Attempt counts connection attempts since the last loss of connection
	// (0 is the first attempt).
	Attempt int
	// Detail is the address dialled (StepTCP) or what the step did.
	Detail string
	// Err is why the step failed; nil when it succeeded.
	Err error
	// Time is when the step ended.
	Time time.Time
}

// Agent is a configured reference agent.
type Agent struct {
	cfg    Config
	host   string // IoT endpoint host, the TLS server name
	port   string
	region string
	creds  *aws.CredentialsCache
	log    *slog.Logger

	mu      sync.Mutex
	current envelope.Envelope
	attempt int
	cm      *autopaho.ConnectionManager
	ups     int
	everUp  bool
	// conn counts connections (CONNACKs); a subscription or config retry
	// started for one connection does not act on a later one.
	conn uint64
	// subscribedInSession: the broker acknowledged both subscriptions in
	// the current broker session (cleared when a CONNACK says no session).
	// Only then may a reconnect with "session present" skip subscribing.
	subscribedInSession bool
	// configRetries counts consecutive OnConfig failures (backoff exponent);
	// configRetryPending: one re-subscription of the config topic is queued.
	configRetries      int
	configRetryPending bool
	runCtx             context.Context
	// lastClientErr is why the current connection ended, for the event.
	lastClientErr string
	upCh          chan struct{}
	// applyMu serializes config application (OnConfig may call Current).
	applyMu sync.Mutex
}

// New validates cfg and loads the state file.
func New(cfg Config) (*Agent, error) {
	if err := topics.ValidateCustomerID(cfg.CustomerID); err != nil {
		return nil, err
	}
	if err := topics.ValidateThingName(cfg.ThingName); err != nil {
		return nil, err
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportWebSocket
	}
	if cfg.Transport != TransportWebSocket && cfg.Transport != TransportCertificate {
		return nil, fmt.Errorf("transport %q: want %q or %q", cfg.Transport, TransportWebSocket, TransportCertificate)
	}
	if cfg.IoTEndpoint == "" {
		return nil, fmt.Errorf("iot endpoint is empty")
	}
	host, port, err := net.SplitHostPort(cfg.IoTEndpoint)
	if err != nil {
		host, port = cfg.IoTEndpoint, "443"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		host = ""
	}
	if host == "" || strings.ContainsAny(cfg.IoTEndpoint, "/?#@ ") || net.ParseIP(host) != nil {
		return nil, fmt.Errorf("iot endpoint %q must be a host name (TLS verifies it and the relay routes by it), not a URL or an IP", cfg.IoTEndpoint)
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return nil, fmt.Errorf("%w: no client certificate configured", agenterr.ErrBadCertificate)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = timing.DefaultMQTTKeepAlive
	}
	if cfg.KeepAlive < time.Second || cfg.KeepAlive > timing.MaxMQTTKeepAlive || cfg.KeepAlive%time.Second != 0 {
		return nil, fmt.Errorf("keep-alive %s must be whole seconds in 1s..%s (the IoT VPC endpoint's cap)", cfg.KeepAlive, timing.MaxMQTTKeepAlive)
	}
	if cfg.SessionExpiry == 0 {
		cfg.SessionExpiry = DefaultSessionExpiry
	}
	if cfg.SessionExpiry < 0 || cfg.SessionExpiry > 7*24*time.Hour {
		return nil, fmt.Errorf("session expiry %s must be within 0..168h", cfg.SessionExpiry)
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffBase < 0 || cfg.BackoffMax < cfg.BackoffBase {
		return nil, fmt.Errorf("backoff base %s and max %s: want 0 < base ≤ max", cfg.BackoffBase, cfg.BackoffMax)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &netpath.Dialer{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Agent{host: host, port: port, log: cfg.Logger, upCh: make(chan struct{})}
	// One dialer for the credentials provider and IoT, reporting every TCP
	// attempt as an event.
	d := *cfg.Dialer
	prev := d.OnDial
	d.OnDial = func(addr string, err error) {
		a.event(StepTCP, addr, err)
		if prev != nil {
			prev(addr, err)
		}
	}
	cfg.Dialer = &d
	a.cfg = cfg
	if cfg.Transport == TransportWebSocket {
		a.region = cfg.Region
		if a.region == "" {
			r, ok := presign.RegionFromEndpoint(host)
			if !ok {
				return nil, fmt.Errorf("region: cannot take it from iot endpoint %q; set it", host)
			}
			a.region = r
		}
		p := &credentials.Provider{Endpoint: cfg.CredentialsEndpoint, RoleAlias: cfg.RoleAlias, ThingName: cfg.ThingName,
			Certificate: cfg.Certificate, RootCAs: cfg.RootCAs, Dialer: cfg.Dialer, Now: cfg.Now}
		if err := p.Validate(); err != nil {
			return nil, err
		}
		a.creds = aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = DefaultCredentialsRefreshWindow
			o.ExpiryWindowJitterFrac = 0.5
		})
	}
	a.current, err = loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Credentials is the agent's role-credentials cache (WebSocket transport
// only, else nil): an aws.CredentialsProvider that refreshes before expiry,
// for AWS SDK clients such as the S3 download of a release.
func (a *Agent) Credentials() aws.CredentialsProvider {
	if a.creds == nil {
		return nil
	}
	return a.creds
}

// ConfigTopic is the agent's exact config topic.
func (a *Agent) ConfigTopic() string { return topics.ConfigTopic(a.cfg.CustomerID, a.cfg.ThingName) }

// Current returns the last applied envelope (from the state file at start).
func (a *Agent) Current() (envelope.Envelope, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current, a.current.Version != 0
}

func (a *Agent) event(step, detail string, err error) {
	a.mu.Lock()
	attempt := a.attempt
	a.mu.Unlock()
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(Event{Step: step, Attempt: attempt, Detail: detail, Err: err, Time: time.Now()})
	}
	if err != nil {
		a.log.Warn("agent step failed", "step", step, "attempt", attempt, "detail", detail, "err", err)
	} else {
		a.log.Debug("agent step", "step", step, "attempt", attempt, "detail", detail)
	}
}

// Dial makes one connection attempt up to a byte stream ready for MQTT
// CONNECT: credentials and presign (WebSocket), resolve, TCP to the relay,
// TLS with the IoT host name and the WebSocket upgrade (or TLS with the
// certificate). Errors wrap agenterr sentinels.
func (a *Agent) Dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ConnectTimeout)
	defer cancel()
	d := a.cfg.Dialer
	if a.cfg.Transport == TransportCertificate {
		return a.dialCertificate(ctx, d)
	}
	// Fresh credentials before every connection: a reconnect is when a
	// revoked certificate or a changed role should take effect.
	a.creds.Invalidate()
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		a.event(StepCredentials, a.cfg.CredentialsEndpoint, err)
		return nil, err
	}
	a.event(StepCredentials, fmt.Sprintf("%s: role credentials valid until %s", a.cfg.CredentialsEndpoint, creds.Expires.UTC().Format(time.RFC3339)), nil)
	signHost := a.host // the Host header IoT sees: the port only when not 443
	if a.port != "443" {
		signHost = net.JoinHostPort(a.host, a.port)
	}
	signed, err := presign.URL(ctx, creds, signHost, a.region, a.cfg.Now())
	a.event(StepPresign, "wss://"+signHost+presign.Path, err)
	if err != nil {
		return nil, err
	}
	addrs, err := d.Resolve(ctx, a.host, a.port)
	a.event(StepResolve, strings.Join(addrs, ","), err)
	if err != nil {
		return nil, err
	}
	wd := websocket.Dialer{
		// The addresses just resolved (and reported): one lookup per connection.
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialAddrs(ctx, network, addr, addrs)
		},
		TLSClientConfig:  &tls.Config{RootCAs: a.cfg.RootCAs, ServerName: a.host, MinVersion: tls.VersionTLS12},
		Subprotocols:     []string{"mqtt"},
		HandshakeTimeout: a.cfg.ConnectTimeout,
	}
	ws, resp, err := wd.DialContext(ctx, signed, nil)
	if err != nil {
		err = a.upgradeError(resp, err)
		a.event(StepUpgrade, a.host, err)
		return nil, err
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close()
		err := fmt.Errorf("%w: %s accepted the WebSocket without subprotocol mqtt", agenterr.ErrRefused, a.host)
		a.event(StepUpgrade, a.host, err)
		return nil, err
	}
	a.event(StepUpgrade, a.host, nil)
	return packets.NewThreadSafeConn(newLimitConn(newWSConn(ws), MaxPacketBytes)), nil
}

func (a *Agent) dialCertificate(ctx context.Context, d *netpath.Dialer) (net.Conn, error) {
	addrs, err := d.Resolve(ctx, a.host, a.port)
	a.event(StepResolve, strings.Join(addrs, ","), err)
	if err != nil {
		return nil, err
	}
	raw, err := d.DialAddrs(ctx, "tcp", net.JoinHostPort(a.host, a.port), addrs)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, &tls.Config{
		Certificates: []tls.Certificate{a.cfg.Certificate}, RootCAs: a.cfg.RootCAs, ServerName: a.host,
		NextProtos: []string{ALPNCertificate}, MinVersion: tls.VersionTLS12,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		err = netpath.ClassifyTLS(a.host, err, true)
		a.event(StepTLS, a.host, err)
		return nil, err
	}
	a.event(StepTLS, a.host+" alpn="+tc.ConnectionState().NegotiatedProtocol, nil)
	return packets.NewThreadSafeConn(newLimitConn(tc, MaxPacketBytes)), nil
}

// upgradeError explains a failed WebSocket upgrade: IoT answers 403 with a
// SigV4 message, which says whether the clock or the credentials are at
// fault.
func (a *Agent) upgradeError(resp *http.Response, err error) error {
	if resp == nil {
		return netpath.ClassifyTLS(a.host, err, false) // the WebSocket path sends no client certificate
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	msg := strings.TrimSpace(string(b))
	switch {
	case strings.Contains(msg, "Signature expired") || strings.Contains(msg, "Signature not yet current"):
		return fmt.Errorf("%w: %s refused the signed URL: %q: the local clock (%s) is off by more than 5 minutes: fix NTP",
			agenterr.ErrClockSkew, a.host, msg, a.cfg.Now().UTC().Format(time.RFC3339))
	case strings.Contains(msg, "token") && strings.Contains(msg, "expired"):
		return fmt.Errorf("%w: %s refused the session token: %q", agenterr.ErrCredentialsExpired, a.host, msg)
	}
	return fmt.Errorf("%w: %s answered the WebSocket upgrade with HTTP %d %q: check the role's IAM policy (iot:Connect on client/%s) and the region",
		agenterr.ErrRefused, a.host, resp.StatusCode, msg, a.cfg.ThingName)
}

// Backoff returns the delay before reconnect attempt n (0-based): uniformly
// random in [0, min(max, base·2ⁿ)), "full jitter", so a fleet cut off at
// once does not come back at once. The rule is backoff.FullJitter, which the
// control-plane Lambdas' AWS SDK retryer shares.
func Backoff(base, max time.Duration, n int) time.Duration {
	return backoff.FullJitter(base, max, n)
}

// Run connects and stays connected until ctx ends, then disconnects
// cleanly. It returns nil after ctx ends; a configuration error returns at
// once.
func (a *Agent) Run(ctx context.Context) error {
	u := &url.URL{Scheme: "agentgate", Host: a.host}
	cfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(a.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         uint32(a.cfg.SessionExpiry / time.Second),
		ConnectTimeout:                a.cfg.ConnectTimeout,
		ReconnectBackoff: func(n int) time.Duration {
			a.mu.Lock()
			a.attempt = n
			first := a.ups == 0 && !a.everUp
			a.mu.Unlock()
			if n == 0 && first {
				return 0 // first start: no reason to wait
			}
			return Backoff(a.cfg.BackoffBase, a.cfg.BackoffMax, n)
		},
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			// Tell the broker not to send more than IoT ever carries (a
			// message plus its topic and header). A conforming broker then
			// drops larger messages for this client; paho does not check
			// it on read, so limitConn (Dial) refuses a larger packet from
			// a broken or hostile peer before paho allocates it.
			if cp.Properties == nil {
				cp.Properties = &paho.ConnectProperties{}
			}
			maxPacket := uint32(MaxPacketBytes)
			cp.Properties.MaximumPacketSize = &maxPacket
			return cp, nil
		},
		AttemptConnection: func(ctx context.Context, _ autopaho.ClientConfig, _ *url.URL) (net.Conn, error) {
			return a.Dial(ctx)
		},
		OnConnectionUp: func(cm *autopaho.ConnectionManager, ca *paho.Connack) {
			a.mu.Lock()
			a.everUp = true
			a.conn++
			conn := a.conn
			if !ca.SessionPresent {
				a.subscribedInSession = false
			}
			kept := ca.SessionPresent && a.subscribedInSession
			a.mu.Unlock()
			a.event(StepConnect, fmt.Sprintf("session present=%v", ca.SessionPresent), nil)
			if kept {
				// The broker kept the session and this process saw it
				// acknowledge both subscriptions in it: the subscriptions
				// stand, and the QoS 1 messages (config included) queued
				// while we were away follow. Without a good SUBACK seen
				// (the connection dropped before it, or it was refused)
				// "session present" proves nothing, so subscribe again. A
				// process start always subscribes: subscribing is what makes
				// the broker send the retained config, which a fresh process
				// must see even if its state file is gone.
				a.event(StepSubscribe, "kept by the session", nil)
				a.markSubscribed()
				return
			}
			go a.subscribe(ctx, cm, conn)
		},
		OnConnectionDown: func() bool {
			a.mu.Lock()
			why := a.lastClientErr
			a.lastClientErr = ""
			a.mu.Unlock()
			a.event(StepDisconnect, why, nil)
			return true
		},
		OnConnectError: func(err error) {
			var ce *autopaho.ConnackError
			if errors.As(err, &ce) {
				a.event(StepConnect, "", fmt.Errorf("%w: CONNACK %s", agenterr.ErrRefused, ce.Error()))
			} else if !isDialStepError(err) {
				a.event(StepConnect, "", netpath.ClassifyTLS(a.host, err, a.cfg.Transport == TransportCertificate))
			}
		},
		ClientConfig: paho.ClientConfig{
			ClientID:          a.cfg.ThingName,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){a.received},
			OnClientError: func(err error) {
				a.mu.Lock()
				a.lastClientErr = err.Error()
				a.mu.Unlock()
			},
			OnServerDisconnect: func(d *paho.Disconnect) {
				a.mu.Lock()
				a.lastClientErr = fmt.Sprintf("server sent DISCONNECT reason 0x%02x", d.ReasonCode)
				a.mu.Unlock()
			},
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.cm = cm
	a.runCtx = ctx
	a.mu.Unlock()
	<-ctx.Done()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cm.Disconnect(dctx)
	<-cm.Done()
	return nil
}

// isDialStepError reports errors Dial already reported as events.
func isDialStepError(err error) bool {
	for _, s := range []error{agenterr.ErrBadCertificate, agenterr.ErrServerCertificate, agenterr.ErrUnreachable,
		agenterr.ErrCredentialsExpired, agenterr.ErrClockSkew, agenterr.ErrRefused} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// currentConn reports whether conn is still the live connection.
func (a *Agent) currentConn(conn uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conn == conn
}

// subscribe subscribes to the exact config topic and the thing's prefix on
// connection conn; a failure (refused SUBACK, timeout) is retried after a
// backoff for as long as conn is up, so the agent never stays connected but
// unsubscribed.
func (a *Agent) subscribe(ctx context.Context, cm *autopaho.ConnectionManager, conn uint64) {
	prefix := topics.ThingPrefix(a.cfg.CustomerID, a.cfg.ThingName)
	subs := []paho.SubscribeOptions{
		{Topic: a.ConfigTopic(), QoS: 1}, // exact: the only kind that receives the retained config
		{Topic: prefix + "/#", QoS: 1},
	}
	for n := 0; ; n++ {
		err := a.subscribeOnce(ctx, cm, subs)
		a.event(StepSubscribe, a.ConfigTopic()+" "+prefix+"/#", err)
		if err == nil {
			a.mu.Lock()
			ok := a.conn == conn
			if ok {
				a.subscribedInSession = true
			}
			a.mu.Unlock()
			if ok {
				a.markSubscribed()
			}
			return
		}
		if errors.Is(err, autopaho.ConnectionDownError) {
			return // the next connection subscribes for itself
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(Backoff(a.cfg.BackoffBase, a.cfg.BackoffMax, n)):
		}
		if !a.currentConn(conn) {
			return // a new connection subscribes for itself
		}
	}
}

// subscribeOnce sends one SUBSCRIBE and checks every reason code.
func (a *Agent) subscribeOnce(ctx context.Context, cm *autopaho.ConnectionManager, subs []paho.SubscribeOptions) error {
	sctx, cancel := context.WithTimeout(ctx, a.cfg.ConnectTimeout)
	defer cancel()
	sa, err := cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs})
	if sa == nil { // paho returns the SUBACK with an error when a reason code is a failure
		if err == nil {
			err = errors.New("no SUBACK")
		}
		return err
	}
	if len(sa.Reasons) != len(subs) {
		return fmt.Errorf("%w: SUBACK has %d reason codes for %d subscriptions", agenterr.ErrRefused, len(sa.Reasons), len(subs))
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 {
			return fmt.Errorf("%w: SUBACK refused %s with reason 0x%02x: the policy does not allow this subscription", agenterr.ErrRefused, subs[i].Topic, rc)
		}
	}
	return nil
}

// retryConfig is queued after OnConfig failed: after a backoff it
// subscribes to the exact config topic again, which makes the broker send
// the retained config again (retain handling 0), so the newest config is
// offered to OnConfig once more.
func (a *Agent) retryConfig() {
	a.mu.Lock()
	if a.configRetryPending || a.cm == nil || a.runCtx == nil {
		a.mu.Unlock()
		return
	}
	a.configRetryPending = true
	n := a.configRetries
	a.configRetries++
	cm, ctx := a.cm, a.runCtx
	a.mu.Unlock()
	go func() {
		delay := Backoff(a.cfg.BackoffBase, a.cfg.BackoffMax, n)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		// Clear before subscribing: the resent config may arrive (and fail
		// again) before the SUBACK is handled here, and must queue the
		// next retry.
		a.mu.Lock()
		a.configRetryPending = false
		a.mu.Unlock()
		err := a.subscribeOnce(ctx, cm, []paho.SubscribeOptions{{Topic: a.ConfigTopic(), QoS: 1}})
		a.event(StepSubscribe, fmt.Sprintf("%s again after a failed OnConfig (retry %d)", a.ConfigTopic(), n+1), err)
	}()
}

func (a *Agent) markSubscribed() {
	a.mu.Lock()
	a.ups++
	close(a.upCh)
	a.upCh = make(chan struct{})
	a.mu.Unlock()
}

// Subscribed returns a channel closed at the next completed subscription
// (i.e. the next time the agent is connected and subscribed), and how many
// completed so far.
func (a *Agent) Subscribed() (<-chan struct{}, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.upCh, a.ups
}

// Publish sends payload at QoS 1 to <customer>/<thing>/<subject> and waits
// for the PUBACK.
func (a *Agent) Publish(ctx context.Context, subject string, payload []byte) error {
	a.mu.Lock()
	cm := a.cm
	a.mu.Unlock()
	if cm == nil {
		return autopaho.ConnectionDownError
	}
	topic := topics.ThingPrefix(a.cfg.CustomerID, a.cfg.ThingName) + "/" + subject
	pr, err := cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	// paho returns the PUBACK together with an error for a failure code.
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("%w: PUBACK for %s has reason 0x%02x (%v): check the policy allows publishing to it", agenterr.ErrRefused, topic, pr.ReasonCode, err)
	}
	return err
}

func (a *Agent) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	if p.Topic == a.ConfigTopic() {
		a.handleConfig(p.Payload)
		return true, nil
	}
	if a.cfg.OnMessage != nil {
		a.cfg.OnMessage(Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Duplicate: p.Duplicate()})
	}
	return true, nil
}

// HandleConfig is what the agent does with a message on its config topic;
// exported for tests and for vendors that receive the envelope another way.
// It returns whether the envelope was applied.
func (a *Agent) HandleConfig(payload []byte) (bool, error) {
	if len(payload) > topics.MaxMessageBytes {
		return false, fmt.Errorf("config message is %d bytes; IoT messages are at most %d", len(payload), topics.MaxMessageBytes)
	}
	env, err := envelope.Parse(payload)
	if err != nil {
		return false, err
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if cur, _ := a.Current(); !env.Newer(cur) {
		return false, nil
	}
	if a.cfg.OnConfig != nil {
		if err := a.cfg.OnConfig(env); err != nil {
			return false, &applyError{version: env.Version, err: err}
		}
	}
	a.mu.Lock()
	a.configRetries = 0
	a.mu.Unlock()
	if err := saveState(a.cfg.StateFile, payload); err != nil {
		return false, err
	}
	a.mu.Lock()
	a.current = env
	a.mu.Unlock()
	return true, nil
}

// applyError is OnConfig's failure: the only config error worth retrying
// (a malformed or mismatched envelope stays malformed).
type applyError struct {
	version int64
	err     error
}

func (e *applyError) Error() string {
	return fmt.Sprintf("applying config version %d: %v", e.version, e.err)
}
func (e *applyError) Unwrap() error { return e.err }

func (a *Agent) handleConfig(payload []byte) {
	applied, err := a.HandleConfig(payload)
	switch {
	case err != nil:
		a.event(StepConfig, "", err)
		var ae *applyError
		if errors.As(err, &ae) {
			a.retryConfig()
		}
	case applied:
		cur, _ := a.Current()
		a.event(StepConfig, fmt.Sprintf("applied version %d sha256 %s", cur.Version, cur.SHA256), nil)
	default:
		cur, _ := a.Current()
		a.event(StepConfig, fmt.Sprintf("ignored: not newer than version %d", cur.Version), nil)
	}
}
