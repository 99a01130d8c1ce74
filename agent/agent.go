// Package agent is agentgate's reference agent: the minimal correct client an
// agent vendor needs to reach AWS IoT Core through the static-IP relay.
//
// One connection attempt (Dial) does, in order:
//
//  1. WebSocket path (default): role credentials from the IoT credentials
//     provider, fetched with the device certificate and
//     x-amzn-iot-thingname (agent/credentials) and reused across
//     reconnects while valid (credcache.go), presign
//     wss://<endpoint>/mqtt with SigV4 (agent/presign);
//     certificate path: nothing to fetch, TLS with the certificate and ALPN
//     x-amzn-mqtt-ca on port 443.
//  2. Resolve the agents' DNS name and dial every address in order until one
//     accepts (agent/netpath); TLS always names the real IoT host, so the
//     relay routes by SNI and the certificate verifies end to end.
//
// Run keeps a persistent MQTT 5 session (clean start off, session expiry),
// reconnects with full-jitter exponential backoff above a floor, subscribes to the exact
// config topic (the only subscription that receives the retained config) and
// to <customer>/<thing>/down/# (it publishes only below up/), and applies a configuration only if it is newer
// than the one applied last (kept in a state file) and its SHA-256 verifies.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eclipse/paho.golang/autopaho"

	"github.com/agentgate/agentgate/agent/credentials"
	"github.com/agentgate/agentgate/agent/presign"
	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
)

// Agent is a configured reference agent.
type Agent struct {
	cfg    Config
	host   string // IoT endpoint host, the TLS server name
	port   string
	region string
	creds  *credsCache
	log    *slog.Logger
	// rnd is the backoff's random source; nil (the global one) except in
	// tests that need the same delays every run.
	rnd backoff.Source

	mu      sync.Mutex
	current envelope.Envelope
	attempt int
	cm      *autopaho.ConnectionManager
	ups     int
	everUp  bool
	// conn counts connections (CONNACKs); a subscription or config retry
	// started for one connection does not act on a later one.
	conn uint64
	// connectedAt is when connection conn came up; announced is the last
	// connection whose status was published (status.go).
	connectedAt time.Time
	announced   uint64
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
	// cmds are the command handlers and the IDs seen (command.go).
	cmds commands
}

// New validates cfg and loads the state file.
func New(cfg Config) (*Agent, error) {
	cfg, host, port, err := cfg.withDefaults()
	if err != nil {
		return nil, err
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
		a.creds = newCredsCache(p)
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
