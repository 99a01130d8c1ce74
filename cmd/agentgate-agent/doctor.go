package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// maxStaticIPs bounds --static-ips.
const maxStaticIPs = 64

func addDoctorFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.staticIPs, "static-ips", "", "the relay's static IPs, comma separated, as the vendor gave them: printed for the site's allowlist and compared with what --relay resolves to")
}

// parseStaticIPs parses --static-ips.
func parseStaticIPs(s string) ([]netip.Addr, error) {
	var ips []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--static-ips: %q is not an IP address", printableArg(f))
		}
		if len(ips) == maxStaticIPs {
			return nil, fmt.Errorf("--static-ips: more than %d addresses", maxStaticIPs)
		}
		ips = append(ips, ip.Unmap())
	}
	return ips, nil
}

// printableArg shortens and cleans an operator's argument for an error.
func printableArg(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// doctor checks each hop from this host to IoT in order, one line each,
// and prints what the site must allow: DNS of the relay's name (the static
// IPs), the proxy, TCP and TLS through the relay, the credentials provider
// and the MQTT connect. It stops at the first failure: later hops need it.
func doctor(ctx context.Context, o *options, stdout io.Writer) int {
	r := &reporter{w: stdout, last: time.Now()}
	fmt.Fprintf(stdout, "agentgate-agent doctor: thing %s of customer %s, %s via %s, %s\n", o.thing, o.customer, o.transport, relayLabel(o), proxyLabel(o))
	fmt.Fprintf(stdout, "warning: connects as %s with clean start: an agent connected as %s is disconnected and its persistent session discarded\n", o.thing, o.thing)
	defer r.result()
	static, err := parseStaticIPs(o.staticIPs)
	if err != nil {
		r.line(false, "static-ips", 0, err.Error())
		return 1
	}
	cfg, ok := loadStep(r, o)
	if !ok {
		return 1
	}
	host, port := endpointHostPort(o)
	name, namePort := host, port
	if o.relayName != "" {
		name, namePort = o.relayName, o.relayPort
	}
	_, proxied := cfg.Dialer.Proxied(host, port)

	var resolved []netip.Addr
	if !r.step("dns", func() (string, error) {
		if ip, err := netip.ParseAddr(name); err == nil {
			resolved = []netip.Addr{ip.Unmap()}
			return name + " is an IP address", nil
		}
		res := cfg.Dialer.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		ips, err := res.LookupNetIP(ctx, "ip", name)
		if err != nil && proxied {
			return fmt.Sprintf("%s does not resolve here (%v); not needed: the proxy resolves it", name, err), nil
		}
		if err != nil {
			return "", fmt.Errorf("resolving %s: %v: check the site's DNS (or use --dns-server)", name, err)
		}
		for _, ip := range ips {
			resolved = append(resolved, ip.Unmap())
		}
		var extra []string
		for _, ip := range resolved {
			if len(static) > 0 && !slices.Contains(static, ip) {
				extra = append(extra, ip.String())
			}
		}
		if len(extra) > 0 {
			return "", fmt.Errorf("%s resolves to %s, not among --static-ips %s: is --relay the vendor's name for these IPs?", name, strings.Join(extra, ", "), o.staticIPs)
		}
		return name + " → " + joinAddrs(resolved), nil
	}) {
		return 1
	}
	allow := static
	if len(allow) == 0 {
		allow = resolved
	}
	if o.relayName != "" {
		fmt.Fprintf(stdout, "allow: TCP %s to %s, the relay's static IPs %s", namePort, name, joinAddrs(allow))
		if proxied {
			fmt.Fprintf(stdout, "; through the proxy: CONNECT to %s:%s without TLS inspection", name, namePort)
		}
		fmt.Fprintln(stdout)
	}

	if p, ok := cfg.Dialer.Proxied(host, port); ok {
		target := net.JoinHostPort(name, namePort)
		if !r.step("proxy", func() (string, error) {
			dctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
			defer cancel()
			c, err := p.Dial(dctx, cfg.Dialer.Timeout, target)
			if err != nil {
				return "", err
			}
			c.Close()
			return fmt.Sprintf("%s: CONNECT %s established", p, target), nil
		}) {
			return 1
		}
	} else if o.proxy != nil {
		r.line(true, "proxy", 0, fmt.Sprintf("%s bypassed for %s (no-proxy list)", o.proxy, name))
	}
	if !r.step("tls-via-relay", func() (string, error) { return tlsCheck(ctx, cfg, host, port) }) {
		return 1
	}
	client, _, ok := connectSteps(ctx, r, o, cfg)
	if !ok {
		return 1
	}
	client.Disconnect(&paho.Disconnect{ReasonCode: 0})
	return 0
}

func joinAddrs(ips []netip.Addr) string {
	if len(ips) == 0 {
		return "(none known: pass --static-ips)"
	}
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

func proxyLabel(o *options) string {
	if o.proxy == nil {
		return "no proxy"
	}
	return "proxy " + o.proxy.String()
}
