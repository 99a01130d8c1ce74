package main

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/topics"
)

// FuzzParseAgentList: whatever a --from file holds, the parser either
// refuses it or returns 1..maxBulkAgents distinct valid agent IDs, each a
// trimmed line of the input.
func FuzzParseAgentList(f *testing.F) {
	for _, s := range []string{"pc-1\n", "# c\n\npc-1\npc-1\n  pc-2\t\n", "../x\n", "pc-+\n", "a/b", "\x00", "pc-1\r\npc-2", strings.Repeat("a", 5000)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseAgentList("f", body)
		if err != nil {
			if got != nil {
				t.Fatalf("error %v with result %q", err, got)
			}
			return
		}
		if len(got) == 0 || len(got) > maxBulkAgents {
			t.Fatalf("%d agents", len(got))
		}
		seen := map[string]bool{}
		for _, a := range got {
			if err := topics.ValidateThingName(a); err != nil {
				t.Fatalf("invalid %q accepted: %v", a, err)
			}
			if seen[a] {
				t.Fatalf("duplicate %q", a)
			}
			seen[a] = true
			if !strings.Contains(string(body), a) {
				t.Fatalf("%q not in the input", a)
			}
		}
	})
}
