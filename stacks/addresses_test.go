package stacks_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/internal/testkit/cdktest"
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
			if d := cdktest.Properties(t, r)["Domain"]; d != "vpc" {
				t.Errorf("%s/%s: Domain %v, want vpc", f.Config.Name, id, d)
			}
		}
		if got, want := len(f.Addresses.StaticIPs.AllocationIDs()), f.Config.StaticIPCount; got != want {
			t.Errorf("%s: %d addresses, config says %d", f.Config.Name, got, want)
		}
	}
}

// The addresses stack holds the addresses and nothing else that could be
// replaced by a change elsewhere.
func TestAddressesStackHoldsOnlyAddresses(t *testing.T) {
	for _, f := range load(t).sys.Fleets {
		all := cdktest.TemplateJSON(t, f.Addresses.Stack)
		for id, r := range cdktest.ResourcesOfType(t, all, "") {
			switch typ := r["Type"]; typ {
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
		outputs, _ := cdktest.TemplateJSON(t, f.Addresses.Stack)["Outputs"].(map[string]any)
		list, ok := outputs["StaticIps"].(map[string]any)
		if !ok {
			t.Fatalf("%s: no StaticIps output", f.Config.Name)
		}
		join, _ := json.Marshal(list["Value"])
		for i := 1; i <= f.Config.StaticIPCount; i++ {
			id := fmt.Sprintf("Address%d", i)
			if _, ok := outputs[id]; !ok {
				t.Errorf("%s: no output %s", f.Config.Name, id)
			}
		}
		for _, ref := range pinnedAddressIDs[f.Config.Name] {
			if !strings.Contains(string(join), `"Fn::GetAtt":["`+ref+`","PublicIp"]`) {
				t.Errorf("%s: StaticIps output does not list %s: %s", f.Config.Name, ref, join)
			}
		}
	}
}
