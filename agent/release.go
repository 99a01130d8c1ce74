package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/contract/topics"
)

// ReleaseTopic is the exact topic of the agent's release channel.
func (a *Agent) ReleaseTopic() string { return topics.ReleaseTopic(a.cfg.ReleaseChannel) }

// releaseSubscriptions is the release channel's exact topic when OnRelease
// is set (the only kind of subscription that receives its retained
// announcement), else nothing.
func (a *Agent) releaseSubscriptions() []paho.SubscribeOptions {
	if a.cfg.OnRelease == nil {
		return nil
	}
	return []paho.SubscribeOptions{{Topic: a.ReleaseTopic(), QoS: 1}}
}

// handleRelease passes a message of the release topic to OnRelease and
// reports whether it was one.
func (a *Agent) handleRelease(topic string, payload []byte) bool {
	if a.cfg.OnRelease == nil || topic != a.ReleaseTopic() {
		return false
	}
	a.cfg.OnRelease(payload)
	return true
}

// Bounds of HTTPClient's connections.
const (
	httpTLSHandshakeTimeout   = 20 * time.Second
	httpResponseHeaderTimeout = 30 * time.Second
	httpIdleConnTimeout       = 30 * time.Second
)

// HTTPClient returns an HTTP client whose connections go through the relay
// like the agent's MQTT connection (the same Dialer, so the same static IPs
// and the same explicit proxy, if any) and verify servers with the agent's
// RootCAs: for S3 downloads of releases (the relay routes the artifacts
// bucket's host by SNI). A TLS failure is classified as the agent's own
// (netpath.Dialer.ClassifyTLS: a TLS-intercepting proxy is named). Bodies
// are not time-bounded here; callers bound them. Plain http is refused,
// requests and redirects alike: it would leave the relay (and the proxy)
// for the default dialer and carry the SigV4 Authorization header in clear.
func (a *Agent) HTTPClient() *http.Client {
	d := a.cfg.Dialer
	return &http.Client{CheckRedirect: httpsRedirectsOnly, Transport: &http.Transport{
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return nil, fmt.Errorf("plain http to %s refused: the agent's HTTP client speaks https only", addr)
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			raw, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			hctx, cancel := context.WithTimeout(ctx, httpTLSHandshakeTimeout)
			defer cancel()
			tc := tls.Client(raw, &tls.Config{RootCAs: a.cfg.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
			if err := tc.HandshakeContext(hctx); err != nil {
				raw.Close()
				return nil, d.ClassifyTLS(addr, err, false)
			}
			return tc, nil
		},
		ResponseHeaderTimeout: httpResponseHeaderTimeout,
		IdleConnTimeout:       httpIdleConnTimeout,
		MaxIdleConns:          2,
		ForceAttemptHTTP2:     false,
	}}
}

// httpsRedirectsOnly refuses a redirect away from https and, like
// net/http's default, more than 10.
func httpsRedirectsOnly(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s refused: https only", req.URL.Redacted())
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// Region is the AWS region the agent signs for (its IoT endpoint's).
func (a *Agent) Region() string { return a.region }
