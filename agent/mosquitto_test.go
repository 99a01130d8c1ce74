//go:build linux

package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
)

// TestCertificatePathOnMosquitto: the certificate path against a second,
// independent broker (Debian's mosquitto, TLS listener requiring a client
// certificate) through the real relay: retained config on connect, a newer
// one applied, an older one ignored, a QoS 1 message delivered.
func TestCertificatePathOnMosquitto(t *testing.T) {
	l, pub := mosquittoLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	configTopic := topics.ConfigTopic(agentlab.CustomerID, agentlab.ThingName)
	publish := func(topic string, payload []byte, retain bool) {
		t.Helper()
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Retain: retain, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	envBytes := func(version int64, doc string) []byte {
		cfg, err := envelope.CompactObject([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := envelope.Encode(cfg, version, time.UnixMilli(version))
		return b
	}
	publish(configTopic, envBytes(1000, `{"broker":"mosquitto"}`), true)

	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	cfg.Transport, cfg.CredentialsEndpoint, cfg.RoleAlias = agent.TransportCertificate, "", ""
	runAgent(t, cfg)
	rec.wait(t, "retained config from mosquitto", func() bool { return len(rec.applied) == 1 && hasEvent(rec.events, agent.StepSubscribe, "") })
	publish(configTopic, envBytes(3000, `{"broker":"mosquitto","v":3}`), true)
	rec.wait(t, "newer config", func() bool { return len(rec.applied) == 2 })
	publish(configTopic, envBytes(2000, `{"broker":"mosquitto","v":2}`), true)
	rec.wait(t, "older config ignored", func() bool { return hasEvent(rec.events, agent.StepConfig, "ignored: not newer than version 3000") })
	publish(topics.DownTopic(agentlab.CustomerID, agentlab.ThingName, "jobs"), []byte("job-1"), false)
	rec.wait(t, "a QoS 1 job", func() bool { return len(rec.messages) == 1 && string(rec.messages[0].Payload) == "job-1" })
	_, applied, _ := rec.snapshot()
	if got := versions(applied); len(got) != 2 || got[0] != 1000 || got[1] != 3000 {
		t.Fatalf("applied %v", got)
	}
	if n := metric(t, l.Relays[0], "agentgate_relay_connections_total", "route="+agentlab.IoTHost); n != 1 {
		t.Errorf("relay relayed %v connections to mosquitto, want 1", n)
	}
}

// TestRelayKilledOnMosquitto: the switch between relays against mosquitto,
// publishing QoS 1 without any pause from before the kill, through it, until
// 200 messages after the agent is back: every one arrives.
func TestRelayKilledOnMosquitto(t *testing.T) {
	l, pub := mosquittoLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	rec := newRecorder()
	cfg := labConfig(l, rec, "")
	cfg.Transport, cfg.CredentialsEndpoint, cfg.RoleAlias = agent.TransportCertificate, "", ""
	a, _ := runAgent(t, cfg)
	rec.wait(t, "connected", func() bool { return hasEvent(rec.events, agent.StepSubscribe, "") })
	jobs := topics.DownTopic(agentlab.CustomerID, agentlab.ThingName, "jobs")
	publish := func(i int) (bool, error) {
		// Waits for mosquitto's PUBACK; no pause anywhere in the switch.
		_, err := pub.Publish(ctx, &paho.Publish{Topic: jobs, QoS: 1, Payload: []byte(fmt.Sprintf("job-%04d", i))})
		return err == nil, err
	}
	// The relay the agent reached: DNS may have answered with either
	// static IP (a health check that times out on a loaded machine drops
	// one for a while), so the test kills the one carrying the connection.
	killed := activeRelay(t, l)
	sw := switchRelays(t, rec, a, publish, nil, l.Relays[killed].Kill) // mosquitto queues without limit (agentlab.StartMosquitto)
	dups := checkDeliveries(t, sw.messages, jobs, sw.total)
	if v := metric(t, l.Relays[1-killed], "agentgate_relay_connections_total", "route="+agentlab.IoTHost); v != 1 {
		t.Errorf("the other relay relayed %v connections, want 1", v)
	}
	t.Logf("%d QoS 1 messages published (%d before the kill, %d from the kill until the agent was back), %d deliveries in all, %d of them flagged duplicates",
		sw.total, sw.atKill, sw.beforeBack, len(sw.messages), dups)
}

// skipMosquittoEnv, set to 1, skips the mosquitto tests on purpose (make
// test then says so loudly: scripts/require-mosquitto.sh).
const skipMosquittoEnv = "AGENTGATE_SKIP_MOSQUITTO"

// mosquittoLab starts Debian's mosquitto behind the two real relays, and a
// control-plane publisher connected straight to the broker (disconnected at
// the end of the test). It skips when mosquitto is not installed, unless
// make test or CI requires it (agentlab.RequireMosquittoEnv), and when
// skipMosquittoEnv asks to.
func mosquittoLab(t *testing.T) (*agentlab.Lab, *paho.Client) {
	t.Helper()
	if os.Getenv(skipMosquittoEnv) == "1" {
		t.Skip(skipMosquittoEnv + "=1: skipped on purpose")
	}
	bin := agentlab.MosquittoPath()
	if bin == "" {
		if os.Getenv(agentlab.RequireMosquittoEnv) == "1" {
			t.Fatalf("mosquitto not installed but %s=1", agentlab.RequireMosquittoEnv)
		}
		t.Skip("mosquitto not installed (apt-get install mosquitto); CI sets " + agentlab.RequireMosquittoEnv + "=1")
	}
	l := startLab(t, agentlab.Options{})
	m, err := l.StartMosquitto(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StartRelays([]string{agentlab.IoTHost + "=" + m.Addr}); err != nil {
		t.Fatal(err)
	}
	pubCert, err := l.CA.ClientLeaf("control-plane")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", m.Addr, &tls.Config{Certificates: []tls.Certificate{pubCert}, RootCAs: l.CA.Pool, ServerName: agentlab.IoTHost})
	if err != nil {
		t.Fatalf("publisher TLS: %v\n%s", err, m.Logs())
	}
	pub := paho.NewClient(paho.ClientConfig{ClientID: "control-plane", Conn: packets.NewThreadSafeConn(tc)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := pub.Connect(ctx, &paho.Connect{ClientID: "control-plane", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Disconnect(&paho.Disconnect{}) })
	return l, pub
}
