// Package staticips provides the fixed set of Elastic IPs customers put on
// their firewall allowlists. The addresses are retained when the stack or
// construct is deleted, and their construct IDs ("Address1", "Address2", …)
// are API: renaming one would release an allowlisted address.
package staticips

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// MaxCount bounds one set; the default EIP quota is five per region.
const MaxCount = 24

// Props configures a StaticIPs set.
type Props struct {
	// Count is how many addresses to allocate. Required: it is part of every
	// customer's firewall rules, so it is never defaulted silently.
	Count *float64
	// RemovalPolicy applies to every address. Default: RETAIN. Anything else
	// is allowed only for throwaway test deployments and is warned about.
	RemovalPolicy awscdk.RemovalPolicy
	// NamePrefix tags each address "Name=<prefix>-<n>". Default: the construct path.
	NamePrefix *string
}

// StaticIPs is an ordered set of Elastic IPs.
type StaticIPs interface {
	constructs.Construct
	// Addresses are the public IPv4 addresses, in order.
	Addresses() []*string
	// AllocationIDs are the EIP allocation IDs, in the same order.
	AllocationIDs() []*string
}

type staticIPs struct {
	constructs.Construct
	eips []awsec2.CfnEIP
}

// New allocates the addresses. It panics when Count is missing or outside 1..MaxCount.
func New(scope constructs.Construct, id *string, props *Props) StaticIPs {
	if props == nil || props.Count == nil {
		panic("staticips: Count is required; it is the number of addresses customers allowlist")
	}
	n := *props.Count
	if n < 1 || n > MaxCount || n != float64(int(n)) {
		panic(fmt.Sprintf("staticips: Count %v must be a whole number from 1 to %d", n, MaxCount))
	}
	policy := props.RemovalPolicy
	if policy == "" {
		policy = awscdk.RemovalPolicy_RETAIN
	}
	this := constructs.NewConstruct(scope, id)
	if policy != awscdk.RemovalPolicy_RETAIN {
		awscdk.Annotations_Of(this).AddWarningV2(jsii.String("agentgate:staticIpsNotRetained"),
			jsii.String("static IPs are not retained: deleting this stack releases addresses customers have allowlisted"), nil)
	}
	prefix := *this.Node().Path()
	if props.NamePrefix != nil {
		prefix = *props.NamePrefix
	}
	s := &staticIPs{Construct: this}
	for i := 1; i <= int(n); i++ {
		eip := awsec2.NewCfnEIP(this, jsii.String(fmt.Sprintf("Address%d", i)), &awsec2.CfnEIPProps{
			Domain: jsii.String("vpc"),
			Tags: &[]*awscdk.CfnTag{
				{Key: jsii.String("Name"), Value: jsii.String(fmt.Sprintf("%s-%d", prefix, i))},
				{Key: jsii.String("agentgate:allowlisted"), Value: jsii.String("true")},
			},
		})
		eip.ApplyRemovalPolicy(policy, nil)
		s.eips = append(s.eips, eip)
	}
	return s
}

func (s *staticIPs) Addresses() []*string {
	out := make([]*string, len(s.eips))
	for i, e := range s.eips {
		out[i] = e.AttrPublicIp()
	}
	return out
}

func (s *staticIPs) AllocationIDs() []*string {
	out := make([]*string, len(s.eips))
	for i, e := range s.eips {
		out[i] = e.AttrAllocationId()
	}
	return out
}
