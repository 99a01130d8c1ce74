// Package netpath is how the agent reaches AWS through the relay: it resolves
// the agents' DNS name (the static IPs), dials every address it returns in
// order until one accepts, and leaves TLS — with the real AWS host name as
// server name — to the caller. The relay routes by that server name, so one
// address serves the IoT data endpoint, the credentials provider and S3.
package netpath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
)

// IoTCertificateALPN is the ALPN protocol AWS IoT Core needs for MQTT
// with X.509 client certificates on port 443 (AWS IoT developer guide,
// "Protocols, port mappings, and authentication",
// https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html). The
// relay reads it from the ClientHello; every certificate-path client
// (agent.ALPNCertificate, agent/enroll) offers it.
const IoTCertificateALPN = "x-amzn-mqtt-ca"

// DefaultDialTimeout bounds one TCP connect to one address.
const DefaultDialTimeout = 5 * time.Second

// Dialer connects to the relay instead of the address it is asked for. The
// zero value dials the requested address directly (no relay).
type Dialer struct {
	// RelayName is the agents' DNS name (weighted or multivalue records of
	// the static IPs). Empty: dial the requested host itself.
	RelayName string
	// RelayPort is the relay's port; empty means the requested port (443).
	RelayPort string
	// Resolver resolves RelayName; nil uses net.DefaultResolver.
	Resolver *net.Resolver
	// Timeout bounds each TCP connect; 0 means DefaultDialTimeout.
	Timeout time.Duration
	// OnDial, if set, is told about every TCP connect attempt: the address
	// and its error (nil when it connected). Through a proxy the address
	// reads "target via proxy host:port".
	OnDial func(addr string, err error)
	// Proxy, if set, is an explicit HTTP proxy: connections to hosts it
	// applies to (not in its NoProxy list) are tunnelled through it with
	// CONNECT to RelayName:RelayPort (or the requested host), which the
	// proxy resolves.
	Proxy *Proxy
}

// target is the host and port a request for host:port connects to: the
// relay's name and port, or the host itself without a relay.
func (d *Dialer) target(host, port string) (string, string) {
	if d.RelayName == "" {
		return host, port
	}
	if d.RelayPort != "" {
		port = d.RelayPort
	}
	return d.RelayName, port
}

// Proxied reports whether a request for host:port goes through the proxy,
// and returns the proxy.
func (d *Dialer) Proxied(host, port string) (*Proxy, bool) {
	if d == nil {
		return nil, false
	}
	name, port := d.target(host, port)
	if !d.Proxy.Applies(name, port) {
		return nil, false
	}
	return d.Proxy, true
}

// Resolve returns the addresses DialContext would try for a request to port,
// in the order it would try them. Through a proxy that is the one target
// name and port, unresolved: the proxy resolves it.
func (d *Dialer) Resolve(ctx context.Context, host, port string) ([]string, error) {
	name, port := d.target(host, port)
	if d.Proxy.Applies(name, port) {
		return []string{net.JoinHostPort(name, port)}, nil
	}
	return d.lookup(ctx, name, port)
}

func (d *Dialer) lookup(ctx context.Context, name, port string) ([]string, error) {
	if ip := net.ParseIP(name); ip != nil {
		return []string{net.JoinHostPort(name, port)}, nil
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupIPAddr(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: resolving %s: %v", agenterr.ErrUnreachable, name, err)
	}
	var addrs []string
	for _, ip := range ips {
		// The relay's static IPs are IPv4 (NLB EIPs); an AAAA answer is
		// still tried, after them, in the resolver's order.
		if ip.IP.To4() != nil {
			addrs = append(addrs, net.JoinHostPort(ip.IP.String(), port))
		}
	}
	for _, ip := range ips {
		if ip.IP.To4() == nil {
			addrs = append(addrs, net.JoinHostPort(ip.IP.String(), port))
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s resolved to no addresses", agenterr.ErrUnreachable, name)
	}
	return addrs, nil
}

// DialContext connects to the first address of the relay that accepts, trying
// each once in order. addr is the real destination ("host:port"), used for
// its port when RelayPort is empty and as the destination when RelayName is.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netpath: %w", err)
	}
	addrs, err := d.Resolve(ctx, host, port)
	if err != nil {
		return nil, err
	}
	return d.DialAddrs(ctx, network, addr, addrs)
}

// DialAddrs is DialContext with the addresses already resolved (by
// Resolve), so a caller that reports the resolution does not resolve twice.
func (d *Dialer) DialAddrs(ctx context.Context, network, addr string, addrs []string) (net.Conn, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if p, ok := d.Proxied(host, port); ok {
			return d.dialProxy(ctx, p, timeout, addrs)
		}
	}
	var errs []string
	for _, a := range addrs {
		nd := net.Dialer{Timeout: timeout}
		c, err := nd.DialContext(ctx, network, a)
		if d.OnDial != nil {
			d.OnDial(a, err)
		}
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		errs = append(errs, fmtDialErr(a, err))
	}
	via := ""
	if d.RelayName != "" {
		via = " via relay " + d.RelayName
	}
	return nil, fmt.Errorf("%w: %s%s: no address accepted a connection: %s", agenterr.ErrUnreachable, addr, via, strings.Join(errs, "; "))
}

func fmtDialErr(addr string, err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return addr + ": " + op.Err.Error()
	}
	return addr + ": " + err.Error()
}

// dialProxy opens a tunnel to the first of addrs the proxy connects. A
// proxy that is unreachable or wants other credentials is the same for
// every address: that ends the attempt at once.
func (d *Dialer) dialProxy(ctx context.Context, p *Proxy, timeout time.Duration, addrs []string) (net.Conn, error) {
	var last error
	for _, a := range addrs {
		c, err := p.Dial(ctx, timeout, a)
		if d.OnDial != nil {
			d.OnDial(a+" via proxy "+p.Addr(), err)
		}
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		last = err
		if errors.Is(err, agenterr.ErrProxyUnreachable) || errors.Is(err, agenterr.ErrProxyAuth) {
			break
		}
	}
	return nil, last
}
