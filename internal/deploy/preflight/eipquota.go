package preflight

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// The EC2-VPC Elastic IPs quota: its Service Quotas code, and the default
// the EC2 user guide documents ("Elastic IP addresses" → "Elastic IP address
// quota": five per Region), used when Service Quotas cannot be read.
const (
	EIPQuotaServiceCode = "ec2"
	EIPQuotaCode        = "L-0263D0A3"
	DefaultEIPQuota     = 5
)

// Tags that tie an Elastic IP to one of this app's stacks.
const (
	// cfnStackNameTag is set by CloudFormation on the resources it creates
	// (CloudFormation user guide, "Resource tag": aws:cloudformation:stack-name).
	cfnStackNameTag = "aws:cloudformation:stack-name"
	// projectTag is the tag stacks.Build puts on every resource.
	projectTag = "agentgate:project"
	nameTag    = "Name"
)

// checkEIPQuota compares the Elastic IPs every fleet of reg needs with what
// the region's quota leaves free. Addresses this app's own stacks already
// hold count as available to it: a re-deploy reuses them.
func (r *runner) checkEIPQuota(ctx context.Context, reg region) Result {
	scope := reg.scope()
	need, static, nat := 0, 0, 0
	for _, f := range reg.fleets {
		need += ElasticIPs(f.Fleet)
		static += f.StaticIPCount
		nat += NATGateways(f.Fleet)
	}
	quota, quotaNote, quotaAssumed := r.eipQuota(ctx, reg.name)

	c, cancel := r.call(ctx)
	defer cancel()
	out, err := r.clients.ec2(reg.name).DescribeAddresses(c, &ec2.DescribeAddressesInput{})
	if err != nil {
		return couldNot(CheckEIPQuota, scope, "ec2:DescribeAddresses", err)
	}
	allocated, ours := 0, 0
	oursPerFleet := map[string]int{}
	for _, a := range out.Addresses {
		if a.Domain == ec2types.DomainTypeStandard {
			continue // EC2-Classic addresses do not count against the VPC quota
		}
		allocated++
		tags := tagMap(a.Tags)
		for _, f := range reg.fleets {
			if ownedByFleet(tags, r.cfg, f.Fleet) && oursPerFleet[f.Name] < ElasticIPs(f.Fleet) {
				oursPerFleet[f.Name]++
				ours++
				break
			}
		}
	}
	newNeeded := need - ours
	free := quota - allocated
	needs := fmt.Sprintf("needs %d Elastic IPs (%d static, %d for NAT gateways)", need, static, nat)
	if ours > 0 {
		needs += fmt.Sprintf(", %d of them already allocated by this app's stacks", ours)
	}
	state := fmt.Sprintf("quota %d%s, %d allocated, %d free", quota, quotaNote, allocated, max(free, 0))
	if newNeeded <= free {
		res := Result{Check: CheckEIPQuota, Scope: scope, Status: OK, Message: needs + "; " + state}
		if quotaAssumed {
			res.Status = Warn
		}
		return res
	}
	desired := allocated + newNeeded
	return Result{Check: CheckEIPQuota, Scope: scope, Status: Fail,
		Message: fmt.Sprintf("%s; %d new ones do not fit: %s", needs, newNeeded, state),
		Fix: fmt.Sprintf("raise the EC2-VPC Elastic IPs quota to at least %d: aws service-quotas request-service-quota-increase --service-code %s --quota-code %s --desired-value %d --region %s (or release unused addresses: aws ec2 describe-addresses --region %s).",
			desired, EIPQuotaServiceCode, EIPQuotaCode, desired, reg.name, reg.name)}
}

// eipQuota reads the region's applied EIP quota; when Service Quotas has no
// applied value it asks for the AWS default; when neither can be read it
// assumes DefaultEIPQuota and says so in note.
func (r *runner) eipQuota(ctx context.Context, region string) (quota int, note string, assumed bool) {
	sq := r.clients.quotas(region)
	c, cancel := r.call(ctx)
	defer cancel()
	applied, err := sq.GetServiceQuota(c, &servicequotas.GetServiceQuotaInput{
		ServiceCode: aws.String(EIPQuotaServiceCode), QuotaCode: aws.String(EIPQuotaCode)})
	action := "servicequotas:GetServiceQuota"
	if apiCode(err) == "NoSuchResourceException" {
		// "If the applied quota value is not available for a quota, the
		// quota is not retrieved" (GetServiceQuota API reference).
		c2, cancel2 := r.call(ctx)
		defer cancel2()
		def, derr := sq.GetAWSDefaultServiceQuota(c2, &servicequotas.GetAWSDefaultServiceQuotaInput{
			ServiceCode: aws.String(EIPQuotaServiceCode), QuotaCode: aws.String(EIPQuotaCode)})
		action, err = "servicequotas:GetAWSDefaultServiceQuota", derr
		if derr == nil && def.Quota != nil {
			if v, ok := quotaValue(def.Quota.Value); ok {
				return v, " (the AWS default; no applied value)", false
			}
			err = malformed("quota value %v is not a count", aws.ToFloat64(def.Quota.Value))
		}
	} else if err == nil {
		if applied.Quota != nil {
			if v, ok := quotaValue(applied.Quota.Value); ok {
				return v, "", false
			}
		}
		err = malformed("no usable quota value in the answer")
	}
	msg, _ := explain(action, err)
	return DefaultEIPQuota, fmt.Sprintf(" (assumed: the documented default; could not read it: %s)", msg), true
}

// quotaValue accepts a whole, non-negative quota value of sane size.
func quotaValue(v *float64) (int, bool) {
	if v == nil || math.IsNaN(*v) || *v < 0 || *v > 1e6 || *v != math.Trunc(*v) {
		return 0, false
	}
	return int(*v), true
}

func tagMap(tags []ec2types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// ownedByFleet reports whether an address with these tags belongs to the
// fleet's addresses stack (its static IPs) or network stack (its NAT
// gateways). CloudFormation's own stack-name tag decides when present; its
// propagation "varies by resource type" (CloudFormation user guide,
// "Resource tag"), so the tags the stacks set themselves also count:
// agentgate:project plus the Name the staticips construct gives each
// address ("<project>-<fleet>-<n>") or the one the VPC gives its NAT
// addresses ("<project>-<fleet>-network/…").
func ownedByFleet(tags map[string]string, cfg *deployconfig.Config, f deployconfig.Fleet) bool {
	switch tags[cfnStackNameTag] {
	case cfg.StackName(f.Name, addressesStack), cfg.StackName(f.Name, networkStack):
		return true
	case "":
	default:
		return false
	}
	if tags[projectTag] != cfg.Project {
		return false
	}
	name := tags[nameTag]
	if strings.HasPrefix(name, cfg.StackName(f.Name, networkStack)+"/") {
		return true
	}
	n, ok := strings.CutPrefix(name, cfg.Project+"-"+f.Name+"-")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}
