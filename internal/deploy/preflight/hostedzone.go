package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
)

// checkHostedZone checks dns.hostedZoneId against Route 53 (GetHostedZone
// API reference: NoSuchHostedZone for an unknown ID, InvalidInput for a
// malformed one): it must exist, be public, be named dns.zoneName, and hold
// dns.recordName.
func (r *runner) checkHostedZone(ctx context.Context) Result {
	d := r.cfg.DNS
	scope := fmt.Sprintf("%s %s (DNS stack)", d.Account, d.HostedZoneID)
	listFix := fmt.Sprintf("set dns.hostedZoneId to the ID of the public hosted zone of %s (aws route53 list-hosted-zones-by-name --dns-name %s --max-items 1).", d.ZoneName, d.ZoneName)
	c, cancel := r.call(ctx)
	defer cancel()
	out, err := r.clients.route53().GetHostedZone(c, &route53.GetHostedZoneInput{Id: aws.String(d.HostedZoneID)})
	switch apiCode(err) {
	case "NoSuchHostedZone", "InvalidInput":
		return Result{Check: CheckHostedZone, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("account %s has no hosted zone %s (%s)", d.Account, d.HostedZoneID, apiCode(err)),
			Fix:     listFix}
	}
	if err != nil {
		return couldNot(CheckHostedZone, scope, "route53:GetHostedZone", err)
	}
	if out.HostedZone == nil || aws.ToString(out.HostedZone.Name) == "" {
		return couldNot(CheckHostedZone, scope, "route53:GetHostedZone", malformed("no hosted zone name in the answer"))
	}
	zone := canonicalName(aws.ToString(out.HostedZone.Name))
	want := canonicalName(d.ZoneName)
	if out.HostedZone.Config != nil && out.HostedZone.Config.PrivateZone {
		return Result{Check: CheckHostedZone, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("%s (%s) is a private hosted zone; agents resolve the record from the internet", d.HostedZoneID, zone),
			Fix:     listFix}
	}
	if zone != want {
		return Result{Check: CheckHostedZone, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("hosted zone %s is %s, but dns.zoneName is %s", d.HostedZoneID, zone, want),
			Fix:     fmt.Sprintf("set dns.zoneName to %s, or %s", zone, listFix)}
	}
	record := canonicalName(d.RecordName)
	if record != zone && !strings.HasSuffix(record, "."+zone) {
		return Result{Check: CheckHostedZone, Scope: scope, Status: Fail,
			Message: fmt.Sprintf("dns.recordName %s is not inside zone %s", record, zone),
			Fix:     fmt.Sprintf("set dns.recordName to a name ending in .%s, such as agents.%s.", zone, zone)}
	}
	return Result{Check: CheckHostedZone, Scope: scope, Status: OK,
		Message: fmt.Sprintf("public zone %s holds %s", zone, record)}
}

// canonicalName lowercases a DNS name and drops the trailing dot Route 53
// returns on zone names.
func canonicalName(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
