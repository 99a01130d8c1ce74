// Package capacity is the arithmetic behind agentgate's reconnect budget and
// capacity report: how many agents a fleet can hold, how fast its agents
// reconnect when a rolling deploy, the loss of a zone or a killed relay task
// drops them, which ECS deployment settings, relay drain and agent reconnect
// spread keep that inside the
// account's AWS IoT Core rate quotas, and what a fleet costs a month. It is
// pure arithmetic (no CDK, no AWS SDK), so the deployment config, the stacks
// and the report command share one definition.
package capacity

import "github.com/agentgate/agentgate/contract/relayspec"

// The AWS quotas the budget defaults to. Sources (read 2026-12-04):
//
//   - [IoTQuotasURL], "AWS IoT Core endpoints and quotas", message broker
//     quotas, and the IoT developer guide's legacy limits page
//     (https://docs.aws.amazon.com/iot/latest/developerguide/limits-iot.html):
//     "Connect requests per second per account: 500" (adjustable; per
//     account and region) and "Connect requests per second per client ID:
//     1"; "Subscriptions per second per account" counts topic filters, not
//     SUBSCRIBE packets ("two MQTT SUBSCRIBE requests within a second with 3
//     subscriptions (topic filters) each" count as 6).
//   - The subscriptions-per-second value and the credentials provider's
//     rate (AssumeRoleWithCertificate, "credential provider" section of the
//     same page) were not in the stored copies read for this change:
//     DefaultSubscriptionsPerSecond and DefaultCredentialsPerSecond are
//     UNVERIFIED; set budget.subscribesPerSecond and
//     budget.credentialsPerSecond to what Service Quotas shows for the
//     account.
//   - [IoTVPCEndpointsURL], "Using AWS IoT Core with interface VPC
//     endpoints", Limitations: MQTT keep-alive capped at 230 s (see package
//     timing) and a cap on concurrent connections per iot.data interface
//     endpoint. The cap's value, DataEndpointConnections, is UNVERIFIED: the
//     stored copy did not reach that section.
const (
	// IoTQuotasURL is the AWS IoT Core quotas page the defaults cite.
	IoTQuotasURL = "https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits"
	// IoTVPCEndpointsURL is the IoT developer guide's VPC endpoints page.
	IoTVPCEndpointsURL = "https://docs.aws.amazon.com/iot/latest/developerguide/IoTCore-VPC.html"
	// ECSRollingURL is the ECS API reference's DeploymentConfiguration
	// (minimumHealthyPercent rounds up, maximumPercent rounds down and sets
	// "the deployment batch size"; the developer guide's rolling update
	// page, deployment-type-ecs.html, describes the same).
	ECSRollingURL = "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html"

	// DefaultConnectsPerSecond is IoT Core's "Connect requests per second
	// per account" (500, adjustable).
	DefaultConnectsPerSecond = 500
	// DefaultSubscriptionsPerSecond is IoT Core's "Subscriptions per second
	// per account" (topic filters per second). UNVERIFIED value.
	DefaultSubscriptionsPerSecond = 500
	// DefaultCredentialsPerSecond is the IoT credentials provider's
	// AssumeRoleWithCertificate rate per account. UNVERIFIED value.
	DefaultCredentialsPerSecond = 500
	// DataEndpointConnections is the concurrent connections one iot.data
	// interface VPC endpoint carries. UNVERIFIED value (see above).
	DataEndpointConnections = 100000
)

// Budget is the account's request rates per second that reconnecting
// agents may use (per account and region: the IoT quotas are regional).
type Budget struct {
	// ConnectsPerSecond is MQTT CONNECTs per second.
	ConnectsPerSecond float64
	// SubscriptionsPerSecond is topic filters subscribed per second.
	SubscriptionsPerSecond float64
	// CredentialsPerSecond is credentials-provider calls per second.
	CredentialsPerSecond float64
}

// DefaultBudget is the quotas above.
func DefaultBudget() Budget {
	return Budget{DefaultConnectsPerSecond, DefaultSubscriptionsPerSecond, DefaultCredentialsPerSecond}
}

// Cost is what one agent reconnect asks of the account.
type Cost struct {
	// Connects is MQTT CONNECTs.
	Connects float64
	// Subscriptions is topic filters subscribed.
	Subscriptions float64
	// CredentialCalls is credentials-provider requests.
	CredentialCalls float64
}

// AgentReconnect is the reference agent's reconnect, counted at its worst:
// one CONNECT, one SUBSCRIBE with three filters and one credentials call.
// The filters are <customer>/<thing>/config, <customer>/<thing>/down/#
// (agent/session.go) and, with self-update on (agent.Config.OnRelease, the
// CLI's --release-keys), its release channel's exact topic
// (agent/release.go). The agent subscribes each retained topic by its exact
// name (whether IoT Core delivers retained messages to a wildcard filter is
// not relied on), and the release topic is not under down/. A deployment always has a release
// channel (topics.releaseChannels defaults to one), and synth cannot know
// which agents run with release keys, so every reconnect is counted with
// it. An agent that reuses valid cached credentials makes no credentials
// call; one that does not, or whose credentials expired, makes one.
//
// "At its worst" means a new session: an agent that resumes its persistent
// session (CONNACK session present, within agent.Config.SessionExpiry, 1 h
// by default) subscribes nothing, which is what the reconnect storms
// measured (docs/benchmarks.md). The budget is checked against the worst
// case all the same: IoT Core's documentation does not promise that a
// session survives every disconnect.
var AgentReconnect = Cost{Connects: 1, Subscriptions: 3, CredentialCalls: 1}

// PlainAgentReconnect is AgentReconnect for agents without self-update:
// two filters. The reconnect storm's agents are such agents.
var PlainAgentReconnect = Cost{Connects: 1, Subscriptions: 2, CredentialCalls: 1}

// Rates are request rates per second against a Budget.
type Rates struct {
	Connects, Subscriptions, Credentials float64
}

// At is the rates reconnects agents per second cause.
func (c Cost) At(reconnects float64) Rates {
	return Rates{c.Connects * reconnects, c.Subscriptions * reconnects, c.CredentialCalls * reconnects}
}

// Over names the budget dimensions r exceeds, by their config names
// ("connectsPerSecond", "subscribesPerSecond", "credentialsPerSecond");
// none when r fits.
func (b Budget) Over(r Rates) []string {
	var out []string
	if r.Connects > b.ConnectsPerSecond {
		out = append(out, "connectsPerSecond")
	}
	if r.Subscriptions > b.SubscriptionsPerSecond {
		out = append(out, "subscribesPerSecond")
	}
	if r.Credentials > b.CredentialsPerSecond {
		out = append(out, "credentialsPerSecond")
	}
	return out
}

// MaxReconnects is the fastest reconnect rate (agents per second) b allows
// for reconnects costing c: the tightest of its three dimensions.
func (b Budget) MaxReconnects(c Cost) float64 {
	m := -1.0
	for _, d := range [][2]float64{{b.ConnectsPerSecond, c.Connects}, {b.SubscriptionsPerSecond, c.Subscriptions}, {b.CredentialsPerSecond, c.CredentialCalls}} {
		if d[1] <= 0 {
			continue
		}
		if r := d[0] / d[1]; m < 0 || r < m {
			m = r
		}
	}
	if m < 0 {
		return 0
	}
	return m
}

// Relay timing the storm arithmetic reads, from the relay's contract.
const (
	// UnreadyDelaySec is the relay's unready delay after SIGTERM: it keeps
	// serving, closes nothing.
	UnreadyDelaySec = relayspec.DefaultUnreadyDelaySeconds
	// MaxDrainTimeoutSec is the longest drain budget the fleet deploys: the
	// edge keeps an unready target's connections this long
	// (relayspec.TargetUnhealthyDrainingIntervalSeconds), below the 120 s
	// Fargate stop-timeout maximum.
	MaxDrainTimeoutSec = relayspec.TargetUnhealthyDrainingIntervalSeconds
	// CloseShare is the share of what is left of the drain budget after the
	// unready delay over which the relay spreads its closes
	// (proxyimage/relay/drain.go: 90 %, the rest for handlers to exit).
	CloseShare = 0.9
	// WaveGapSec is the shortest time between two waves of a rolling
	// deploy: a wave's replacement tasks must pass the load balancer's
	// health checks (TargetHealthyThresholdCount consecutive passes,
	// TargetHealthCheckIntervalSeconds apart) before ECS stops the next old
	// tasks. Fargate's own launch time adds to it but has no documented
	// bound (unverified), so it is left out: the rates computed here are
	// upper bounds.
	WaveGapSec = relayspec.TargetHealthyThresholdCount * relayspec.TargetHealthCheckIntervalSeconds
)
