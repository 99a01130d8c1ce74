package stacks_test

import (
	"encoding/json"
	"testing"

	"github.com/agentgate/agentgate/internal/cdktest"
)

// The addresses customers allowlist must never change by accident. These
// logical IDs are pinned: if this test fails, a change would make
// CloudFormation release the allowlisted addresses and allocate new ones.
// Only update the list for a deliberate, announced address change.
var pinnedAddressIDs = map[string][]string{
	"euw1": {"AddressesAddress12EAACCE8", "AddressesAddress27D08E6FC"},
	"use1": {"AddressesAddress12EAACCE8", "AddressesAddress27D08E6FC"},
}

func TestStaticAddressLogicalIDsArePinned(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		want, ok := pinnedAddressIDs[f.Config.Name]
		if !ok {
			t.Fatalf("fleet %s has no pinned address IDs in this test", f.Config.Name)
		}
		cdktest.PinnedLogicalIDs(t, cdktest.Template(t, f.Addresses.Stack), "AWS::EC2::EIP", want...)
	}
}

func TestStaticAddressesAreRetainedAndProtected(t *testing.T) {
	b := load(t)
	for _, f := range b.sys.Fleets {
		if !*f.Addresses.Stack.TerminationProtection() {
			t.Errorf("%s is not termination-protected", *f.Addresses.Stack.StackName())
		}
		for id, r := range cdktest.Resources(t, cdktest.Template(t, f.Addresses.Stack), "AWS::EC2::EIP") {
			if r["DeletionPolicy"] != "Retain" || r["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("%s/%s: DeletionPolicy %v, UpdateReplacePolicy %v; want Retain for both",
					f.Config.Name, id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
			}
			if d := r["Properties"].(map[string]any)["Domain"]; d != "vpc" {
				t.Errorf("%s/%s: Domain %v, want vpc", f.Config.Name, id, d)
			}
		}
		if got, want := len(f.Addresses.StaticIPs.Resources()), f.Config.StaticIPCount; got != want {
			t.Errorf("%s: %d addresses, config says %d", f.Config.Name, got, want)
		}
	}
}

// The addresses stack holds the addresses and nothing else that could be
// replaced by a change elsewhere.
func TestAddressesStackHoldsOnlyAddresses(t *testing.T) {
	for _, f := range load(t).sys.Fleets {
		tmpl := cdktest.Template(t, f.Addresses.Stack)
		var all map[string]any
		cdktest.Must(t, func() {
			data, _ := json.Marshal(tmpl.ToJSON())
			_ = json.Unmarshal(data, &all)
		})
		for id, r := range all["Resources"].(map[string]any) {
			switch typ := r.(map[string]any)["Type"]; typ {
			case "AWS::EC2::EIP", "AWS::CDK::Metadata":
			default:
				t.Errorf("%s: unexpected %s %s in the addresses stack", f.Config.Name, typ, id)
			}
		}
	}
}

// Operators read the addresses off the stack outputs: one per address and a
// JSON list for tooling.
func TestAddressesAreOutputAsListAndOneByOne(t *testing.T) {
	for _, f := range load(t).sys.Fleets {
		tmpl := cdktest.Template(t, f.Addresses.Stack)
		var outputs map[string]any
		cdktest.Must(t, func() {
			data, _ := json.Marshal(tmpl.ToJSON())
			var all map[string]any
			_ = json.Unmarshal(data, &all)
			outputs, _ = all["Outputs"].(map[string]any)
		})
		list, ok := outputs["StaticIps"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no StaticIps output", f.Config.Name)
		}
		join, _ := json.Marshal(list["Value"])
		for i := 1; i <= f.Config.StaticIPCount; i++ {
			id := "Address" + string(rune('0'+i))
			if _, ok := outputs[id]; !ok {
				t.Errorf("%s: no output %s", f.Config.Name, id)
			}
			if !json.Valid(join) {
				t.Errorf("%s: StaticIps value is not JSON", f.Config.Name)
			}
		}
		for _, ref := range pinnedAddressIDs[f.Config.Name] {
			if !containsString(string(join), `"Fn::GetAtt":["`+ref+`","PublicIp"]`) {
				t.Errorf("%s: StaticIps output does not list %s: %s", f.Config.Name, ref, join)
			}
		}
	}
}

func containsString(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
