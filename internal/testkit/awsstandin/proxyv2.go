package awsstandin

import (
	"encoding/binary"
	"net/netip"
)

// proxyV2Signature starts every PROXY protocol version 2 header (HAProxy,
// "The PROXY protocol", section 2.2).
var proxyV2Signature = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// ProxyV2Header is the header a Network Load Balancer with proxy protocol
// v2 enabled prepends to a connection it forwards: command PROXY, TCP, the
// client's address and the address the client connected to. It is written
// here from the specification on its own, not with the relay's parser's
// package, so a mistake in one is not mirrored in the other.
func ProxyV2Header(src, dst netip.AddrPort) []byte {
	b := append([]byte(nil), proxyV2Signature...)
	b = append(b, 0x21) // version 2, command PROXY
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if s.Is4() && d.Is4() {
		b = append(b, 0x11) // AF_INET, STREAM
		b = binary.BigEndian.AppendUint16(b, 12)
		s4, d4 := s.As4(), d.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	} else {
		b = append(b, 0x21) // AF_INET6, STREAM
		b = binary.BigEndian.AppendUint16(b, 36)
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// ProxyV2LocalHeader is the header on the load balancer's own connections
// (its target health checks): command LOCAL and no addresses. The NLB user
// guide says only that "the client connection information is not sent"
// on health check connections; the address family it then declares is
// unverified, and UNSPEC with an empty address block is the plainest
// reading (a receiver must ignore the addresses of a LOCAL header either
// way).
func ProxyV2LocalHeader() []byte {
	b := append([]byte(nil), proxyV2Signature...)
	return append(b, 0x20, 0x00, 0x00, 0x00) // version 2 LOCAL, UNSPEC, length 0
}
