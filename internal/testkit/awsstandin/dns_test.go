package awsstandin

import (
	"context"
	"net/netip"
	"testing"
)

// TestDNSWeightedMode: one address per answer, chosen by weight among the
// healthy records, standbys only when every weighted record is unhealthy,
// fail-open among the weighted ones when all are unhealthy (Route 53's
// rules, as constructs/agentdns relies on them).
func TestDNSWeightedMode(t *testing.T) {
	a, b, standby := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	d, err := StartDNS("agents.example.test", a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r := d.Resolver()
	count := func(n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			ips, err := r.LookupHost(context.Background(), "agents.example.test")
			if err != nil {
				t.Fatal(err)
			}
			if len(ips) != 1 {
				t.Fatalf("weighted answer %v, want one address", ips)
			}
			seen[ips[0]]++
		}
		return seen
	}
	if ips, err := r.LookupHost(context.Background(), "agents.example.test"); err != nil || len(ips) != 2 || ips[0] != "127.0.0.2" {
		t.Fatalf("multi-address mode answered %v %v", ips, err)
	}
	d.SetWeighted(WeightedRecord{a, 1, true}, WeightedRecord{b, 1, true}, WeightedRecord{standby, 0, true})
	if seen := count(100); seen["127.0.0.2"] == 0 || seen["127.0.0.3"] == 0 || seen["127.0.0.4"] != 0 {
		t.Errorf("equal weights answered %v; want both, never the standby", seen)
	}
	if !d.SetHealthy(a, false) || d.SetHealthy(netip.MustParseAddr("127.0.0.9"), false) {
		t.Fatal("SetHealthy does not find the records")
	}
	if seen := count(30); seen["127.0.0.3"] != 30 {
		t.Errorf("one unhealthy: answered %v, want only 127.0.0.3", seen)
	}
	d.SetHealthy(b, false)
	if seen := count(30); seen["127.0.0.4"] != 30 {
		t.Errorf("weighted records unhealthy: answered %v, want the standby", seen)
	}
	d.SetHealthy(standby, false)
	if seen := count(100); seen["127.0.0.2"] == 0 || seen["127.0.0.3"] == 0 || seen["127.0.0.4"] != 0 {
		t.Errorf("all unhealthy: answered %v, want fail-open among the weighted records", seen)
	}
	d.SetAnswers(b)
	if ips, err := r.LookupHost(context.Background(), "agents.example.test"); err != nil || len(ips) != 1 || ips[0] != "127.0.0.3" {
		t.Fatalf("back in multi-address mode: %v %v", ips, err)
	}
}
