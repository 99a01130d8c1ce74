package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/status"
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
const ALPNCertificate = netpath.IoTCertificateALPN

// MaxMessageBytes is IoT Core's message size limit; a larger config message
// is refused unread. It is topics.MaxMessageBytes, named here so vendors
// using this package need not import the contract for it.
const MaxMessageBytes = topics.MaxMessageBytes

// Defaults for Config fields left zero.
const (
	DefaultSessionExpiry = time.Hour
	DefaultBackoffBase   = time.Second
	// DefaultBackoffFloor is the least a reconnect waits (BackoffFloor).
	DefaultBackoffFloor = time.Second
	DefaultBackoffMax   = 2 * time.Minute
	// DefaultReconnectSpread is ReconnectSpread's default,
	// backoff.DefaultReconnectSpread (18 s; the derivation and the latency it
	// costs are documented there and in docs/agent.md).
	DefaultReconnectSpread = backoff.DefaultReconnectSpread
	DefaultConnectTimeout  = 20 * time.Second
	// DefaultCredentialsRefreshWindow: cached credentials are replaced at a
	// random point between (1-CredentialsRefreshJitterFrac) times this and
	// this long before they expire (2.5 to 5 min; credcache.go).
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
	// BackoffFloor, BackoffBase and BackoffMax shape the reconnect backoff:
	// attempt n waits BackoffFloor plus a uniformly random time in
	// [0, min(BackoffMax−BackoffFloor, BackoffBase·2ⁿ)) (Backoff). The floor
	// defaults to the least of DefaultBackoffFloor, BackoffBase and half of
	// BackoffMax; it must be below BackoffMax.
	BackoffFloor, BackoffBase, BackoffMax time.Duration
	// ReconnectSpread is the window of the first reconnect attempt after an
	// established connection is lost: it waits BackoffFloor plus a uniformly
	// random time in [0, ReconnectSpread) (backoff.FirstReconnect) instead
	// of attempt 0's [0, BackoffBase); later attempts follow the backoff
	// above. It keeps the agents of a relay task killed outright from
	// reconnecting faster than (task's connections) / ReconnectSpread per
	// second; set it to at least what the deployment's capacity report
	// prints (fleets[].agentReconnectSpreadSec). Default
	// min(DefaultReconnectSpread, BackoffMax); at most BackoffMax; set it to
	// BackoffBase for the plain backoff. The first connection of a process
	// is not delayed.
	ReconnectSpread time.Duration
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
	// ReleaseChannel is the release channel whose retained announcement
	// (topics.ReleaseTopic) OnRelease receives; default
	// topics.DefaultReleaseChannel. Only with OnRelease set.
	ReleaseChannel string
	// OnRelease, when set, subscribes to the release channel's exact topic
	// and receives each announcement's payload (unverified: hand it to an
	// agent/update Updater's Offer). It runs on the MQTT receive path.
	OnRelease func(payload []byte)
	// OnMessage receives every other message under <customer>/<thing>/down/#
	// (commands on down/command go to the handlers of HandleCommand).
	// QoS 1 messages may repeat after a reconnect; Message.Duplicate says
	// when the broker flagged a redelivery.
	OnMessage func(Message)
	// ClientVersion is the agent's own version, announced once per
	// connection on <customer>/<thing>/up/status (contract/status) so the
	// presence table shows which version each agent runs: IoT's lifecycle
	// events do not carry it. At most status.MaxVersionLen characters of
	// [0-9A-Za-z._+~-]; empty announces nothing.
	ClientVersion string
	// OnEvent observes each step of each connection attempt.
	OnEvent func(Event)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock used to sign; default time.Now.
	Now func() time.Time
}

// withDefaults validates cfg and fills the fields left zero; it also
// returns the IoT endpoint's host (the TLS server name) and port.
func (cfg Config) withDefaults() (_ Config, host, port string, err error) {
	if err := topics.ValidateCustomerID(cfg.CustomerID); err != nil {
		return cfg, "", "", err
	}
	if err := topics.ValidateThingName(cfg.ThingName); err != nil {
		return cfg, "", "", err
	}
	if cfg.Transport == "" {
		cfg.Transport = TransportWebSocket
	}
	if cfg.Transport != TransportWebSocket && cfg.Transport != TransportCertificate {
		return cfg, "", "", fmt.Errorf("transport %q: want %q or %q", cfg.Transport, TransportWebSocket, TransportCertificate)
	}
	if cfg.IoTEndpoint == "" {
		return cfg, "", "", fmt.Errorf("iot endpoint is empty")
	}
	host, port, err = net.SplitHostPort(cfg.IoTEndpoint)
	if err != nil {
		host, port = cfg.IoTEndpoint, "443"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		host = ""
	}
	if host == "" || strings.ContainsAny(cfg.IoTEndpoint, "/?#@ ") || net.ParseIP(host) != nil {
		return cfg, "", "", fmt.Errorf("iot endpoint %q must be a host name (TLS verifies it and the relay routes by it), not a URL or an IP", cfg.IoTEndpoint)
	}
	if len(cfg.Certificate.Certificate) == 0 {
		return cfg, "", "", fmt.Errorf("%w: no client certificate configured", agenterr.ErrBadCertificate)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = timing.DefaultMQTTKeepAlive
	}
	if cfg.KeepAlive < time.Second || cfg.KeepAlive > timing.MaxMQTTKeepAlive || cfg.KeepAlive%time.Second != 0 {
		return cfg, "", "", fmt.Errorf("keep-alive %s must be whole seconds in 1s..%s (the IoT VPC endpoint's cap)", cfg.KeepAlive, timing.MaxMQTTKeepAlive)
	}
	if cfg.SessionExpiry == 0 {
		cfg.SessionExpiry = DefaultSessionExpiry
	}
	if cfg.SessionExpiry < 0 || cfg.SessionExpiry > 7*24*time.Hour {
		return cfg, "", "", fmt.Errorf("session expiry %s must be within 0..168h", cfg.SessionExpiry)
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffBase < 0 || cfg.BackoffMax < cfg.BackoffBase {
		return cfg, "", "", fmt.Errorf("backoff base %s and max %s: want 0 < base ≤ max", cfg.BackoffBase, cfg.BackoffMax)
	}
	if cfg.BackoffFloor == 0 {
		cfg.BackoffFloor = min(DefaultBackoffFloor, cfg.BackoffBase, cfg.BackoffMax/2)
	}
	if cfg.BackoffFloor < 0 || cfg.BackoffFloor >= cfg.BackoffMax {
		return cfg, "", "", fmt.Errorf("backoff floor %s: want 0 < floor < max %s", cfg.BackoffFloor, cfg.BackoffMax)
	}
	if cfg.ReconnectSpread == 0 {
		cfg.ReconnectSpread = min(DefaultReconnectSpread, cfg.BackoffMax)
	}
	if cfg.ReconnectSpread < 0 || cfg.ReconnectSpread > cfg.BackoffMax {
		return cfg, "", "", fmt.Errorf("reconnect spread %s: want 0 < spread ≤ backoff max %s", cfg.ReconnectSpread, cfg.BackoffMax)
	}
	if cfg.ReleaseChannel == "" {
		cfg.ReleaseChannel = topics.DefaultReleaseChannel
	}
	if err := topics.ValidateChannel(cfg.ReleaseChannel); err != nil {
		return cfg, "", "", fmt.Errorf("release channel: %w", err)
	}
	if cfg.ClientVersion != "" {
		if err := status.ValidateVersion(cfg.ClientVersion); err != nil {
			return cfg, "", "", err
		}
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
	return cfg, host, port, nil
}
