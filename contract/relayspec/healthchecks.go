package relayspec

// How the two health checkers in front of a fleet probe its relays. The edge
// and DNS constructs deploy these values; the local lab's load balancer and
// Route 53 stand-ins run with them (intervals shortened, counts kept).
const (
	// TargetHealthCheckIntervalSeconds is the NLB target group's
	// HealthCheckIntervalSeconds: an HTTP GET of ReadyPath on AdminPort.
	TargetHealthCheckIntervalSeconds = 10
	// TargetHealthCheckTimeoutSeconds is its HealthCheckTimeoutSeconds.
	TargetHealthCheckTimeoutSeconds = 5
	// TargetHealthyThresholdCount is its HealthyThresholdCount: consecutive
	// passes before an unhealthy target is used again.
	TargetHealthyThresholdCount = 2
	// TargetUnhealthyThresholdCount is its UnhealthyThresholdCount:
	// consecutive failures before a target is taken out of service.
	TargetUnhealthyThresholdCount = 2
	// TargetHealthyHTTPCodes is its Matcher: only 200 is healthy.
	TargetHealthyHTTPCodes = "200"
	// TargetUnhealthyDrainingIntervalSeconds is its
	// target_health_state.unhealthy.draining_interval_seconds, with
	// connection termination for unhealthy targets off: a relay that fails
	// the checks while still registered (SIGTERM outside a deployment, no
	// upstream reachable) gets no new connections but keeps its open ones
	// this long before the load balancer resets them. It is the relay's
	// drain budget, so a relay that turned unready on SIGTERM has closed
	// every connection itself, paced, before that.
	TargetUnhealthyDrainingIntervalSeconds = DefaultDrainTimeoutSeconds

	// DNSHealthCheckIntervalSeconds is the Route 53 health checks'
	// RequestInterval: HTTPS to each static IP on 443 with the health SNI,
	// GET HealthPath (answered on ListenPort).
	DNSHealthCheckIntervalSeconds = 10
	// DNSHealthCheckFailureThreshold is their FailureThreshold: consecutive
	// results that change a check's status either way.
	DNSHealthCheckFailureThreshold = 3
)
