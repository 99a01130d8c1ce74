// Package config turns the relay's command line and RELAY_* environment into
// a typed, validated Config, once, at start-up. Every error names the flag
// (and the environment variable, when the value came from there) and the
// offending value, e.g. `--route "foo": want SNI=HOST:PORT`.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/proxyimage/clienthello"
)

// ProxyMode says whether connections carry a PROXY protocol v2 header.
type ProxyMode string

// Proxy protocol modes.
const (
	// ProxyOff never looks for a header; one would be refused as non-TLS.
	ProxyOff ProxyMode = "off"
	// ProxyOptional accepts a header from a trusted peer and plain TLS from anyone.
	ProxyOptional ProxyMode = "optional"
	// ProxyRequired refuses any connection without a header from a trusted peer.
	ProxyRequired ProxyMode = "required"
)

// CopyMode selects how relayed bytes are copied.
type CopyMode string

// Copy modes.
const (
	// CopyAuto is the relay's choice: the buffered path, which measured
	// faster and cheaper per connection than splice for this workload
	// (docs/benchmarks.md).
	CopyAuto CopyMode = "auto"
	// CopyBuffered copies through a pooled user-space buffer, borrowed per
	// burst.
	CopyBuffered CopyMode = "buffered"
	// CopySplice moves bytes socket → pipe → socket with splice(2) (no copy
	// in the relay; less relay CPU per GB) and falls back to the buffer if
	// splice is impossible.
	CopySplice CopyMode = "splice"
)

// Route maps one exact TLS server name to one upstream address.
type Route struct {
	// SNI is lower-case without a trailing dot.
	SNI string
	// Upstream is HOST:PORT, dialled as given; never taken from a client.
	Upstream string
}

// Config is the relay's validated configuration.
type Config struct {
	Listen        string
	Admin         string
	Routes        []Route
	HealthSNI     string
	ProxyProtocol ProxyMode
	TrustedCIDRs  []netip.Prefix
	IdleTimeout   time.Duration
	DrainTimeout  time.Duration
	UnreadyDelay  time.Duration
	PeekTimeout   time.Duration
	DialTimeout   time.Duration
	ProbeInterval time.Duration
	MaxConns      int
	// MaxConnsPerSource caps concurrent connections per source (IPv4
	// address or IPv6 /64), 1..MaxConns; 0 disables the cap. Default:
	// relayspec.DefaultMaxConnsPerSource(MaxConns).
	MaxConnsPerSource int
	// SourceRate is new connections per second allowed per source IP; 0 disables the limit.
	SourceRate float64
	// SourceBurst is the token bucket size per source IP.
	SourceBurst int
	HTTPConnect bool
	LogLevel    slog.Level
	CopyMode    CopyMode
	// Warnings are non-fatal findings (e.g. an idle timeout below the timing rule) to log at start.
	Warnings []string
}

// Defaults for flags that have no shared constant.
const (
	DefaultPeekTimeout   = 5 * time.Second
	DefaultDialTimeout   = 5 * time.Second
	DefaultProbeInterval = 5 * time.Second
	DefaultMaxConns      = 9000
	DefaultSourceRate    = 20.0
	DefaultSourceBurst   = 200
	maxDuration          = 24 * time.Hour
	maxMaxConns          = 10_000_000
)

type flagSpec struct {
	name, def, usage string
	repeatable       bool
	boolean          bool
}

var specs = []flagSpec{
	{name: "listen", def: fmt.Sprintf(":%d", relayspec.ListenPort), usage: "agent-facing TCP address (TLS passthrough, health SNI, optional CONNECT)"},
	{name: "admin", def: fmt.Sprintf(":%d", relayspec.AdminPort), usage: "admin HTTP address: /healthz, /readyz, /metrics"},
	{name: "route", usage: "SNI=HOST:PORT, repeatable: relay TLS for this exact server name to this upstream", repeatable: true},
	{name: "health-sni", def: relayspec.DefaultHealthSNI, usage: "server name answered locally with a self-signed certificate and GET " + relayspec.HealthPath},
	{name: "proxy-protocol", def: string(ProxyOff), usage: "PROXY protocol v2 from the load balancer: off, optional or required"},
	{name: "trusted-cidr", usage: "CIDR allowed to send PROXY headers, repeatable", repeatable: true},
	{name: "idle-timeout", def: timing.DefaultRelayIdleTimeout.String(), usage: "close a relayed connection after this long without a byte either way"},
	{name: "drain-timeout", def: (relayspec.DefaultDrainTimeoutSeconds * time.Second).String(), usage: "whole budget from SIGTERM to exit, unready delay included"},
	{name: "unready-delay", def: (relayspec.DefaultUnreadyDelaySeconds * time.Second).String(), usage: "after SIGTERM, report unready and keep accepting this long before draining"},
	{name: "peek-timeout", def: DefaultPeekTimeout.String(), usage: "deadline from accept for PROXY header + ClientHello (or CONNECT request + tunnelled ClientHello)"},
	{name: "dial-timeout", def: DefaultDialTimeout.String(), usage: "upstream connect timeout"},
	{name: "probe-interval", def: DefaultProbeInterval.String(), usage: "how often upstreams are probed with a TCP dial for readiness"},
	{name: "max-conns", def: strconv.Itoa(DefaultMaxConns), usage: "maximum concurrent agent connections; 2 file descriptors each"},
	{name: relayspec.FlagMaxConnsPerSource, usage: fmt.Sprintf("maximum concurrent connections per source: IPv4 address or IPv6 /64, 1..--max-conns, or 0 = no limit (default: --max-conns / %d)", relayspec.MaxConnsPerSourceShare)},
	{name: "source-rate", def: strconv.FormatFloat(DefaultSourceRate, 'g', -1, 64), usage: "new connections per second per source: IPv4 address or IPv6 /64 (0 = no limit)"},
	{name: "source-burst", def: strconv.Itoa(DefaultSourceBurst), usage: "burst of new connections per source"},
	{name: "http-connect", def: "false", usage: "also accept HTTP CONNECT to a routed name on port 443 (the tunnelled ClientHello must name the same host)", boolean: true},
	{name: "log-level", def: "info", usage: "debug, info, warn or error"},
	{name: "copy-mode", def: string(CopyAuto), usage: "auto (= buffered), buffered or splice"},
}

// EnvName is the environment variable for a flag: --idle-timeout is RELAY_IDLE_TIMEOUT.
func EnvName(flagName string) string {
	return relayspec.EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// rawValue collects a flag's strings without interpreting them, so all
// validation (and its error messages) lives in one place.
type rawValue struct {
	spec   flagSpec
	values []string
	set    bool
	source string // flag or env var name, for messages
}

func (v *rawValue) String() string { return strings.Join(v.values, ",") }
func (v *rawValue) Set(s string) error {
	if v.spec.repeatable {
		v.values = append(v.values, s)
	} else {
		v.values = []string{s}
	}
	v.set = true
	return nil
}
func (v *rawValue) IsBoolFlag() bool { return v.spec.boolean }

// Usage writes the flag reference.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: relay [flags]; every flag is also read from RELAY_<NAME> (repeatables comma-separated)")
	for _, s := range specs {
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %s)", s.def)
		}
		fmt.Fprintf(w, "  --%s  [%s]\n      %s%s\n", s.name, EnvName(s.name), s.usage, def)
	}
}

// Parse reads args (without the program name) and, for flags not given on
// the command line, the environment through lookupEnv. It returns
// flag.ErrHelp for -h/--help.
func Parse(args []string, lookupEnv func(string) (string, bool)) (*Config, error) {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	raw := make(map[string]*rawValue, len(specs))
	for _, s := range specs {
		v := &rawValue{spec: s}
		raw[s.name] = v
		fs.Var(v, s.name, s.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("command line: %v", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("command line: unexpected argument %q (flags only)", fs.Arg(0))
	}
	for _, s := range specs {
		v := raw[s.name]
		if v.set {
			v.source = "--" + s.name
			continue
		}
		v.source = "--" + s.name
		if env, ok := lookupEnv(EnvName(s.name)); ok {
			v.source = EnvName(s.name)
			if s.repeatable {
				for _, part := range strings.Split(env, ",") {
					if part = strings.TrimSpace(part); part != "" {
						v.values = append(v.values, part)
					}
				}
			} else {
				v.values = []string{strings.TrimSpace(env)}
			}
			continue
		}
		if s.def != "" {
			v.values = []string{s.def}
		}
	}
	return build(raw)
}

func bad(v *rawValue, value, why string) error {
	return fmt.Errorf("%s %q: %s", v.source, value, why)
}

func build(raw map[string]*rawValue) (*Config, error) {
	c := &Config{}
	one := func(name string) (*rawValue, string) {
		v := raw[name]
		if len(v.values) == 0 {
			return v, ""
		}
		return v, v.values[0]
	}
	var err error
	for _, name := range []string{"listen", "admin"} {
		v, s := one(name)
		if _, _, e := net.SplitHostPort(s); e != nil || !validPort(s) {
			return nil, bad(v, s, "want [HOST]:PORT")
		}
		if name == "listen" {
			c.Listen = s
		} else {
			c.Admin = s
		}
	}
	seen := map[string]bool{}
	for _, s := range raw["route"].values {
		r, e := parseRoute(s)
		if e != nil {
			return nil, bad(raw["route"], s, e.Error())
		}
		if seen[r.SNI] {
			return nil, bad(raw["route"], s, "duplicate server name "+r.SNI)
		}
		seen[r.SNI] = true
		c.Routes = append(c.Routes, r)
	}
	if len(c.Routes) == 0 {
		return nil, fmt.Errorf("--route: at least one SNI=HOST:PORT is required (or %s)", EnvName("route"))
	}
	v, s := one("health-sni")
	c.HealthSNI = clienthello.NormalizeName(s)
	if e := relayspec.CheckServerName(c.HealthSNI); e != nil {
		return nil, bad(v, s, e.Error())
	}
	if seen[c.HealthSNI] {
		return nil, bad(v, s, "is also a --route name")
	}
	v, s = one("proxy-protocol")
	c.ProxyProtocol = ProxyMode(strings.ToLower(s))
	if !slices.Contains([]ProxyMode{ProxyOff, ProxyOptional, ProxyRequired}, c.ProxyProtocol) {
		return nil, bad(v, s, "want off, optional or required")
	}
	for _, s := range raw["trusted-cidr"].values {
		p, e := netip.ParsePrefix(s)
		if e != nil {
			return nil, bad(raw["trusted-cidr"], s, "want a CIDR such as 10.0.0.0/16")
		}
		c.TrustedCIDRs = append(c.TrustedCIDRs, p.Masked())
	}
	if c.ProxyProtocol != ProxyOff && len(c.TrustedCIDRs) == 0 {
		return nil, fmt.Errorf("--proxy-protocol %s needs at least one --trusted-cidr (headers are never trusted from anyone)", c.ProxyProtocol)
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"idle-timeout", &c.IdleTimeout}, {"drain-timeout", &c.DrainTimeout},
		{"unready-delay", &c.UnreadyDelay}, {"peek-timeout", &c.PeekTimeout},
		{"dial-timeout", &c.DialTimeout}, {"probe-interval", &c.ProbeInterval},
	}
	for _, d := range durations {
		v, s := one(d.name)
		if *d.dst, err = time.ParseDuration(s); err != nil {
			return nil, bad(v, s, "want a Go duration such as 90s")
		}
		zeroOK := d.name == "unready-delay"
		if *d.dst < 0 || (*d.dst == 0 && !zeroOK) || *d.dst > maxDuration {
			return nil, bad(v, s, "out of range (0, 24h]")
		}
	}
	if c.UnreadyDelay >= c.DrainTimeout {
		return nil, fmt.Errorf("--unready-delay %s must be shorter than --drain-timeout %s (the drain budget includes it)", c.UnreadyDelay, c.DrainTimeout)
	}
	if c.PeekTimeout >= c.IdleTimeout {
		return nil, fmt.Errorf("--peek-timeout %s must be shorter than --idle-timeout %s", c.PeekTimeout, c.IdleTimeout)
	}
	if e := timing.CheckRule(timing.MaxMQTTKeepAlive, c.IdleTimeout, timing.DefaultNLBIdleTimeout); e != nil {
		c.Warnings = append(c.Warnings, "idle timeout breaks the timing rule for agents at the maximum keep-alive: "+e.Error())
	}
	v, s = one("max-conns")
	if c.MaxConns, err = strconv.Atoi(s); err != nil || c.MaxConns < 1 || c.MaxConns > maxMaxConns {
		return nil, bad(v, s, fmt.Sprintf("want an integer in [1, %d]", maxMaxConns))
	}
	// Unset, the per-source cap is a share of the relay's own cap, the rule
	// a deployment's default follows too (relayspec.DefaultMaxConnsPerSource).
	v, s = one(relayspec.FlagMaxConnsPerSource)
	if len(v.values) == 0 {
		c.MaxConnsPerSource = relayspec.DefaultMaxConnsPerSource(c.MaxConns)
	} else if c.MaxConnsPerSource, err = strconv.Atoi(s); err != nil || c.MaxConnsPerSource != 0 && !relayspec.ValidMaxConnsPerSource(c.MaxConnsPerSource, c.MaxConns) {
		return nil, bad(v, s, fmt.Sprintf("want an integer in [1, --max-conns %d], or 0 for no limit", c.MaxConns))
	}
	v, s = one("source-rate")
	if c.SourceRate, err = strconv.ParseFloat(s, 64); err != nil || c.SourceRate < 0 || math.IsNaN(c.SourceRate) || math.IsInf(c.SourceRate, 0) || c.SourceRate > 1e6 {
		return nil, bad(v, s, "want connections per second in [0, 1e6]")
	}
	v, s = one("source-burst")
	if c.SourceBurst, err = strconv.Atoi(s); err != nil || c.SourceBurst < 1 || c.SourceBurst > 1e6 {
		return nil, bad(v, s, "want an integer in [1, 1000000]")
	}
	v, s = one("http-connect")
	if c.HTTPConnect, err = strconv.ParseBool(s); err != nil {
		return nil, bad(v, s, "want true or false")
	}
	v, s = one("log-level")
	if e := c.LogLevel.UnmarshalText([]byte(s)); e != nil {
		return nil, bad(v, s, "want debug, info, warn or error")
	}
	v, s = one("copy-mode")
	c.CopyMode = CopyMode(s)
	if c.CopyMode != CopyAuto && c.CopyMode != CopyBuffered && c.CopyMode != CopySplice {
		return nil, bad(v, s, "want auto, buffered or splice")
	}
	return c, nil
}

func validPort(hostport string) bool {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535 && p == strconv.Itoa(n)
}

func parseRoute(s string) (Route, error) {
	const want = "want SNI=HOST:PORT"
	name, upstream, ok := strings.Cut(s, "=")
	if !ok || name == "" || upstream == "" {
		return Route{}, errors.New(want)
	}
	sni := clienthello.NormalizeName(name)
	if err := relayspec.CheckServerName(sni); err != nil {
		return Route{}, fmt.Errorf("%s: server name %v", want, err)
	}
	host, port, err := net.SplitHostPort(upstream)
	if err != nil || host == "" {
		return Route{}, fmt.Errorf("%s: upstream %q is not HOST:PORT", want, upstream)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return Route{}, fmt.Errorf("%s: upstream port %q not in 1..65535", want, port)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if err := relayspec.CheckServerName(clienthello.NormalizeName(host)); err != nil {
			return Route{}, fmt.Errorf("%s: upstream host %v", want, err)
		}
	}
	return Route{SNI: sni, Upstream: upstream}, nil
}
