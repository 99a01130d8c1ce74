package relayspec

import (
	"fmt"
	"net/netip"
	"strings"
)

// CheckServerName accepts a lower-case DNS host name the relay can route or
// answer health checks on (no wildcards, no IP literals), byte by byte:
// 1..253 bytes, labels of 1..63 ASCII letters, digits and '-', not starting
// or ending with '-'. The relay checks its --route and --health-sni names
// with it; the fleet construct and the deployment config check the names
// they hand the relay with CheckDomainName, so a deployment never starts a
// relay that refuses its own configuration.
func CheckServerName(s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("%q: want a DNS name of 1..253 characters", s)
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return fmt.Errorf("%q: an IP literal is not a server name", s)
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: bad DNS label %q", s, label)
		}
		for i := 0; i < len(label); i++ {
			if ch := label[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return fmt.Errorf("%+q: byte %#02x not allowed (ASCII letters, digits, '-' and '.' only; no wildcards)", s, ch)
			}
		}
	}
	return nil
}

// CheckDomainName is CheckServerName for a name in a public zone: it also
// needs at least two labels.
func CheckDomainName(s string) error {
	if err := CheckServerName(s); err != nil {
		return err
	}
	if !strings.Contains(s, ".") {
		return fmt.Errorf("%q: want at least two labels (name.zone)", s)
	}
	return nil
}
