// Package deployconfig is agentgate's one typed deployment configuration:
// which fleets exist (account, region, zones, static IPs, sizing), the agents'
// DNS name and hosted zone, identity settings and the topic layout. It is
// loaded and validated once, before any construct is created, so a wrong
// value fails synth with a message naming the field, the bad value and what
// is allowed.
//
// The file is JSON in UTF-8, read strictly: a key not spelled exactly as
// documented (case included, as plain text without escape sequences) is an
// error, as are duplicate keys, trailing commas, null and values of the
// wrong type, so a typo never falls back to a default silently; a file in
// another encoding (UTF-16, say) is named as such. Every problem in a file is reported at once, each with its line,
// column and JSON path (see DecodeError). See agentgate.example.json at the
// repository root and the configuration reference in README.md.
package deployconfig

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/emailaddr"
	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/rolealias"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/contract/topics"
)

// MaxFileBytes bounds the configuration file; a larger file is refused.
const MaxFileBytes = 1 << 20

// Config is the whole deployment.
type Config struct {
	// Project prefixes every stack name, e.g. "agentgate" → "agentgate-euw1-network".
	Project string `json:"project"`
	// DNS is the agents' public name and its hosted zone.
	DNS DNS `json:"dns"`
	// Identity configures how agents are admitted.
	Identity Identity `json:"identity"`
	// Topics configures the MQTT topic layout beyond its fixed shape.
	Topics Topics `json:"topics"`
	// Fleets are the relay fleets, each in its own region; at least one.
	Fleets []Fleet `json:"fleets"`
	// Alarms says who is told when an alarm fires. Optional.
	Alarms Alarms `json:"alarms"`
	// Budget is the account's AWS IoT Core request rates reconnecting
	// agents may use; synth refuses a fleet whose rolling deploy or zone
	// loss would exceed it. Optional: defaults are the quotas (budget.go).
	Budget Budget `json:"budget"`
}

// Alarms configures alarm notifications. Every alarm of every stack
// notifies its region's KMS-encrypted alarm topic (each fleet's edge and
// control-plane topics, the DNS health-check topic) when it fires and when
// it recovers.
type Alarms struct {
	// Email lists addresses subscribed to every alarm topic: 0..MaxAlarmEmails
	// plain addresses ("ops@example.com", no display name: emailaddr.Check),
	// each listed once.
	// SNS mails each address one confirmation request per topic and
	// delivers nothing before it is confirmed. Default: none (subscribe to
	// the topics another way).
	Email []string `json:"email,omitempty"`
}

// MaxAlarmEmails bounds Alarms.Email: each address is one subscription
// resource in every stack with an alarm topic.
const MaxAlarmEmails = 10

// DNS describes the record agents resolve.
type DNS struct {
	// ZoneName is the hosted zone's domain, e.g. "example.com".
	ZoneName string `json:"zoneName"`
	// HostedZoneID is the existing public hosted zone's ID (no lookup at synth).
	HostedZoneID string `json:"hostedZoneId"`
	// RecordName is the name agents resolve; it must be inside ZoneName.
	RecordName string `json:"recordName"`
	// TTLSec is the weighted records' TTL; 1..60 (failover speed).
	TTLSec int `json:"ttlSec"`
	// HealthSNI is the TLS server name the relay answers health checks for.
	HealthSNI string `json:"healthSni"`
	// Account and Region place the global DNS stack; default: the first fleet's.
	Account string `json:"account,omitempty"`
	// Region of the DNS stack; default: the first fleet's.
	Region string `json:"region,omitempty"`
}

// Identity configures the IoT identity stack.
type Identity struct {
	// RoleAliasName is the IoT role alias agents exchange their certificate for credentials at.
	RoleAliasName string `json:"roleAliasName"`
	// CredentialDurationSec is the lifetime of credentials the alias hands out; 900..43200.
	CredentialDurationSec int `json:"credentialDurationSec"`
	// ManageIotLogging makes each fleet's identity stack own its region's
	// IoT logging configuration (AWS::IoT::Logging, one per account and
	// region) and the role IoT logs with. Set it to false when that
	// configuration belongs to someone else: agentgate then leaves it as
	// it is (and cannot create it: CloudFormation refuses a second owner).
	// Default: true.
	ManageIotLogging *bool `json:"manageIotLogging,omitempty"`
	// ManageDeviceDefenderAudit makes each fleet's identity stack own its
	// region's Device Defender audit configuration
	// (AWS::IoT::AccountAuditConfiguration, one per account and region),
	// its scheduled audit and the audit role. Set it to false when the
	// account's audit is configured elsewhere. Default: true.
	ManageDeviceDefenderAudit *bool `json:"manageDeviceDefenderAudit,omitempty"`
}

// Field names of the identity switches, as errors and preflight name them.
const (
	FieldManageIotLogging          = "identity.manageIotLogging"
	FieldManageDeviceDefenderAudit = "identity.manageDeviceDefenderAudit"
)

// ManagesIotLogging reports whether the identity stacks own IoT logging
// (ManageIotLogging, default true).
func (id Identity) ManagesIotLogging() bool {
	return id.ManageIotLogging == nil || *id.ManageIotLogging
}

// ManagesDeviceDefenderAudit reports whether the identity stacks own the
// Device Defender audit configuration (ManageDeviceDefenderAudit, default
// true).
func (id Identity) ManagesDeviceDefenderAudit() bool {
	return id.ManageDeviceDefenderAudit == nil || *id.ManageDeviceDefenderAudit
}

// Topics configures the topic layout (the shape itself is fixed by package topics).
type Topics struct {
	// ReleaseChannels are the release channels announced on agentgate/releases/<channel>.
	ReleaseChannels []string `json:"releaseChannels"`
	// MQTTKeepAliveSec is the keep-alive agents are told to use; ≤ 230.
	MQTTKeepAliveSec int `json:"mqttKeepAliveSec"`
}

// Fleet is one relay fleet with its static addresses in one account/region.
type Fleet struct {
	// Name is short and stable: it is part of stack names and logical IDs.
	Name string `json:"name"`
	// Account is the 12-digit AWS account ID; every fleet's must be the
	// same (each fleet's relays route every fleet's IoT endpoints, looked
	// up in the deploying account).
	Account string `json:"account"`
	// Region is the AWS region, e.g. "eu-west-1"; no two fleets share one
	// (their identity stacks would create the same IoT role alias and IoT
	// policy there).
	Region string `json:"region"`
	// AvailabilityZones are the zones used, in order; 2..6 names in Region.
	// They are pinned here (not looked up) so synth is offline and the
	// address-to-zone mapping never moves.
	AvailabilityZones []string `json:"availabilityZones"`
	// StaticIPCount is how many Elastic IPs this fleet owns; default one per zone.
	// It must be a multiple of the zone count (the NLB takes one per zone per
	// load balancer).
	StaticIPCount int `json:"staticIpCount"`
	// Weight is this fleet's share of DNS answers; 0 = standby, 0..255.
	Weight int `json:"weight"`
	// VPCCIDR is the VPC's IPv4 block, a /16../24.
	VPCCIDR string `json:"vpcCidr"`
	// ExpectedAgents is how many agents this fleet carries, for the
	// reconnect budget (budget.go): 1..relay.maxTasks × relay.maxConnsPerTask.
	// Default: relay.minTasks × relay.targetConnsPerTask, what the fleet
	// carries at its scaling floor; set the real number.
	ExpectedAgents int `json:"expectedAgents"`
	// AgentReconnectSpreadSec is the --reconnect-spread this fleet's agents
	// run with, in seconds (the agents are configured by the vendor, not by
	// synth; this field states it so synth can check it): a relay task
	// killed outright makes its agents reconnect at about
	// relay.maxConnsPerTask / this per second (budget.go). 1..120 (the
	// reference agent's default --backoff-max caps the spread); default
	// the reference agent's default, backoff.DefaultReconnectSpread (18).
	AgentReconnectSpreadSec int `json:"agentReconnectSpreadSec"`
	// Relay sizes the relay service.
	Relay Relay `json:"relay"`
}

// Relay sizes the relay fleet of one region.
type Relay struct {
	// MinTasks is the auto-scaling floor; at least one per zone.
	MinTasks int `json:"minTasks"`
	// MaxTasks is the auto-scaling ceiling; ≥ MinTasks.
	MaxTasks int `json:"maxTasks"`
	// CPU is Fargate CPU units: 256, 512, 1024, 2048 or 4096.
	CPU int `json:"cpu"`
	// MemoryMiB must be a valid Fargate pairing for CPU.
	MemoryMiB int `json:"memoryMiB"`
	// MaxConnsPerTask caps connections per relay task (the relay's --max-conns).
	MaxConnsPerTask int `json:"maxConnsPerTask"`
	// MaxConnsPerSource caps the connections one source (an IPv4 address or
	// an IPv6 /64, e.g. a customer site's NAT address) holds on one relay
	// task (the relay's --max-conns-per-source); 1..MaxConnsPerTask. A
	// site's connections spread over the tasks of the zone behind the
	// static IP it resolved, so a site of up to about MaxConnsPerSource ×
	// (tasks in that zone) agents fits; more are refused with reason
	// source_over_cap. Default: relayspec.DefaultMaxConnsPerSource, a third
	// of MaxConnsPerTask (1000 for 3000).
	MaxConnsPerSource int `json:"maxConnsPerSource"`
	// TargetConnsPerTask is the scaling target of active flows per task; < MaxConnsPerTask.
	TargetConnsPerTask int `json:"targetConnsPerTask"`
	// IdleTimeoutSec is the relay's idle timeout; see package timing for the rule.
	IdleTimeoutSec int `json:"idleTimeoutSec"`
	// NLBIdleTimeoutSec is the NLB TCP listener's idle timeout.
	NLBIdleTimeoutSec int `json:"nlbIdleTimeoutSec"`
}

// Defaults applied to fields left at zero.
const (
	DefaultProject               = "agentgate"
	DefaultTTLSec                = 60
	DefaultRoleAliasName         = "agentgate-agent"
	DefaultCredentialDurationSec = 3600
	DefaultVPCCIDR               = "10.40.0.0/16"
	DefaultWeight                = 100
	DefaultCPU                   = 512
	DefaultMemoryMiB             = 1024
	DefaultMaxConnsPerTask       = relayspec.DefaultMaxConnsPerTask
	DefaultTargetConnsPerTask    = 2000
	// DefaultAgentReconnectSpreadSec is the reference agent's default
	// --reconnect-spread in seconds.
	DefaultAgentReconnectSpreadSec = int(backoff.DefaultReconnectSpread / time.Second)
	// MaxAgentReconnectSpreadSec bounds fleets[].agentReconnectSpreadSec:
	// the reference agent's default --backoff-max, which caps the spread.
	MaxAgentReconnectSpreadSec = 120
)

func (c *Config) applyDefaults() {
	if c.Project == "" {
		c.Project = DefaultProject
	}
	if c.DNS.TTLSec == 0 {
		c.DNS.TTLSec = DefaultTTLSec
	}
	if c.Identity.RoleAliasName == "" {
		c.Identity.RoleAliasName = DefaultRoleAliasName
	}
	if c.Identity.CredentialDurationSec == 0 {
		c.Identity.CredentialDurationSec = DefaultCredentialDurationSec
	}
	if len(c.Topics.ReleaseChannels) == 0 {
		c.Topics.ReleaseChannels = []string{topics.DefaultReleaseChannel}
	}
	if c.Topics.MQTTKeepAliveSec == 0 {
		c.Topics.MQTTKeepAliveSec = int(timing.DefaultMQTTKeepAlive / time.Second)
	}
	if len(c.Fleets) > 0 {
		if c.DNS.Account == "" {
			c.DNS.Account = c.Fleets[0].Account
		}
		if c.DNS.Region == "" {
			c.DNS.Region = c.Fleets[0].Region
		}
	}
	for i := range c.Fleets {
		f := &c.Fleets[i]
		if f.StaticIPCount == 0 {
			f.StaticIPCount = len(f.AvailabilityZones)
		}
		if f.VPCCIDR == "" {
			f.VPCCIDR = DefaultVPCCIDR
		}
		r := &f.Relay
		if r.MinTasks == 0 {
			r.MinTasks = len(f.AvailabilityZones)
		}
		if r.MaxTasks == 0 {
			r.MaxTasks = 4 * r.MinTasks
		}
		if r.CPU == 0 {
			r.CPU = DefaultCPU
		}
		if r.MemoryMiB == 0 {
			r.MemoryMiB = DefaultMemoryMiB
		}
		if r.MaxConnsPerTask == 0 {
			r.MaxConnsPerTask = DefaultMaxConnsPerTask
		}
		if r.MaxConnsPerSource == 0 {
			r.MaxConnsPerSource = relayspec.DefaultMaxConnsPerSource(r.MaxConnsPerTask)
		}
		if r.TargetConnsPerTask == 0 {
			r.TargetConnsPerTask = DefaultTargetConnsPerTask
		}
		if r.IdleTimeoutSec == 0 {
			r.IdleTimeoutSec = int(timing.DefaultRelayIdleTimeout / time.Second)
		}
		if r.NLBIdleTimeoutSec == 0 {
			r.NLBIdleTimeoutSec = int(timing.DefaultNLBIdleTimeout / time.Second)
		}
		if f.ExpectedAgents == 0 {
			f.ExpectedAgents = r.MinTasks * r.TargetConnsPerTask
		}
		if f.AgentReconnectSpreadSec == 0 {
			f.AgentReconnectSpreadSec = DefaultAgentReconnectSpreadSec
		}
	}
	c.Budget.applyDefaults()
}

// FieldError names the field, the bad value and what is allowed.
type FieldError struct {
	Field   string
	Value   any
	Allowed string
}

func (e *FieldError) Error() string {
	return e.Field + ": " + e.valueAndAllowed()
}

func (e *FieldError) valueAndAllowed() string {
	return fmt.Sprintf("%s; allowed: %s", formatValue(e.Value), e.Allowed)
}

func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case []string:
		return fmt.Sprintf("%q", v)
	default:
		return fmt.Sprint(v)
	}
}

var (
	nameRe    = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)
	projectRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	accountRe = regexp.MustCompile(`^[0-9]{12}$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-gov)?-[a-z]+-[0-9]$`)
	zoneIDRe  = regexp.MustCompile(`^Z[A-Z0-9]{1,31}$`)
)

// fargateMemory lists the memory sizes Fargate accepts per CPU setting.
var fargateMemory = map[int][2]int{ // cpu → [min, max] MiB, in 1024 steps above 2048 for cpu ≥ 1024
	256:  {512, 2048},
	512:  {1024, 4096},
	1024: {2048, 8192},
	2048: {4096, 16384},
	4096: {8192, 30720},
}

// Validate checks every rule and returns all violations, one per line.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field string, value any, allowed string) {
		errs = append(errs, &FieldError{Field: field, Value: value, Allowed: allowed})
	}
	if !projectRe.MatchString(c.Project) {
		bad("project", c.Project, "lowercase letters, digits and '-', starting with a letter, at most 20 characters")
	}
	c.DNS.validate(bad)
	c.Identity.validate(bad)
	c.Topics.validate(bad)
	c.Alarms.validate(bad)
	if len(c.Fleets) == 0 {
		bad("fleets", []string{}, "at least one fleet")
	}
	names := map[string]bool{}
	for i, f := range c.Fleets {
		p := fmt.Sprintf("fleets[%d]", i)
		if names[f.Name] {
			bad(p+".name", f.Name, "a name not used by another fleet")
		}
		names[f.Name] = true
		f.validate(p, c.Topics.MQTTKeepAliveSec, bad)
	}
	regionOf := map[string]int{}
	for i, f := range c.Fleets {
		if !accountRe.MatchString(f.Account) || !regionRe.MatchString(f.Region) {
			continue
		}
		key := f.Account + "/" + f.Region
		if j, taken := regionOf[key]; taken {
			bad(fmt.Sprintf("fleets[%d].region", i), f.Region, fmt.Sprintf("a region no other fleet uses (fleets[%d] is in %s): two fleets in one account and region cannot both deploy, since each fleet's identity stack creates the region's IoT role alias and IoT policy, both named identity.roleAliasName, and IoT refuses a second of either, whatever identity.manageIotLogging and identity.manageDeviceDefenderAudit say; give fleets[%d] more capacity instead (staticIpCount, relay.maxTasks)", j, f.Region, j))
			continue
		}
		regionOf[key] = i
	}
	for i, f := range c.Fleets {
		if i > 0 && accountRe.MatchString(f.Account) && f.Account != c.Fleets[0].Account {
			bad(fmt.Sprintf("fleets[%d].account", i), f.Account, fmt.Sprintf("the account of fleets[0] (%s): every fleet's relays route every fleet's IoT endpoints, which the edge stacks look up at deploy time with iot:DescribeEndpoint in their own account, so fleets in several accounts are not supported (dns.account may differ)", c.Fleets[0].Account))
		}
	}
	c.Budget.validate(bad)
	for i, f := range c.Fleets {
		c.checkBudget(fmt.Sprintf("fleets[%d]", i), f, bad)
	}
	if len(c.Fleets) > 0 {
		total := 0
		for _, f := range c.Fleets {
			total += f.Weight
		}
		if total == 0 {
			bad("fleets[*].weight", 0, "at least one fleet with a weight above 0 (0 marks a standby fleet)")
		}
	}
	return errors.Join(errs...)
}

func (d *DNS) validate(bad func(string, any, string)) {
	zone := strings.TrimSuffix(strings.ToLower(d.ZoneName), ".")
	if !isDomain(zone) {
		bad("dns.zoneName", d.ZoneName, "a DNS domain such as \"example.com\"")
	}
	if !zoneIDRe.MatchString(d.HostedZoneID) {
		bad("dns.hostedZoneId", d.HostedZoneID, "a Route 53 hosted zone ID such as \"Z0123456789ABCDEFGHIJ\"")
	}
	rec := strings.TrimSuffix(strings.ToLower(d.RecordName), ".")
	if !isDomain(rec) || (rec != zone && !strings.HasSuffix(rec, "."+zone)) {
		bad("dns.recordName", d.RecordName, fmt.Sprintf("a name inside dns.zoneName %q", d.ZoneName))
	}
	if d.TTLSec < 1 || d.TTLSec > 60 {
		bad("dns.ttlSec", d.TTLSec, "1..60 seconds (agents must move off a failed IP within a minute)")
	}
	if h := strings.ToLower(d.HealthSNI); !isDomain(h) {
		bad("dns.healthSni", d.HealthSNI, "a DNS name the relay answers health checks for, such as \"health.agents.example.com\"")
	}
	if !accountRe.MatchString(d.Account) {
		bad("dns.account", d.Account, "a 12-digit AWS account ID (default: the first fleet's)")
	}
	if !regionRe.MatchString(d.Region) {
		bad("dns.region", d.Region, "an AWS region such as \"us-east-1\" (default: the first fleet's)")
	}
}

func (a *Alarms) validate(bad func(string, any, string)) {
	if len(a.Email) > MaxAlarmEmails {
		bad("alarms.email", fmt.Sprintf("%d addresses", len(a.Email)), fmt.Sprintf("at most %d addresses (each is a subscription in every stack with an alarm topic)", MaxAlarmEmails))
	}
	seen := map[string]bool{}
	for i, e := range a.Email {
		switch {
		case emailaddr.Check(e) != nil:
			bad(fmt.Sprintf("alarms.email[%d]", i), e, emailaddr.Rule)
		case seen[strings.ToLower(e)]:
			bad(fmt.Sprintf("alarms.email[%d]", i), e, "an address not listed twice")
		}
		seen[strings.ToLower(e)] = true
	}
}

func (id *Identity) validate(bad func(string, any, string)) {
	if !rolealias.ValidName(id.RoleAliasName) {
		bad("identity.roleAliasName", id.RoleAliasName, fmt.Sprintf("1..%d characters of %s", rolealias.MaxNameLen, rolealias.NameChars))
	}
	if id.CredentialDurationSec < rolealias.MinCredentialDurationSec || id.CredentialDurationSec > rolealias.MaxCredentialDurationSec {
		bad("identity.credentialDurationSec", id.CredentialDurationSec, fmt.Sprintf("%d..%d seconds (the IoT role alias limits)", rolealias.MinCredentialDurationSec, rolealias.MaxCredentialDurationSec))
	}
}

func (t *Topics) validate(bad func(string, any, string)) {
	seen := map[string]bool{}
	for i, ch := range t.ReleaseChannels {
		if err := topics.ValidateChannel(ch); err != nil {
			bad(fmt.Sprintf("topics.releaseChannels[%d]", i), ch, "1..64 characters of [a-zA-Z0-9_-]")
		} else if seen[ch] {
			bad(fmt.Sprintf("topics.releaseChannels[%d]", i), ch, "a channel not listed twice")
		}
		seen[ch] = true
	}
	max := int(timing.MaxMQTTKeepAlive / time.Second)
	if t.MQTTKeepAliveSec < 5 || t.MQTTKeepAliveSec > max {
		bad("topics.mqttKeepAliveSec", t.MQTTKeepAliveSec, fmt.Sprintf("5..%d seconds (the IoT data VPC endpoint caps keep-alive at %d s)", max, max))
	}
}

func (f *Fleet) validate(p string, keepAliveSec int, bad func(string, any, string)) {
	if !nameRe.MatchString(f.Name) {
		bad(p+".name", f.Name, "1..12 lowercase letters and digits, starting with a letter (it is part of stack names and logical IDs)")
	}
	if !accountRe.MatchString(f.Account) {
		bad(p+".account", f.Account, "a 12-digit AWS account ID")
	}
	if !regionRe.MatchString(f.Region) {
		bad(p+".region", f.Region, "an AWS region such as \"eu-west-1\"")
	}
	if n := len(f.AvailabilityZones); n < 2 || n > 6 {
		bad(p+".availabilityZones", f.AvailabilityZones, "2..6 zone names (the design needs at least two zones)")
	}
	seen := map[string]bool{}
	for i, az := range f.AvailabilityZones {
		if !strings.HasPrefix(az, f.Region) || len(az) != len(f.Region)+1 || az[len(az)-1] < 'a' || az[len(az)-1] > 'z' {
			bad(fmt.Sprintf("%s.availabilityZones[%d]", p, i), az, fmt.Sprintf("a zone of region %q such as %q", f.Region, f.Region+"a"))
		} else if seen[az] {
			bad(fmt.Sprintf("%s.availabilityZones[%d]", p, i), az, "a zone not listed twice")
		}
		seen[az] = true
	}
	if z := len(f.AvailabilityZones); z > 0 && (f.StaticIPCount < z || f.StaticIPCount%z != 0 || f.StaticIPCount > 4*z) {
		bad(p+".staticIpCount", f.StaticIPCount, fmt.Sprintf("a multiple of the zone count %d, from %d to %d (one address per zone per load balancer)", z, z, 4*z))
	}
	if f.Weight < 0 || f.Weight > 255 {
		bad(p+".weight", f.Weight, "0..255 (0 = standby)")
	}
	if f.AgentReconnectSpreadSec < 1 || f.AgentReconnectSpreadSec > MaxAgentReconnectSpreadSec {
		bad(p+".agentReconnectSpreadSec", f.AgentReconnectSpreadSec, fmt.Sprintf("1..%d seconds: your agents' --reconnect-spread (at most their --backoff-max, 2 min by default)", MaxAgentReconnectSpreadSec))
	}
	if !isPrivateCIDR(f.VPCCIDR) {
		bad(p+".vpcCidr", f.VPCCIDR, "a private IPv4 block from /16 to /24, such as \"10.40.0.0/16\"")
	}
	f.Relay.validate(p+".relay", len(f.AvailabilityZones), keepAliveSec, bad)
}

func (r *Relay) validate(p string, zones, keepAliveSec int, bad func(string, any, string)) {
	if r.MinTasks < zones {
		bad(p+".minTasks", r.MinTasks, fmt.Sprintf("at least one task per zone (%d)", zones))
	}
	if r.MaxTasks < r.MinTasks || r.MaxTasks > 1000 {
		bad(p+".maxTasks", r.MaxTasks, fmt.Sprintf("%d..1000 (at least minTasks)", r.MinTasks))
	}
	mem, ok := fargateMemory[r.CPU]
	if !ok {
		bad(p+".cpu", r.CPU, "256, 512, 1024, 2048 or 4096 (Fargate CPU units)")
	} else if r.MemoryMiB < mem[0] || r.MemoryMiB > mem[1] || r.MemoryMiB%1024 != 0 && !(r.CPU == 256 && r.MemoryMiB == 512) {
		bad(p+".memoryMiB", r.MemoryMiB, fmt.Sprintf("%d..%d MiB in 1024 MiB steps for cpu %d", mem[0], mem[1], r.CPU))
	}
	if r.MaxConnsPerTask < 1 || r.MaxConnsPerTask > 200000 {
		bad(p+".maxConnsPerTask", r.MaxConnsPerTask, "1..200000")
	} else if !relayspec.ValidMaxConnsPerSource(r.MaxConnsPerSource, r.MaxConnsPerTask) {
		bad(p+".maxConnsPerSource", r.MaxConnsPerSource, fmt.Sprintf("1..%d (maxConnsPerTask): the connections one source address holds on one task; a customer site behind one NAT address fits if its agents ≤ maxConnsPerSource × the tasks in one zone", r.MaxConnsPerTask))
	}
	if r.TargetConnsPerTask < 1 || r.TargetConnsPerTask >= r.MaxConnsPerTask {
		bad(p+".targetConnsPerTask", r.TargetConnsPerTask, fmt.Sprintf("1..%d (below maxConnsPerTask, so scaling starts before the cap refuses agents)", r.MaxConnsPerTask-1))
	}
	keep := time.Duration(keepAliveSec) * time.Second
	relay := time.Duration(r.IdleTimeoutSec) * time.Second
	nlb := time.Duration(r.NLBIdleTimeoutSec) * time.Second
	if err := timing.CheckRule(keep, relay, nlb); err != nil && keepAliveSec > 0 && keep <= timing.MaxMQTTKeepAlive {
		bad(p+".idleTimeoutSec/nlbIdleTimeoutSec", fmt.Sprintf("%d/%d", r.IdleTimeoutSec, r.NLBIdleTimeoutSec), "1.5 × topics.mqttKeepAliveSec < idleTimeoutSec < nlbIdleTimeoutSec ≤ 6000 ("+err.Error()+")")
	}
}

// ValidAccountID reports whether s is a 12-digit AWS account ID.
func ValidAccountID(s string) bool { return accountRe.MatchString(s) }

// isDomain: a name in a public zone, by the rule the relay and the fleet
// construct apply to the names they are given.
func isDomain(s string) bool { return relayspec.CheckDomainName(s) == nil }

// StackName returns the stack name for one of a fleet's stacks, e.g. "agentgate-euw1-network".
func (c *Config) StackName(fleet, part string) string {
	if fleet == "" {
		return c.Project + "-" + part
	}
	return c.Project + "-" + fleet + "-" + part
}
