// Package rolealias holds what AWS IoT fixes about a role alias, the name
// an agent exchanges its certificate at (GET /role-aliases/<name>/credentials):
// the deployment config, the identity construct, the agent policies and the
// agent's credentials client all check a name against the same rule.
//
// The rules are CreateRoleAlias's
// (https://docs.aws.amazon.com/iot/latest/apireference/API_CreateRoleAlias.html):
// roleAlias has 1..128 characters matching [\w=,@-]+, and
// credentialDurationSeconds is 900..43200. \w there is ASCII letters,
// digits and '_', so '_' is allowed.
package rolealias

import (
	"fmt"
	"regexp"
)

// MaxNameLen is the longest role alias name.
const MaxNameLen = 128

// NameChars describes the characters a role alias name may hold, for
// error messages.
const NameChars = "[A-Za-z0-9_=,@-]"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_=,@-]{1,128}$`)

// Credential lifetime limits (credentialDurationSeconds), in seconds.
const (
	MinCredentialDurationSec = 900
	MaxCredentialDurationSec = 43200
)

// ValidName reports whether name is a role alias name AWS IoT accepts.
func ValidName(name string) bool {
	return namePattern.MatchString(name)
}

// ValidateName returns an error naming the rule if name is not a role
// alias name AWS IoT accepts.
func ValidateName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("role alias name %q must be 1..%d characters of %s", name, MaxNameLen, NameChars)
	}
	return nil
}
