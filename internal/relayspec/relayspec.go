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
)
