// Package relayspec holds the relay's externally visible contract: ports,
// paths and environment variable names that both the relay binary
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
	// EnvMaxConnsPerSource sets --max-conns-per-source, the cap on
	// concurrent connections from one source (IPv4 address or IPv6 /64);
	// 0 turns it off.
	EnvMaxConnsPerSource = EnvPrefix + "MAX_CONNS_PER_SOURCE"
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
	// DefaultMaxConnsPerSource is --max-conns-per-source when not given. It
	// is sized for a large customer site behind one NAT address, not as a
	// fraction of --max-conns: the fleet scales on admitted flows, so a
	// per-source cap below the per-task cap could refuse part of such a site
	// for good without ever triggering a scale-out. With the fleet's default
	// 3000 connections per task it never refuses before the task cap does;
	// it binds on relays run with a larger --max-conns (the relay's own
	// default, 9000: one source holds at most 45% of it). See
	// proxyimage/README.md for how to size it.
	DefaultMaxConnsPerSource = 4096
)
