package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/contract/topics"
)

// Message is one message delivered on the agent's topics.
type Message struct {
	// Topic is the full topic, <customer>/<thing>/down/<subject…>.
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
			return a.reconnectDelay(n, first)
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
			a.connectedAt = a.cfg.Now()
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
				go a.announce(ctx, conn)
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
				a.event(StepConnect, "", a.cfg.Dialer.ClassifyTLS(a.host, err, a.cfg.Transport == TransportCertificate))
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
	down := topics.DownPrefix(a.cfg.CustomerID, a.cfg.ThingName) + "/#"
	subs := []paho.SubscribeOptions{
		{Topic: a.ConfigTopic(), QoS: 1}, // exact: the only kind that receives the retained config
		// Only what is sent to the agent: its own up/ publishes never come back.
		{Topic: down, QoS: 1},
	}
	subs = append(subs, a.releaseSubscriptions()...) // release.go
	for n := 0; ; n++ {
		err := a.subscribeOnce(ctx, cm, subs)
		a.event(StepSubscribe, a.ConfigTopic()+" "+down, err)
		if err == nil {
			a.mu.Lock()
			ok := a.conn == conn
			if ok {
				a.subscribedInSession = true
			}
			a.mu.Unlock()
			if ok {
				a.markSubscribed()
				a.announce(ctx, conn)
			}
			return
		}
		if errors.Is(err, autopaho.ConnectionDownError) {
			return // the next connection subscribes for itself
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(a.backoff(n)):
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

// Publish sends payload at QoS 1 to <customer>/<thing>/up/<subject> (the
// only place an agent may publish) and waits for the PUBACK. subject is one
// or more topic levels without wildcards, e.g. "telemetry" or "status/disk".
func (a *Agent) Publish(ctx context.Context, subject string, payload []byte) error {
	return a.publish(ctx, &paho.Publish{QoS: 1, Payload: payload}, subject)
}

// publish sends p to the agent's up/<subject> topic and checks the PUBACK.
func (a *Agent) publish(ctx context.Context, p *paho.Publish, subject string) error {
	if err := topics.ValidateSubject(subject); err != nil {
		return err
	}
	if len(p.Payload) > MaxMessageBytes {
		return fmt.Errorf("payload of %d bytes exceeds IoT Core's %d-byte message limit", len(p.Payload), MaxMessageBytes)
	}
	a.mu.Lock()
	cm := a.cm
	a.mu.Unlock()
	if cm == nil {
		return autopaho.ConnectionDownError
	}
	topic := topics.UpTopic(a.cfg.CustomerID, a.cfg.ThingName, subject)
	p.Topic = topic
	pr, err := cm.Publish(ctx, p)
	// paho returns the PUBACK together with an error for a failure code.
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("%w: PUBACK for %s has reason 0x%02x (%v): check the policy allows publishing to it", agenterr.ErrRefused, topic, pr.ReasonCode, err)
	}
	return err
}

func (a *Agent) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	switch p.Topic {
	case a.ConfigTopic():
		a.handleConfig(p.Payload)
		return true, nil
	case a.commandTopic():
		a.commandReceived(p)
		return true, nil
	}
	if a.handleRelease(p.Topic, p.Payload) { // release.go
		return true, nil
	}
	if a.cfg.OnMessage != nil {
		a.cfg.OnMessage(Message{Topic: p.Topic, Payload: p.Payload, QoS: p.QoS, Retain: p.Retain, Duplicate: p.Duplicate()})
	}
	return true, nil
}
