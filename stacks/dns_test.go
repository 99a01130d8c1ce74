package stacks_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

// Every static IP of every fleet has exactly one weighted A record with its
// own health check, identified "<fleet>-<n>", weighted by its fleet.
func TestEveryWeightedRecordHasItsOwnHealthCheck(t *testing.T) {
	b := load(t)
	tmpl := templateOf(t, b.sys.DNS.Stack)
	records := ofType(t, tmpl, "AWS::Route53::RecordSet")
	checks := ofType(t, tmpl, "AWS::Route53::HealthCheck")
	total := 0
	weights := map[string]int{}
	for _, f := range b.cfg.Fleets {
		total += f.StaticIPCount
		for i := 1; i <= f.StaticIPCount; i++ {
			weights[fmt.Sprintf("%s-%d", f.Name, i)] = f.Weight
		}
	}
	if len(records) != total || len(checks) != total {
		t.Fatalf("%d records and %d health checks, want one each per static IP (%d)", len(records), len(checks), total)
	}
	used := map[string]string{}
	for id, r := range records {
		p := props(r)
		set, _ := p["SetIdentifier"].(string)
		w, ok := weights[set]
		if !ok {
			t.Errorf("%s: SetIdentifier %q is not <fleet>-<n>", id, set)
			continue
		}
		delete(weights, set)
		if p["Weight"] != float64(w) || p["Type"] != "A" || p["Name"] != b.cfg.DNS.RecordName || p["HostedZoneId"] != b.cfg.DNS.HostedZoneID {
			t.Errorf("%s: %v %v %v %v, want A %s weight %d in %s", set, p["Type"], p["Name"], p["Weight"], p["HostedZoneId"], b.cfg.DNS.RecordName, w, b.cfg.DNS.HostedZoneID)
		}
		if ttl := p["TTL"]; ttl != fmt.Sprint(b.cfg.DNS.TTLSec) || b.cfg.DNS.TTLSec > 60 {
			t.Errorf("%s: TTL %v, want %d (≤ 60)", set, ttl, b.cfg.DNS.TTLSec)
		}
		hc, attr, ok := getAtt(p["HealthCheckId"])
		if !ok || attr != "HealthCheckId" || checks[hc] == nil {
			t.Errorf("%s: HealthCheckId %v is not one of this stack's health checks", set, p["HealthCheckId"])
			continue
		}
		if other, dup := used[hc]; dup {
			t.Errorf("%s and %s share health check %s", set, other, hc)
		}
		used[hc] = set
		// The record answers the address its health check probes.
		rr, _ := json.Marshal(p["ResourceRecords"])
		ip, _ := json.Marshal([]any{props(checks[hc])["HealthCheckConfig"].(map[string]any)["IPAddress"]})
		if string(rr) != string(ip) {
			t.Errorf("%s: record answers %s but its health check probes %s", set, rr, ip)
		}
	}
	if len(weights) != 0 {
		t.Errorf("static IPs without a record: %v", weights)
	}
}

// Each health check probes exactly one fleet's EIP (read through the weak
// cross-region reference into that fleet's addresses stack) on 443 with the
// relay's health SNI, the same path agents take.
func TestHealthChecksProbeTheirOwnEIPWithTheHealthSNI(t *testing.T) {
	b := load(t)
	tmpl := templateOf(t, b.sys.DNS.Stack)
	records := ofType(t, tmpl, "AWS::Route53::RecordSet")
	checks := ofType(t, tmpl, "AWS::Route53::HealthCheck")
	for _, r := range records {
		p := props(r)
		set := cdktest.Get[string](t, p, "SetIdentifier")
		fleet, n, _ := strings.Cut(set, "-")
		hcID, _, _ := getAtt(p["HealthCheckId"])
		cfg := cdktest.Object(t, checks[hcID], "Properties", "HealthCheckConfig")
		if cfg["Type"] != "HTTPS" || cfg["Port"] != float64(443) || cfg["EnableSNI"] != true ||
			cfg["FullyQualifiedDomainName"] != b.cfg.DNS.HealthSNI || cfg["ResourcePath"] != "/healthz" ||
			cfg["RequestInterval"] != float64(10) || cfg["FailureThreshold"] == nil {
			t.Errorf("%s: health check %v, want HTTPS 443 SNI %s /healthz every 10 s", set, cfg, b.cfg.DNS.HealthSNI)
		}
		var want awscdk.Stack
		var idx int
		fmt.Sscan(n, &idx)
		for _, f := range b.sys.Fleets {
			if f.Config.Name == fleet {
				want = f.Addresses.Stack
				if idx < 1 || idx > len(pinnedAddressIDs[fleet]) {
					t.Fatalf("%s: index %d outside the fleet's addresses", set, idx)
				}
				stack, value := resolveOutput(t, b, cfg["IPAddress"])
				eip, attr, ok := getAtt(value)
				if stack != *want.StackName() || !ok || attr != "PublicIp" || eip != pinnedAddressIDs[fleet][idx-1] {
					t.Errorf("%s: probes %s %v, want %s's %s PublicIp", set, stack, value, *want.StackName(), pinnedAddressIDs[fleet][idx-1])
				}
				if _, region, _, _ := stackOutputRef(cfg["IPAddress"]); region != f.Config.Region {
					t.Errorf("%s: reference region %s, want the fleet's %s", set, region, f.Config.Region)
				}
			}
		}
		if want == nil {
			t.Errorf("%s: no fleet %q", set, fleet)
		}
	}
}

// The DNS stack reads the addresses with weak references
// (Fn::GetStackOutput): the addresses stacks gain outputs only — no export
// that could block an update, no custom resource beside the EIPs.
func TestCrossRegionReferencesLeaveTheAddressesStacksAlone(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		tmpl := templateOf(t, f.Addresses.Stack)
		outs, _ := tmpl["Outputs"].(map[string]any)
		for name := range outs {
			if _, export := cdktest.Object(t, outs, name)["Export"]; export {
				t.Errorf("%s: output %s is exported; an import elsewhere would lock it", f.Config.Name, name)
			}
		}
		for id, r := range cdktest.ResourcesOfType(t, tmpl, "") {
			if typ := r["Type"]; typ != "AWS::EC2::EIP" && typ != "AWS::CDK::Metadata" {
				t.Errorf("%s: %s %s in the addresses stack", f.Config.Name, typ, id)
			}
		}
	}
	js, _ := json.Marshal(templateOf(t, b.sys.DNS.Stack))
	if strings.Contains(string(js), "Fn::ImportValue") || strings.Contains(string(js), "Custom::CrossRegionExportReader") {
		t.Error("the DNS stack uses strong references (exports / export reader)")
	}
}

// Replacing or redeploying an edge, network or DNS stack cannot change the
// static IPs: the allowlisted EIPs exist only in the addresses stacks, with
// pinned logical IDs, retained, in termination-protected stacks. The NAT
// gateways' own EIPs (network stacks) are not allowlisted and are told
// apart by the agentgate:allowlisted tag and by belonging to a NAT gateway.
func TestStaticIPsExistOnlyInTheAddressesStacks(t *testing.T) {
	b := load(t)
	addresses := map[string]string{} // stack name → fleet
	for _, f := range b.sys.Fleets {
		addresses[*f.Addresses.Stack.StackName()] = f.Config.Name
		if !*f.Addresses.Stack.TerminationProtection() {
			t.Errorf("%s is not termination-protected", *f.Addresses.Stack.StackName())
		}
	}
	for _, s := range allStacks(b) {
		tmpl := templateOf(t, s)
		eips := ofType(t, tmpl, "AWS::EC2::EIP")
		fleet, isAddresses := addresses[*s.StackName()]
		var allowlisted []string
		for id, r := range eips {
			tagged := false
			if cdktest.Pairs(t, r, "Key", "Value", "Properties", "Tags")["agentgate:allowlisted"] == "true" {
				tagged = true
			}
			switch {
			case tagged && !isAddresses:
				t.Errorf("%s: allowlisted EIP %s outside an addresses stack", *s.StackName(), id)
			case tagged:
				allowlisted = append(allowlisted, id)
				if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
					t.Errorf("%s/%s: not retained", *s.StackName(), id)
				}
			case !natEIP(t, tmpl, id):
				t.Errorf("%s: EIP %s is neither allowlisted (addresses stack) nor a NAT gateway's", *s.StackName(), id)
			}
		}
		if isAddresses {
			want := pinnedAddressIDs[fleet]
			if strings.Join(sortedCopy(allowlisted), ",") != strings.Join(sortedCopy(want), ",") {
				t.Errorf("%s: allowlisted EIPs %v, want pinned %v", *s.StackName(), allowlisted, want)
			}
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func sortedCopy(s []string) []string {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return sortedKeys(m)
}

// natEIP reports whether eip is the allocation of a NAT gateway in tmpl.
func natEIP(t testing.TB, tmpl map[string]any, eip string) bool {
	for _, ngw := range ofType(t, tmpl, "AWS::EC2::NatGateway") {
		if id, attr, ok := getAtt(props(ngw)["AllocationId"]); ok && id == eip && attr == "AllocationId" {
			return true
		}
	}
	return false
}

// Health-check metrics exist only in us-east-1, so their alarms live in a
// us-east-1 stack: one per health check, on the DNS stack's checks, to an
// encrypted topic.
func TestHealthCheckAlarmsLiveInUsEast1(t *testing.T) {
	b := load(t)
	s := b.sys.DNSAlarms.Stack
	if *s.Region() != "us-east-1" || *s.Account() != b.cfg.DNS.Account {
		t.Fatalf("alarms stack in %s/%s, want %s/us-east-1", *s.Account(), *s.Region(), b.cfg.DNS.Account)
	}
	if *b.sys.DNS.Stack.Region() != b.cfg.DNS.Region {
		t.Errorf("DNS stack in %s, config says %s", *b.sys.DNS.Stack.Region(), b.cfg.DNS.Region)
	}
	tmpl := templateOf(t, s)
	checks := map[string]bool{}
	for id := range ofType(t, templateOf(t, b.sys.DNS.Stack), "AWS::Route53::HealthCheck") {
		checks[id] = true
	}
	alarms := ofType(t, tmpl, "AWS::CloudWatch::Alarm")
	if len(alarms) != len(checks) {
		t.Fatalf("%d alarms for %d health checks", len(alarms), len(checks))
	}
	for id, a := range alarms {
		p := props(a)
		if p["Namespace"] != "AWS/Route53" || p["MetricName"] != "HealthCheckStatus" || p["ComparisonOperator"] != "LessThanThreshold" {
			t.Errorf("%s: %v %v %v", id, p["Namespace"], p["MetricName"], p["ComparisonOperator"])
		}
		dim := asList(p["Dimensions"])
		if len(dim) != 1 {
			t.Fatalf("%s: dimensions %v", id, dim)
		}
		_, value := resolveOutput(t, b, cdktest.Object(t, dim, 0)["Value"])
		hc, attr, _ := getAtt(value)
		if !checks[hc] || attr != "HealthCheckId" {
			t.Errorf("%s: watches %v, want one of the DNS stack's health checks", id, value)
		}
		delete(checks, hc)
		if len(asList(p["AlarmActions"])) != 1 {
			t.Errorf("%s: no alarm action", id)
		}
	}
	if len(checks) != 0 {
		t.Errorf("health checks without an alarm: %v", checks)
	}
	if topic := props(one(t, tmpl, "AWS::SNS::Topic")); topic["KmsMasterKeyId"] == nil {
		t.Error("alarm topic is not encrypted")
	}
}
