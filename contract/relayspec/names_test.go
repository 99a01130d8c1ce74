package relayspec_test

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/relayspec"
)

func TestServerAndDomainNames(t *testing.T) {
	long := strings.Repeat(strings.Repeat("a", 63)+".", 4)[:253]
	cases := []struct {
		name           string
		server, domain bool
	}{
		{"abc123-ats.iot.eu-west-1.amazonaws.com", true, true},
		{"health.agents.example.com", true, true},
		{long, true, true},
		{"localhost", true, false},
		{long + "a", false, false},
		{"", false, false},
		{"10.0.0.1", false, false},
		{"::1", false, false},
		{"Health.example.com", false, false},
		{"*.example.com", false, false},
		{"a_b.example.com", false, false},
		{"-a.example.com", false, false},
		{"a-.example.com", false, false},
		{"a..example.com", false, false},
		{"example.com.", false, false},
		{strings.Repeat("a", 64) + ".example.com", false, false},
		{"\u212a.example.com", false, false},
	}
	for _, c := range cases {
		if err := relayspec.CheckServerName(c.name); (err == nil) != c.server {
			t.Errorf("CheckServerName(%q) = %v", c.name, err)
		}
		if err := relayspec.CheckDomainName(c.name); (err == nil) != c.domain {
			t.Errorf("CheckDomainName(%q) = %v", c.name, err)
		}
	}
}
