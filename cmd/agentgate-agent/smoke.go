package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
)

// reporter prints one line per step: status, name, duration, detail.
type reporter struct {
	w      io.Writer
	last   time.Time
	failed bool
}

func (r *reporter) line(ok bool, step string, took time.Duration, detail string) {
	status := "ok  "
	if !ok {
		status = "FAIL"
		r.failed = true
	}
	fmt.Fprintf(r.w, "%s  %-16s %8s  %s\n", status, step, took.Round(time.Millisecond), detail)
}

// step runs f and reports it; it returns whether f succeeded.
func (r *reporter) step(name string, f func() (string, error)) bool {
	start := time.Now()
	detail, err := f()
	if err != nil {
		r.line(false, name, time.Since(start), err.Error())
		return false
	}
	r.line(true, name, time.Since(start), detail)
	r.last = time.Now()
	return true
}

// smoke runs every step once against a deployment, in the order the agent
// needs them, and stops at the first failure: later steps depend on it.
func smoke(ctx context.Context, o *options, stdout io.Writer) int {
	r := &reporter{w: stdout, last: time.Now()}
	fmt.Fprintf(stdout, "agentgate-agent smoke: thing %s of customer %s, %s via %s, %s\n", o.thing, o.customer, o.transport, relayLabel(o), proxyLabel(o))
	fmt.Fprintf(stdout, "warning: connects as %s with clean start: an agent connected as %s is disconnected and its persistent session (subscriptions, queued QoS 1 messages) discarded; use a dedicated smoke-test thing\n", o.thing, o.thing)
	defer r.result()
	cfg, ok := loadStep(r, o)
	if !ok {
		return 1
	}
	host, port := endpointHostPort(o)
	if !r.step("resolve", func() (string, error) {
		addrs, err := cfg.Dialer.Resolve(ctx, host, port)
		if err != nil {
			return "", err
		}
		if p, ok := cfg.Dialer.Proxied(host, port); ok {
			return relayLabel(o) + ": resolved by the proxy " + p.Addr(), nil
		}
		return relayLabel(o) + " → " + strings.Join(addrs, ", "), nil
	}) {
		return 1
	}
	if !r.step("tls-via-relay", func() (string, error) { return tlsCheck(ctx, cfg, host, port) }) {
		return 1
	}
	client, got, ok := connectSteps(ctx, r, o, cfg)
	if !ok {
		return 1
	}
	defer client.Disconnect(&paho.Disconnect{ReasonCode: 0})
	configTopic := topics.ConfigTopic(o.customer, o.thing)
	down := topics.DownPrefix(o.customer, o.thing) + "/#"
	if !r.step("subscribe", func() (string, error) {
		sctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		subs := []paho.SubscribeOptions{{Topic: configTopic, QoS: 1}, {Topic: down, QoS: 1}}
		sa, err := client.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs})
		if err != nil && sa == nil {
			return "", err
		}
		for i, rc := range sa.Reasons {
			if rc >= 0x80 {
				return "", fmt.Errorf("SUBACK refused %s with reason 0x%02x: the policy does not allow it", subs[i].Topic, rc)
			}
		}
		return configTopic + " (exact), " + down, nil
	}) {
		return 1
	}
	if !r.step("retained-config", func() (string, error) {
		wait := time.NewTimer(o.timeout)
		defer wait.Stop()
		for {
			select {
			case p := <-got:
				if p.Topic != configTopic {
					continue
				}
				env, err := envelope.Parse(p.Payload)
				if err != nil {
					return "", fmt.Errorf("retained message on %s is not a valid envelope: %v", configTopic, err)
				}
				return fmt.Sprintf("version %d sha256 %.12s… issued %s, %d bytes, retain=%v", env.Version, env.SHA256, env.IssuedAt, len(p.Payload), p.Retain), nil
			case <-wait.C:
				if !o.expectConfig {
					return "none within " + o.timeout.String() + " (not expected)", nil
				}
				return "", fmt.Errorf("no retained message on %s within %s: has the config publisher written one for this thing?", configTopic, o.timeout)
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
	}) {
		return 1
	}
	if o.publishSubject != "" {
		if !r.step("publish", func() (string, error) {
			if err := topics.ValidateSubject(o.publishSubject); err != nil {
				return "", fmt.Errorf("--publish: %v", err)
			}
			// An agent publishes only below up/ and never receives it back
			// (it subscribes to down/ only): the PUBACK is the proof.
			topic := topics.UpTopic(o.customer, o.thing, o.publishSubject)
			nonce := make([]byte, 8)
			rand.Read(nonce)
			payload := "agentgate smoke " + hex.EncodeToString(nonce)
			pctx, cancel := context.WithTimeout(ctx, o.timeout)
			defer cancel()
			pr, err := client.Publish(pctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
			if pr != nil && pr.ReasonCode >= 0x80 {
				return "", fmt.Errorf("PUBACK reason 0x%02x for %s: the policy does not allow publishing there", pr.ReasonCode, topic)
			}
			if err != nil {
				return "", err
			}
			return "QoS 1 to " + topic + " acknowledged", nil
		}) {
			return 1
		}
	}
	return 0
}

// result prints the final line.
func (r *reporter) result() {
	if r.failed {
		fmt.Fprintln(r.w, "result: FAIL")
	} else {
		fmt.Fprintln(r.w, "result: ok")
	}
}

// loadStep is the "load" step: the flags and files as an agent.Config.
func loadStep(r *reporter, o *options) (agent.Config, bool) {
	var cfg agent.Config
	ok := r.step("load", func() (string, error) {
		c, err := agentConfig(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			return "", err
		}
		cfg = c
		return fmt.Sprintf("certificate %s (CN %s, valid until %s)", o.certFile, c.Certificate.Leaf.Subject.CommonName,
			c.Certificate.Leaf.NotAfter.UTC().Format(time.RFC3339)), nil
	})
	return cfg, ok
}

func endpointHostPort(o *options) (string, string) {
	if h, p, err := net.SplitHostPort(o.iotEndpoint); err == nil {
		return h, p
	}
	return o.iotEndpoint, "443"
}

// connectSteps makes one connection attempt exactly as the agent does,
// reporting its events (credentials, presign, tcp, tls or tls+websocket)
// as steps, then the MQTT CONNECT with clean start. The caller
// disconnects the client and closes conn; got receives every PUBLISH.
func connectSteps(ctx context.Context, r *reporter, o *options, cfg agent.Config) (_ *paho.Client, got chan *paho.Publish, ok bool) {
	cfg.OnEvent = func(e agent.Event) {
		if e.Step == agent.StepResolve && e.Err == nil {
			return // reported before
		}
		detail := e.Detail
		if e.Err != nil {
			detail = e.Err.Error()
		}
		r.line(e.Err == nil, e.Step, e.Time.Sub(r.last), detail)
		r.last = e.Time
	}
	a, err := agent.New(cfg)
	if err != nil {
		r.line(false, "configure", 0, err.Error())
		return nil, nil, false
	}
	failedBefore := r.failed
	conn, err := a.Dial(ctx)
	if err != nil {
		if r.failed == failedBefore { // an error no event reported
			r.line(false, "dial", time.Since(r.last), err.Error())
		}
		return nil, nil, false
	}
	got = make(chan *paho.Publish, 16)
	client := paho.NewClient(paho.ClientConfig{
		ClientID: o.thing,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case got <- pr.Packet:
			default:
			}
			return true, nil
		}},
	})
	if !r.step("mqtt-connect", func() (string, error) {
		cctx, cancel := context.WithTimeout(ctx, o.connectTO)
		defer cancel()
		// Clean start, session expiry 0: no session of its own is left
		// behind, but clean start also discards the session an agent with
		// this client ID had (hence the warning line the callers print).
		ca, err := client.Connect(cctx, &paho.Connect{ClientID: o.thing, CleanStart: true, KeepAlive: uint16(o.keepAlive / time.Second)})
		if err != nil {
			return "", fmt.Errorf("%v (IoT refuses a client ID other than the thing name, and closes an older connection with the same one)", err)
		}
		return fmt.Sprintf("CONNACK reason 0x%02x, client ID %s", ca.ReasonCode, o.thing), nil
	}) {
		conn.Close()
		return nil, nil, false
	}
	return client, got, true
}

func relayLabel(o *options) string {
	if o.relayName == "" {
		return "direct (no relay)"
	}
	return o.relayName + ":" + o.relayPort
}

// tlsCheck makes a TLS handshake with the IoT host through the relay and
// verifies its certificate: it proves the relay routes the name and nothing
// intercepts TLS, before any credential is involved.
func tlsCheck(ctx context.Context, cfg agent.Config, host, port string) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	raw, err := cfg.Dialer.DialContext(dctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return "", err
	}
	defer raw.Close()
	tc := &tls.Config{RootCAs: cfg.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12}
	if cfg.Transport == agent.TransportCertificate {
		tc.Certificates = []tls.Certificate{cfg.Certificate}
		tc.NextProtos = []string{agent.ALPNCertificate}
	}
	c := tls.Client(raw, tc)
	if err := c.HandshakeContext(dctx); err != nil {
		return "", fmt.Errorf("TLS with %s via %s: %w", host, raw.RemoteAddr(), cfg.Dialer.ClassifyTLS(host, err, cfg.Transport == agent.TransportCertificate))
	}
	st := c.ConnectionState()
	return fmt.Sprintf("%s via %s, certificate for %s verified (issuer %q)", tls.VersionName(st.Version), raw.RemoteAddr(),
		host, st.PeerCertificates[0].Issuer.CommonName), nil
}
