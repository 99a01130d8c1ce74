package deployconfig

import (
	"fmt"
	"math"
	"time"

	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/internal/deploy/capacity"
)

// Budget is the account's AWS IoT Core request rates per second that
// reconnecting agents may use, per account and region (the quotas are
// regional). Each defaults to the quota it stands for (package capacity
// cites the pages; capacity.IoTQuotasURL); an account whose Service Quotas
// show other values, or that shares them with other workloads, sets its own.
type Budget struct {
	// ConnectsPerSecond is MQTT CONNECTs per second ("Connect requests per
	// second per account"). Default capacity.DefaultConnectsPerSecond.
	ConnectsPerSecond int `json:"connectsPerSecond"`
	// SubscribesPerSecond is topic filters subscribed per second
	// ("Subscriptions per second per account"; an agent on a new session
	// subscribes three filters at worst, capacity.AgentReconnect).
	// Default capacity.DefaultSubscriptionsPerSecond.
	SubscribesPerSecond int `json:"subscribesPerSecond"`
	// CredentialsPerSecond is IoT credentials-provider calls per second.
	// Default capacity.DefaultCredentialsPerSecond.
	CredentialsPerSecond int `json:"credentialsPerSecond"`
}

// MaxBudgetPerSecond bounds each budget field.
const MaxBudgetPerSecond = 1000000

func (b *Budget) applyDefaults() {
	if b.ConnectsPerSecond == 0 {
		b.ConnectsPerSecond = capacity.DefaultConnectsPerSecond
	}
	if b.SubscribesPerSecond == 0 {
		b.SubscribesPerSecond = capacity.DefaultSubscriptionsPerSecond
	}
	if b.CredentialsPerSecond == 0 {
		b.CredentialsPerSecond = capacity.DefaultCredentialsPerSecond
	}
}

func (b *Budget) validate(bad func(string, any, string)) {
	for _, f := range []struct {
		name string
		v    int
	}{{"budget.connectsPerSecond", b.ConnectsPerSecond}, {"budget.subscribesPerSecond", b.SubscribesPerSecond}, {"budget.credentialsPerSecond", b.CredentialsPerSecond}} {
		if f.v < 1 || f.v > MaxBudgetPerSecond {
			bad(f.name, f.v, fmt.Sprintf("1..%d requests per second (the account's quota, %s)", MaxBudgetPerSecond, capacity.IoTQuotasURL))
		}
	}
}

func (b *Budget) valid() bool {
	for _, v := range []int{b.ConnectsPerSecond, b.SubscribesPerSecond, b.CredentialsPerSecond} {
		if v < 1 || v > MaxBudgetPerSecond {
			return false
		}
	}
	return true
}

// Capacity is b for package capacity.
func (b Budget) Capacity() capacity.Budget {
	return capacity.Budget{
		ConnectsPerSecond:      float64(b.ConnectsPerSecond),
		SubscriptionsPerSecond: float64(b.SubscribesPerSecond),
		CredentialsPerSecond:   float64(b.CredentialsPerSecond),
	}
}

// CapacityFleet is f for package capacity: its sizing, its expected agents,
// its one iot.data interface endpoint (constructs/network creates one per
// fleet VPC) and the agents' keep-alive.
func (c *Config) CapacityFleet(f Fleet) capacity.Fleet {
	return capacity.Fleet{
		Zones:              len(f.AvailabilityZones),
		MinTasks:           f.Relay.MinTasks,
		MaxTasks:           f.Relay.MaxTasks,
		MaxConnsPerTask:    f.Relay.MaxConnsPerTask,
		TargetConnsPerTask: f.Relay.TargetConnsPerTask,
		Agents:             f.ExpectedAgents,
		DataEndpoints:      1,
		KeepAliveSec:       c.Topics.MQTTKeepAliveSec,
		ReconnectSpreadSec: float64(f.AgentReconnectSpreadSec),
	}
}

// Rollout is fleet f's ECS deployment settings and relay drain budget,
// derived from its size and the budget (capacity.Derive). A configuration
// that passed Validate always has one.
func (c *Config) Rollout(f Fleet) (capacity.Deploy, error) {
	return capacity.Derive(c.CapacityFleet(f), c.Budget.Capacity(), capacity.AgentReconnect)
}

// checkBudget refuses a fleet whose agents cannot fit: more connections
// than its iot.data endpoint carries, more agents than its relays admit, a
// zone loss, one task killed or every rolling deployment reconnecting
// agents faster than the budget. It runs only on values that passed their own checks.
func (c *Config) checkBudget(p string, f Fleet, bad func(string, any, string)) {
	r := f.Relay
	keep := time.Duration(c.Topics.MQTTKeepAliveSec) * time.Second
	if !c.Budget.valid() || f.AgentReconnectSpreadSec < 1 || f.AgentReconnectSpreadSec > MaxAgentReconnectSpreadSec || len(f.AvailabilityZones) < 1 || r.MinTasks < 1 || r.MaxTasks < r.MinTasks || r.MaxTasks > 1000 ||
		r.MaxConnsPerTask < 1 || r.MaxConnsPerTask > 200000 || r.TargetConnsPerTask < 1 || keep < 5*time.Second || keep > timing.MaxMQTTKeepAlive {
		return
	}
	cf := c.CapacityFleet(f)
	if cf.TaskConnections() > cf.EndpointConnections() {
		bad(p+".relay.maxTasks/maxConnsPerTask", fmt.Sprintf("%d × %d = %d connections", r.MaxTasks, r.MaxConnsPerTask, cf.TaskConnections()),
			fmt.Sprintf("at most %d: the concurrent connections the fleet's one iot.data interface endpoint carries (%s, Limitations); split the agents over another fleet", cf.EndpointConnections(), capacity.IoTVPCEndpointsURL))
	}
	if f.ExpectedAgents < 1 || f.ExpectedAgents > cf.TaskConnections() {
		bad(p+".expectedAgents", f.ExpectedAgents, fmt.Sprintf("1..%d (relay.maxTasks × relay.maxConnsPerTask; default that)", cf.TaskConnections()))
		return
	}
	budget, cost := c.Budget.Capacity(), capacity.AgentReconnect
	if z := cf.ZoneLoss(); len(budget.Over(cost.At(z.PeakReconnects))) > 0 {
		rates := cost.At(z.PeakReconnects)
		bad(p+".expectedAgents", f.ExpectedAgents, fmt.Sprintf(
			"an agent count whose loss of one zone fits the budget: %.0f agents of one zone (of %d) reconnecting over one keep-alive (topics.mqttKeepAliveSec %d s) make %.0f connects/s, %.0f subscriptions/s and %.0f credential calls/s, over %s; lower it, add zones (availabilityZones) or raise %s to what Service Quotas grants",
			z.Agents, len(f.AvailabilityZones), c.Topics.MQTTKeepAliveSec, rates.Connects, rates.Subscriptions, rates.Credentials, budgetFields(budget.Over(rates)), budgetFields(budget.Over(rates))))
	}
	if k := cf.TaskKilled(); len(budget.Over(cost.At(k.PeakReconnects))) > 0 {
		rates := cost.At(k.PeakReconnects)
		bad(p+".agentReconnectSpreadSec/relay.maxConnsPerTask", fmt.Sprintf("%d/%d", f.AgentReconnectSpreadSec, r.MaxConnsPerTask), fmt.Sprintf(
			"values whose killed task fits the budget: a relay task killed without a drain cuts its %.0f agents at once, and their first reconnects spread over agentReconnectSpreadSec %d s make %.0f connects/s, %.0f subscriptions/s and %.0f credential calls/s, over %s; set your agents' --reconnect-spread and agentReconnectSpreadSec to at least %d s, lower relay.maxConnsPerTask or raise %s to what Service Quotas grants",
			k.Agents, f.AgentReconnectSpreadSec, rates.Connects, rates.Subscriptions, rates.Credentials, budgetFields(budget.Over(rates)),
			int(math.Ceil(cf.MinReconnectSpreadSec(budget, cost))), budgetFields(budget.Over(rates))))
	}
	if _, err := c.Rollout(f); err != nil {
		bad(p+".expectedAgents/relay.maxConnsPerTask", fmt.Sprintf("%d/%d", f.ExpectedAgents, r.MaxConnsPerTask), fmt.Sprintf(
			"values whose rolling deployment fits the budget (%s): %v; lower relay.maxConnsPerTask (so one task holds fewer agents) or raise budget.connectsPerSecond, budget.subscribesPerSecond and budget.credentialsPerSecond to what Service Quotas grants",
			capacity.ECSRollingURL, err))
	}
}

// budgetFields names budget dimensions as config fields.
func budgetFields(dims []string) string {
	out := ""
	for i, d := range dims {
		if i > 0 {
			out += ", "
		}
		out += "budget." + d
	}
	return out
}
