package agentlab

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// AWSRegion is one AWS region of the lab: its IoT data and credentials
// endpoints (stand-ins in front of its own broker) and its relay fleet, one
// relay per zone behind its load balancer.
type AWSRegion struct {
	Name               string
	IoTHost, CredsHost string
	Broker             *mqtt.Server
	Creds              *awsstandin.CredentialsProvider
	Gateway            *awsstandin.IoTGateway
	// StaticIPs are the region's static addresses, one per zone; NLB
	// listens on them.
	StaticIPs []netip.Addr
	NLB       *awsstandin.NLB
	// Relays are the region's relays, one per zone, in StaticIPs order.
	Relays []*Relay
	// relayExtra is Options.RelayEnvExtra.
	relayExtra map[string]string
	// BrokerAddr is the broker's plain MQTT listener (host:port): where a
	// test's SaaS backend connects, as a backend reaches IoT Core directly
	// rather than through the agents' relays.
	BrokerAddr string
	// Telemetry is the region's telemetry rule and stream (TelemetryRule).
	Telemetry *TelemetryRule
}

// SessionStore is how many QoS 1 messages the lab's mochi brokers hold for one
// client session, sent and not yet acknowledged or queued while the client
// is away (mochi-mqtt's Capabilities.MaximumInflight and
// MaximumClientWritesPending, both set to it). A message
// for a session that already holds this many is dropped, and the publisher
// is not told: mochi counts it (Dropped) and its Server.Publish returns nil.
// AWS IoT Core drops too ("Messages are stored according to account limit.
// Messages that exceed the limit will be dropped": AWS IoT developer guide,
// MQTT, "Message traffic after reconnection to a persistent session"), so
// no path can deliver what a publisher sends faster than the broker keeps
// it: a test that publishes while its agent is away holds off while Stored
// nears this.
const SessionStore = 8192

// Stored is how many QoS 1 messages the region's broker holds for
// clientID's session (0 without a session).
func (r *AWSRegion) Stored(clientID string) int {
	cl, ok := r.Broker.Clients.Get(clientID)
	if !ok {
		return 0
	}
	return cl.State.Inflight.Len()
}

// Dropped is how many messages the region's broker dropped instead of
// keeping them for a subscriber: for a session already holding
// SessionStore, or a client with as many writes pending.
func (r *AWSRegion) Dropped() int64 {
	return atomic.LoadInt64(&r.Broker.Info.InflightDropped) + atomic.LoadInt64(&r.Broker.Info.MessagesDropped)
}

// startEndpoints starts the region's broker and its IoT and credentials
// stand-ins, with certificates from the lab's CA.
func (r *AWSRegion) startEndpoints(l *Lab, credentials time.Duration, inMemory bool) error {
	brokerAddr, err := r.startBroker(l)
	if err != nil {
		return err
	}
	r.BrokerAddr = brokerAddr
	credsCert, err := l.CA.Leaf(r.CredsHost)
	if err != nil {
		return err
	}
	if r.Creds, err = awsstandin.StartCredentialsProvider(credsCert, l.CA.Pool, RoleAlias, credentials); err != nil {
		return err
	}
	l.closers = append(l.closers, r.Creds.Close)
	iotCert, err := l.CA.Leaf(r.IoTHost)
	if err != nil {
		return err
	}
	if r.Gateway, err = awsstandin.StartIoTGateway(iotCert, l.CA.Pool, r.Creds, r.Name, brokerAddr); err != nil {
		return err
	}
	l.closers = append(l.closers, r.Gateway.Close)
	if inMemory {
		broker := r.Broker
		r.Gateway.SetBrokerDialer(func() (net.Conn, error) {
			gw, mochi := net.Pipe()
			go broker.EstablishConnection("tcp", mochi)
			return gw, nil
		})
	}
	return nil
}

// startBroker runs mochi-mqtt with a plain TCP listener on loopback (the
// gateway stand-in terminates TLS and WebSocket in front of it).
func (r *AWSRegion) startBroker(l *Lab) (string, error) {
	// mochi serves the listener it is given: no port picked, closed and
	// bound again (which another process could take in between).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumInflight, caps.MaximumClientWritesPending = SessionStore, SessionStore
	r.Broker = mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet, Capabilities: caps})
	if err := r.Broker.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return "", err
	}
	r.Telemetry = newTelemetryRule(CustomerID)
	l.closers = append(l.closers, r.Telemetry.Stream.Close)
	if err := r.Broker.AddHook(r.Telemetry, nil); err != nil {
		ln.Close()
		return "", err
	}
	if err := r.Broker.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		return "", err
	}
	go r.Broker.Serve()
	broker := r.Broker
	l.closers = append(l.closers, func() { broker.Close() })
	return addr, nil // connections queue in the bound listener until Serve accepts
}

// startRelays replaces the region's relays: one per zone, started from
// RelayEnv(routes), registered as that zone's target, healthy before it
// returns.
func (r *AWSRegion) startRelays(routes []relayspec.Route) error {
	for _, old := range r.Relays {
		old.Kill()
	}
	r.Relays = nil
	for zone := range r.StaticIPs {
		env := RelayEnv(routes)
		maps.Copy(env, r.relayExtra)
		relay, err := StartRelay(env)
		if err != nil {
			return err
		}
		r.Relays = append(r.Relays, relay)
		n := r.NLB
		relay.stopped = func() { n.TargetStopped(relay.Addr) }
		if err := n.SetTargets(zone, awsstandin.Target{Addr: relay.Addr, HealthAddr: relay.Admin}); err != nil {
			return fmt.Errorf("registering %s: %w", relay.Addr, err)
		}
	}
	for _, relay := range r.Relays {
		if err := awaitHealthy(r.NLB, relay); err != nil {
			return err
		}
	}
	return nil
}
