package storm

import (
	"math"
	"time"

	"github.com/agentgate/agentgate/internal/deploy/capacity"
)

// The account-level rates a reconnect storm spends, as AWS IoT Core's
// defaults, printed next to what the stand-ins measured. The deployment's
// own budget lives in its config (the capacity report); these are only
// the documented defaults the storm report compares against.
//
// Source: AWS General Reference, "AWS IoT Core endpoints and quotas",
// Message broker limits,
// https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits
// ("Connect requests per second per account", "Subscriptions per second
// per account": each topic filter counts, so one SUBSCRIBE with the
// agent's two filters counts 2). The revision read for this lists 500 for
// both; later revisions list 3,000 connects per second in most regions,
// with lower defaults in some: which default an account has is
// unverified here (Service Quotas shows the applied value), so the report
// uses the lower, 500.
const (
	// QuotaConnectsPerSecond is "Connect requests per second per account".
	QuotaConnectsPerSecond = 500
	// QuotaSubscriptionsPerSecond is "Subscriptions per second per
	// account" (topic filters).
	QuotaSubscriptionsPerSecond = 500
	// QuotaCredentialsPerSecond is the credentials provider's account rate:
	// unverified, the revision of the quotas page read for this lists none,
	// so 0 prints as "not documented".
	QuotaCredentialsPerSecond = 0
)

// DefaultSpread is the agents' reconnect spread (agent.Config
// ReconnectSpread) a storm of agents uses unless told: the least that keeps
// the signalled relay's share within the account defaults by the
// deployment's own arithmetic (capacity.Fleet.MinReconnectSpreadSec, each
// reconnect counted at its worst for agents without self-update, as the
// storm's are: capacity.PlainAgentReconnect, capacity.DefaultBudget: 250
// reconnects/s),
// in whole seconds, at least 1 s. The share is half the fleet, rounded up:
// two relays at equal DNS weights (a run puts a few percent more or less on
// one). 5,000 agents: 2,500 / 250 = 10 s.
func DefaultSpread(agents int) time.Duration {
	share := (agents + 1) / 2
	f := capacity.Fleet{MaxConnsPerTask: share, Agents: agents}
	sec := math.Ceil(f.MinReconnectSpreadSec(capacity.DefaultBudget(), capacity.PlainAgentReconnect))
	return time.Duration(max(sec, 1)) * time.Second
}
