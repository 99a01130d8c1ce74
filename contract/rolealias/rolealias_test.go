package rolealias_test

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/rolealias"
)

// CreateRoleAlias's roleAlias: 1..128 characters of [\w=,@-]
// (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateRoleAlias.html).
func TestNameIsCreateRoleAliasPattern(t *testing.T) {
	for _, ok := range []string{"a", "agentgate-agent", "agentgate_agent", "A=b,c@d-e_9", strings.Repeat("a", 128)} {
		if err := rolealias.ValidateName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 129), "a/b", "a b", "a.b", "a+b", "a:b", "é", "a\n", "ａ"} {
		err := rolealias.ValidateName(bad)
		if err == nil || !strings.Contains(err.Error(), "1..128 characters of [A-Za-z0-9_=,@-]") {
			t.Errorf("%q: %v", bad, err)
		}
		if rolealias.ValidName(bad) {
			t.Errorf("ValidName(%q)", bad)
		}
	}
}

// credentialDurationSeconds: 900..43200 (same page).
func TestCredentialDurationLimits(t *testing.T) {
	if rolealias.MinCredentialDurationSec != 900 || rolealias.MaxCredentialDurationSec != 43200 {
		t.Errorf("limits %d..%d, want CreateRoleAlias's 900..43200", rolealias.MinCredentialDurationSec, rolealias.MaxCredentialDurationSec)
	}
}
