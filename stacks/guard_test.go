package stacks_test

import (
	"os"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/deploy/stackguard"
)

// The pull-request guard on real templates: growing a fleet's address set is
// safe, renaming a fleet (which renames its stacks) would release its
// addresses and must be caught.
func TestGuardOnRealTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("synthesizes the app twice more")
	}
	b := load(t)
	base, err := stackguard.ReadAssembly(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(edit func(*deployconfig.Config)) map[string]*stackguard.Template {
		t.Helper()
		cfg, err := deployconfig.Load("../agentgate.example.json")
		if err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		v, err := synth(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(v.dir)
		head, err := stackguard.ReadAssembly(v.dir)
		if err != nil {
			t.Fatal(err)
		}
		return head
	}

	grown := variant(func(c *deployconfig.Config) { c.Fleets[0].StaticIPCount = 4 })
	for _, f := range stackguard.CompareAssemblies(base, grown) {
		t.Errorf("growing the address set flagged: %s", f)
	}

	renamed := variant(func(c *deployconfig.Config) { c.Fleets[0].Name = "euwest1" })
	var released []string
	for _, f := range stackguard.CompareAssemblies(base, renamed) {
		if f.Stack == "agentgate-euw1-addresses" && f.Type == "AWS::EC2::EIP" {
			released = append(released, f.LogicalID)
		}
	}
	if got := strings.Join(released, ","); got != strings.Join(pinnedAddressIDs["euw1"], ",") {
		t.Errorf("renaming the fleet: guard caught %q, want every address %q", got, pinnedAddressIDs["euw1"])
	}
}
