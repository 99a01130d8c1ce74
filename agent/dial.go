package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/eclipse/paho.golang/packets"
	"github.com/gorilla/websocket"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/agent/presign"
)

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
	return a.dialWebSocket(ctx, d)
}

// dialWebSocket is Dial's WebSocket path. The credentials come from the
// cache (reused across reconnects while valid; agent.New documents the
// refresh). When IoT refuses the upgrade for the credentials themselves
// (HTTP 401/403 that is not a clock problem: an unknown, revoked or expired
// token, a refused signature), the cache is invalidated once for those
// credentials and the attempt made once more with newly fetched ones; a
// second refusal is returned, and the reconnect backoff paces what follows.
func (a *Agent) dialWebSocket(ctx context.Context, d *netpath.Dialer) (net.Conn, error) {
	creds, err := a.retrieveCredentials(ctx)
	if err != nil {
		return nil, err
	}
	c, rejected, err := a.upgrade(ctx, d, creds)
	if !rejected || !a.CredentialsRejected(creds) {
		return c, err
	}
	a.event(StepCredentials, "IoT refused the cached credentials: invalidated, fetching new ones once", err)
	if creds, err = a.retrieveCredentials(ctx); err != nil {
		return nil, err
	}
	c, _, err = a.upgrade(ctx, d, creds)
	return c, err
}

// retrieveCredentials takes the role credentials from the cache (which
// fetches them when it holds none, or they are inside the refresh window).
func (a *Agent) retrieveCredentials(ctx context.Context) (aws.Credentials, error) {
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		a.event(StepCredentials, a.cfg.CredentialsEndpoint, err)
		return creds, err
	}
	a.event(StepCredentials, fmt.Sprintf("%s: role credentials %s valid until %s", a.cfg.CredentialsEndpoint, a.noteCredentials(creds),
		creds.Expires.UTC().Format(time.RFC3339)), nil)
	return creds, nil
}

// upgrade presigns with creds, resolves, dials and upgrades to the MQTT
// WebSocket. rejected reports that IoT refused the credentials (see
// dialWebSocket).
func (a *Agent) upgrade(ctx context.Context, d *netpath.Dialer, creds aws.Credentials) (_ net.Conn, rejected bool, _ error) {
	signHost := a.host // the Host header IoT sees: the port only when not 443
	if a.port != "443" {
		signHost = net.JoinHostPort(a.host, a.port)
	}
	signed, err := presign.URL(ctx, creds, signHost, a.region, a.cfg.Now())
	a.event(StepPresign, "wss://"+signHost+presign.Path, err)
	if err != nil {
		return nil, false, err
	}
	addrs, err := d.Resolve(ctx, a.host, a.port)
	a.event(StepResolve, strings.Join(addrs, ","), err)
	if err != nil {
		return nil, false, err
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
		rejected = resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized) &&
			!errors.Is(err, agenterr.ErrClockSkew)
		return nil, rejected, err
	}
	if ws.Subprotocol() != "mqtt" {
		ws.Close()
		err := fmt.Errorf("%w: %s accepted the WebSocket without subprotocol mqtt", agenterr.ErrRefused, a.host)
		a.event(StepUpgrade, a.host, err)
		return nil, false, err
	}
	a.event(StepUpgrade, a.host, nil)
	return packets.NewThreadSafeConn(newLimitConn(newWSConn(ws), MaxPacketBytes)), false, nil
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
		err = d.ClassifyTLS(a.host, err, true)
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
		return a.cfg.Dialer.ClassifyTLS(a.host, err, false) // the WebSocket path sends no client certificate
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

// isDialStepError reports errors Dial already reported as events.
func isDialStepError(err error) bool {
	for _, s := range []error{agenterr.ErrBadCertificate, agenterr.ErrServerCertificate, agenterr.ErrUnreachable,
		agenterr.ErrCredentialsExpired, agenterr.ErrClockSkew, agenterr.ErrRefused, agenterr.ErrProxyUnreachable,
		agenterr.ErrProxyAuth, agenterr.ErrProxyDenied, agenterr.ErrProxyProtocol, agenterr.ErrProxyIntercepts} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
