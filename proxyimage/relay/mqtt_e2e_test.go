//go:build linux

package relay_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// iotHost stands in for an account's IoT Core ATS data endpoint.
const iotHost = "abc123-ats.iot.eu-west-1.amazonaws.com"

// startBroker runs mochi-mqtt with a TLS WebSocket listener whose
// certificate is for iotHost, signed by a test CA.
func startBroker(t *testing.T) (*mqtt.Server, string, *testpki.CA) {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf(iotHost)
	if err != nil {
		t.Fatal(err)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	quiet := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	broker := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quiet})
	if err := broker.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ws := listeners.NewWebsocket(listeners.Config{ID: "wss", Address: addr,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err := broker.AddListener(ws); err != nil {
		t.Fatal(err)
	}
	go broker.Serve()
	t.Cleanup(func() { broker.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not listening: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return broker, addr, ca
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestMQTTOverWebSocketThroughRelay: an MQTT 5 client speaks TLS + WebSocket
// to the IoT-like host name, but its TCP connection goes to the relay (as
// DNS would send it to the static IPs); the relay routes by SNI to the
// broker. The client gets the retained config and a PUBACK for QoS 1.
func TestMQTTOverWebSocketThroughRelay(t *testing.T) {
	broker, brokerAddr, ca := startBroker(t)
	h := newHarness(t, "--route", iotHost+"="+brokerAddr)

	const configTopic = "customer-1/device-1/config"
	if err := broker.Publish(configTopic, []byte(`{"version":7}`), true, 1); err != nil {
		t.Fatal(err)
	}
	published := make(chan string, 1)
	broker.Subscribe("customer-1/device-1/telemetry", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		published <- string(pk.Payload)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, _ := url.Parse("wss://" + iotHost + "/mqtt")
	retained := make(chan *paho.Publish, 1)
	subscribed := make(chan error, 1)
	var relayDials atomic.Int32
	cfg := autopaho.ClientConfig{
		ServerUrls: []*url.URL{u},
		TlsCfg:     &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12},
		KeepAlive:  30,
		WebSocketCfg: &autopaho.WebSocketConfig{
			Dialer: func(_ *url.URL, tlsCfg *tls.Config) *websocket.Dialer {
				return &websocket.Dialer{
					TLSClientConfig:  tlsCfg,
					Subprotocols:     []string{"mqtt"},
					HandshakeTimeout: 10 * time.Second,
					// The name resolves to the relay: only the TCP target changes.
					NetDialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
						relayDials.Add(1)
						return (&net.Dialer{}).DialContext(ctx, "tcp", h.addr)
					},
				}
			},
		},
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              func(int) time.Duration { return 100 * time.Millisecond },
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				// Exact-topic subscription: the only kind that gets retained messages.
				_, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: configTopic, QoS: 1}}})
				subscribed <- err
			}()
		},
		ClientConfig: paho.ClientConfig{
			ClientID: "device-1",
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					select {
					case retained <- pr.Packet:
					default:
					}
					return true, nil
				},
			},
		},
	}
	cm, err := autopaho.NewConnection(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-subscribed; err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	select {
	case p := <-retained:
		if p.Topic != configTopic || string(p.Payload) != `{"version":7}` || !p.Retain {
			t.Fatalf("got %s %q retain=%v", p.Topic, p.Payload, p.Retain)
		}
	case <-ctx.Done():
		t.Fatal("no retained config message")
	}
	// QoS 1 publish: PublishViaQueue is not configured, so Publish waits for the PUBACK.
	pr, err := cm.Publish(ctx, &paho.Publish{Topic: "customer-1/device-1/telemetry", QoS: 1, Payload: []byte("t=21.5")})
	if err != nil {
		t.Fatalf("QoS 1 publish: %v", err)
	}
	if pr == nil || pr.ReasonCode != 0 {
		t.Fatalf("PUBACK reason %+v", pr)
	}
	select {
	case got := <-published:
		if got != "t=21.5" {
			t.Fatalf("broker got %q", got)
		}
	case <-ctx.Done():
		t.Fatal("broker never saw the publish")
	}
	if err := cm.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	h.waitMetric(1, "agentgate_relay_connections_total", "route", iotHost)
	h.waitMetric(1, "agentgate_relay_connections_closed_total", "route", iotHost, "copy", "buffered")
	if relayDials.Load() != 1 {
		t.Fatalf("client dialled the relay %d times", relayDials.Load())
	}
}
