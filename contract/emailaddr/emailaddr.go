// Package emailaddr is agentgate's one rule for an e-mail address it
// subscribes to an alarm topic: the deployment configuration
// (alarms.email) and the alarmtopic construct (Props.EmailAddresses) both
// check with it, so a file the configuration reader accepts never makes
// the construct panic, and the reverse.
package emailaddr

import (
	"errors"
	"fmt"
	"net/mail"
)

// MaxLen bounds an address: RFC 5321 §4.5.3.1.3 caps a path at 256
// octets including its angle brackets, so an address at 254.
const MaxLen = 254

// Rule says in words what Check accepts, for messages that name the bad
// value and what is allowed.
const Rule = `a plain e-mail address such as "ops@example.com" (no display name, at most 254 characters)`

// Check returns nil when s is one plain address: an RFC 5322 addr-spec
// (as net/mail parses it) written exactly as that, with no display name,
// angle brackets, comments, surrounding spaces or second address, and at
// most MaxLen bytes. Otherwise it says what is wrong.
func Check(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > MaxLen {
		return fmt.Errorf("%d characters, more than %d", len(s), MaxLen)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil {
		return err
	}
	if addr.Name != "" || addr.Address != s {
		return fmt.Errorf("more than the address %q", addr.Address)
	}
	return nil
}
