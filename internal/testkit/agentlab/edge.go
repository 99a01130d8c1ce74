package agentlab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// TimeScale divides, in the lab, every interval and duration of the
// deployed edge that a test waits out: the load balancer's and Route 53's
// health-check intervals, the load balancer's unhealthy draining interval
// and the relay's unready delay and drain budget (10 s intervals become
// 100 ms). Threshold counts are kept as deployed, so
// "how many checks until a relay leaves DNS" is what it will be in AWS, and
// the unready delay still outlasts both checkers by the deployed margin.
const TimeScale = 100

// scaled is a deployed duration in lab time.
func scaled(d time.Duration) time.Duration { return d / TimeScale }

// scaledTimeout is a check timeout in lab time, never below a second: a
// busy test machine must not fail a check a real network would pass.
func scaledTimeout(d time.Duration) time.Duration { return max(scaled(d), time.Second) }

// Loopback addresses with a role in the lab.
var (
	// LoadBalancerCIDR is where the load balancer stand-in's connections to
	// the relays come from (127.0.0.1, the kernel's choice for a loopback
	// destination): the relays trust PROXY headers from it only, as a
	// deployed relay trusts its VPC.
	LoadBalancerCIDR = "127.0.0.1/32"
	// CheckerIP is the Route 53 health checkers' address, so the relay's
	// per-source limits count them apart from agents as in AWS.
	CheckerIP = netip.MustParseAddr("127.0.0.100")
)

// RelayOverrides are the only keys in which a lab relay's environment
// differs from a deployed relay's (relayspec.Env of the fleet's settings),
// each with the reason. A test in constructs/relayfleet compares the two.
var RelayOverrides = map[string]string{
	relayspec.EnvName(relayspec.FlagListen):       "a loopback port behind the load balancer stand-in instead of :8443",
	relayspec.EnvName(relayspec.FlagAdmin):        "a loopback port instead of :9901",
	relayspec.EnvName(relayspec.FlagRoute):        "the stand-ins' loopback addresses instead of VPC endpoints and public names",
	relayspec.EnvName(relayspec.FlagTrustedCIDR):  "the load balancer stand-in's address instead of the VPC CIDR",
	relayspec.EnvName(relayspec.FlagUnreadyDelay): "divided by TimeScale, like the health-check intervals it must outlast",
	relayspec.EnvName(relayspec.FlagDrainTimeout): "divided by TimeScale",
}

// RelayEnv is the environment a lab relay starts with: a deployed relay's
// (relayspec.DefaultSettings, rendered by relayspec.Env as the fleet
// construct renders it) with RelayOverrides applied.
func RelayEnv(routes []relayspec.Route) map[string]string {
	s := relayspec.DefaultSettings()
	s.Listen, s.Admin = "127.0.0.1:0", "127.0.0.1:0"
	s.Routes = routes
	s.TrustedCIDRs = []string{LoadBalancerCIDR}
	s.UnreadyDelay, s.DrainTimeout = scaled(s.UnreadyDelay), scaled(s.DrainTimeout)
	return relayspec.Env(s)
}

// parseRoutes reads SNI=HOST:PORT values.
func parseRoutes(routes []string) ([]relayspec.Route, error) {
	out := make([]relayspec.Route, 0, len(routes))
	for _, r := range routes {
		sni, up, ok := strings.Cut(r, "=")
		if !ok || sni == "" || up == "" {
			return nil, fmt.Errorf("route %q: want SNI=HOST:PORT", r)
		}
		out = append(out, relayspec.Route{SNI: sni, Upstream: up})
	}
	return out, nil
}

// targetGroup is the edge's target group in lab time: its health check,
// and connection termination for unhealthy targets off with the draining
// interval constructs/edge deploys.
func targetGroup() awsstandin.TargetGroup {
	return awsstandin.TargetGroup{
		HealthCheck: awsstandin.TargetHealthCheck{
			Interval:           scaled(relayspec.TargetHealthCheckIntervalSeconds * time.Second),
			Timeout:            scaledTimeout(relayspec.TargetHealthCheckTimeoutSeconds * time.Second),
			HealthyThreshold:   relayspec.TargetHealthyThresholdCount,
			UnhealthyThreshold: relayspec.TargetUnhealthyThresholdCount,
			Path:               relayspec.ReadyPath,
			Matcher:            relayspec.TargetHealthyHTTPCodes,
		},
		UnhealthyConnectionTermination: false,
		UnhealthyDrainingInterval:      scaled(relayspec.TargetUnhealthyDrainingIntervalSeconds * time.Second),
	}
}

// route53Checks is the agent DNS name's health checks in lab time, on port.
func route53Checks(port int) awsstandin.Route53CheckConfig {
	return awsstandin.Route53CheckConfig{
		Port:             port,
		SNI:              relayspec.DefaultHealthSNI,
		Path:             relayspec.HealthPath,
		Interval:         scaled(relayspec.DNSHealthCheckIntervalSeconds * time.Second),
		FailureThreshold: relayspec.DNSHealthCheckFailureThreshold,
		ConnectTimeout:   scaledTimeout(awsstandin.Route53ConnectTimeout),
		ResponseTimeout:  scaledTimeout(awsstandin.Route53ResponseTimeout),
		Source:           CheckerIP,
	}
}
