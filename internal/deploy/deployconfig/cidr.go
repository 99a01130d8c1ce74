package deployconfig

import "net/netip"

// isPrivateCIDR accepts an RFC 1918 IPv4 prefix from /16 to /24 written in
// canonical form (no host bits set).
func isPrivateCIDR(s string) bool {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() || p.Bits() < 16 || p.Bits() > 24 || p.Masked() != p {
		return false
	}
	return p.Addr().IsPrivate()
}
