package preflight

import (
	"fmt"
	"strings"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// DNSAlarmsRegion is where the DNS alarms stack always deploys: Route 53
// health-check metrics exist only in us-east-1 (stacks.Build places it
// there), so that environment must be bootstrapped whatever the config says.
const DNSAlarmsRegion = "us-east-1"

// Stack name parts preflight looks up (see stacks.Build).
const (
	addressesStack = "addresses"
	networkStack   = "network"
	identityStack  = "identity"
)

// NATGateways is how many NAT gateways, each holding one Elastic IP, the
// fleet's network stack creates: the network construct's default of one
// per zone (stacks.NewNetworkStack does not override it). The CDK contract
// test synthesizes the network stack and counts them.
func NATGateways(f deployconfig.Fleet) int { return len(f.AvailabilityZones) }

// ElasticIPs is how many Elastic IPs a fleet allocates: its static
// addresses plus one per NAT gateway.
func ElasticIPs(f deployconfig.Fleet) int { return f.StaticIPCount + NATGateways(f) }

// fleetRef is a fleet with its index in the configuration (for field names
// such as fleets[1].availabilityZones in fixes).
type fleetRef struct {
	index int
	deployconfig.Fleet
}

// region is one account/region that holds fleets.
type region struct {
	account, name string
	fleets        []fleetRef
}

func (r region) scope() string {
	names := make([]string, len(r.fleets))
	for i, f := range r.fleets {
		names[i] = f.Name
	}
	word := "fleet"
	if len(names) > 1 {
		word = "fleets"
	}
	return fmt.Sprintf("%s/%s (%s %s)", r.account, r.name, word, strings.Join(names, ", "))
}

// env is one account/region the CDK deploys stacks to, with what lives there.
type env struct {
	account, region string
	purposes        []string
}

func (e env) scope() string {
	return fmt.Sprintf("%s/%s (%s)", e.account, e.region, strings.Join(e.purposes, "; "))
}

// plan is what one run checks, derived from the configuration alone.
type plan struct {
	cfg     *deployconfig.Config
	regions []region // fleet account/regions, in configuration order
	envs    []env    // every environment a stack deploys to
}

func newPlan(cfg *deployconfig.Config) plan {
	p := plan{cfg: cfg}
	regionAt := map[string]int{}
	for i, f := range cfg.Fleets {
		key := f.Account + "/" + f.Region
		at, ok := regionAt[key]
		if !ok {
			at = len(p.regions)
			regionAt[key] = at
			p.regions = append(p.regions, region{account: f.Account, name: f.Region})
		}
		p.regions[at].fleets = append(p.regions[at].fleets, fleetRef{index: i, Fleet: f})
	}
	envAt := map[string]int{}
	add := func(account, reg, purpose string) {
		key := account + "/" + reg
		at, ok := envAt[key]
		if !ok {
			at = len(p.envs)
			envAt[key] = at
			p.envs = append(p.envs, env{account: account, region: reg})
		}
		p.envs[at].purposes = append(p.envs[at].purposes, purpose)
	}
	for _, f := range cfg.Fleets {
		add(f.Account, f.Region, "fleet "+f.Name)
	}
	add(cfg.DNS.Account, cfg.DNS.Region, "DNS stack")
	add(cfg.DNS.Account, DNSAlarmsRegion, "DNS alarms stack")
	return p
}

// accounts lists every account the configuration deploys to, in order of
// first appearance.
func (p plan) accounts() []string {
	var out []string
	seen := map[string]bool{}
	for _, e := range p.envs {
		if !seen[e.account] {
			seen[e.account] = true
			out = append(out, e.account)
		}
	}
	return out
}

// Environments returns every account/region a stack of cfg deploys to, as
// "ACCOUNT/REGION", in the order preflight checks their bootstrap.
func Environments(cfg *deployconfig.Config) []string {
	p := newPlan(cfg)
	out := make([]string, len(p.envs))
	for i, e := range p.envs {
		out[i] = e.account + "/" + e.region
	}
	return out
}
