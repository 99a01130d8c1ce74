package relayspec

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/timing"
)

// The relay's flags that a deployment sets; each is also read from the
// environment variable EnvName(flag).
const (
	FlagListen        = "listen"
	FlagAdmin         = "admin"
	FlagRoute         = "route"
	FlagHealthSNI     = "health-sni"
	FlagProxyProtocol = "proxy-protocol"
	FlagTrustedCIDR   = "trusted-cidr"
	FlagIdleTimeout   = "idle-timeout"
	FlagDrainTimeout  = "drain-timeout"
	FlagUnreadyDelay  = "unready-delay"
	FlagMaxConns      = "max-conns"
	// FlagMaxConnsPerSource caps concurrent connections from one source
	// (IPv4 address or IPv6 /64); 0 turns the cap off.
	FlagMaxConnsPerSource = "max-conns-per-source"
)

// ProxyProtocolRequired is the only --proxy-protocol mode a fleet behind a
// Network Load Balancer runs with: every connection the NLB makes carries a
// PROXY v2 header when the target group enables it, its own health checks
// included.
const ProxyProtocolRequired = "required"

// DefaultMaxConnsPerTask is a deployed relay's --max-conns unless the fleet
// configures another.
const DefaultMaxConnsPerTask = 3000

// EnvName is the environment variable the relay reads for a flag:
// --idle-timeout is RELAY_IDLE_TIMEOUT.
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// Route is one exact server name and the upstream HOST:PORT the relay dials
// for it. Either may be a deploy-time token string; Env copies it as it is.
type Route struct {
	SNI, Upstream string
}

// Settings is what a deployment decides about one relay. Env renders it;
// the fleet construct (with CloudFormation token strings where values are
// known only at deploy time) and the local lab (with loopback addresses and
// shortened durations) both start the relay from that rendering, so a
// setting added here reaches both.
type Settings struct {
	// Listen and Admin are the agent-facing and admin [HOST]:PORT.
	Listen, Admin string
	// Routes are the exact-SNI routes, in order.
	Routes []Route
	// HealthSNI is the server name the relay answers health checks for.
	HealthSNI string
	// TrustedCIDRs may send PROXY protocol headers (the load balancers).
	TrustedCIDRs []string
	// IdleTimeout, DrainTimeout and UnreadyDelay are the relay's
	// --idle-timeout, --drain-timeout and --unready-delay.
	IdleTimeout, DrainTimeout, UnreadyDelay time.Duration
	// MaxConns is --max-conns.
	MaxConns int
	// MaxConnsPerSource is --max-conns-per-source: 1..MaxConns (see
	// ValidMaxConnsPerSource).
	MaxConnsPerSource int
}

// DefaultSettings are a deployed relay's settings before the fleet's own
// choices (routes, trusted CIDRs) and overrides are applied.
func DefaultSettings() Settings {
	return Settings{
		Listen:            fmt.Sprintf(":%d", ListenPort),
		Admin:             fmt.Sprintf(":%d", AdminPort),
		HealthSNI:         DefaultHealthSNI,
		IdleTimeout:       timing.DefaultRelayIdleTimeout,
		DrainTimeout:      DefaultDrainTimeoutSeconds * time.Second,
		UnreadyDelay:      DefaultUnreadyDelaySeconds * time.Second,
		MaxConns:          DefaultMaxConnsPerTask,
		MaxConnsPerSource: DefaultMaxConnsPerSource(DefaultMaxConnsPerTask),
	}
}

// Env renders s as the relay's RELAY_* environment. Lists are
// comma-separated (the relay splits repeatable flags on commas); durations
// in whole seconds are written as "110s" (what the fleet has always
// deployed), shorter or fractional ones in Go syntax ("350ms").
func Env(s Settings) map[string]string {
	routes := make([]string, len(s.Routes))
	for i, r := range s.Routes {
		routes[i] = r.SNI + "=" + r.Upstream
	}
	return map[string]string{
		EnvName(FlagListen):            s.Listen,
		EnvName(FlagAdmin):             s.Admin,
		EnvName(FlagRoute):             strings.Join(routes, ","),
		EnvName(FlagHealthSNI):         s.HealthSNI,
		EnvName(FlagProxyProtocol):     ProxyProtocolRequired,
		EnvName(FlagTrustedCIDR):       strings.Join(s.TrustedCIDRs, ","),
		EnvName(FlagIdleTimeout):       Duration(s.IdleTimeout),
		EnvName(FlagDrainTimeout):      Duration(s.DrainTimeout),
		EnvName(FlagUnreadyDelay):      Duration(s.UnreadyDelay),
		EnvName(FlagMaxConns):          strconv.Itoa(s.MaxConns),
		EnvName(FlagMaxConnsPerSource): strconv.Itoa(s.MaxConnsPerSource),
	}
}

// Duration writes d as the relay parses it: whole seconds as "<n>s",
// anything else in Go's duration syntax.
func Duration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return d.String()
}
