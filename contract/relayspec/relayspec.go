// Package relayspec holds the relay's externally visible contract: ports,
// paths, environment variable names, the server-name rule and the log lines
// the fleet's metric filter matches, which both the relay binary
// (proxyimage/) and the fleet construct that deploys it rely on.
package relayspec

const (
	// ListenPort is the container port agents reach (the NLB maps 443 to it).
	ListenPort = 8443
	// AdminPort serves /healthz, /readyz and /metrics inside the VPC only.
	AdminPort = 9901
	// HealthPath is served to the health SNI on ListenPort and on AdminPort.
	HealthPath = "/healthz"
	// ReadyPath is served on AdminPort.
	ReadyPath = "/readyz"
	// MetricsPath is served on AdminPort.
	MetricsPath = "/metrics"
	// EnvPrefix prefixes every environment variable the relay reads: a flag
	// --idle-timeout is also RELAY_IDLE_TIMEOUT.
	EnvPrefix = "RELAY_"
)

// Defaults the relay uses when a flag is not given; the fleet construct uses
// them to size the ECS stop timeout and the health check.
const (
	// DefaultHealthSNI is the TLS server name the relay answers itself on
	// ListenPort. The .invalid TLD (RFC 2606) can never collide with an
	// upstream name an agent would use.
	DefaultHealthSNI = "healthcheck.agentgate.invalid"
	// DefaultUnreadyDelaySeconds is how long the relay keeps serving while it
	// reports unready after SIGTERM, so health checks (Route 53: 10 s interval
	// × 3 failures) and the NLB notice before it stops accepting.
	DefaultUnreadyDelaySeconds = 35
	// DefaultDrainTimeoutSeconds is the whole budget from SIGTERM to exit
	// (unready delay included). The ECS stop timeout must be at least this.
	DefaultDrainTimeoutSeconds = 110
)

// MaxConnsPerSourceShare is the share of a relay's connection cap one source
// (an IPv4 address or an IPv6 /64) may hold by default: one in
// MaxConnsPerSourceShare. Agentgate's customers are sites where a handful
// to a few hundred agents share one NAT address. With the fleet's default
// 3000 connections per task that is 1000 per task: a site of up to 1000
// agents fits even at the scaling floor (one task per zone; the load
// balancer sends a site's connections, spread by its flow hash, only to the
// tasks of the zone behind the static IP it resolved), with headroom above
// a few hundred, while it takes three addresses, not one, to fill a task.
// A larger site needs the cap raised (fleets[].relay.maxConnsPerSource),
// since a per-source cap that refuses part of a site does not by itself
// make the fleet scale out (it scales on admitted flows): see
// proxyimage/README.md for the sizing.
const MaxConnsPerSourceShare = 3

// DefaultMaxConnsPerSource is --max-conns-per-source for a relay capped at
// maxConns connections, when not set: maxConns / MaxConnsPerSourceShare,
// at least 1.
func DefaultMaxConnsPerSource(maxConns int) int {
	return max(1, maxConns/MaxConnsPerSourceShare)
}

// ValidMaxConnsPerSource reports whether perSource is a per-source cap a
// deployment may set for a relay capped at maxConns: 1..maxConns (a cap
// above the relay's own would never bind). The relay also takes 0, which
// turns the cap off; a deployment never does.
func ValidMaxConnsPerSource(perSource, maxConns int) bool {
	return perSource >= 1 && perSource <= maxConns
}
