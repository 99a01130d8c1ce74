// Package proxyproto parses the binary PROXY protocol version 2 header that
// an AWS Network Load Balancer puts in front of each TCP connection when
// proxy protocol v2 is enabled on the target group.
//
// It reads exactly the header and nothing after it. It understands TCP over
// IPv4 and IPv6, the LOCAL command (health checks from the NLB itself) and
// skips TLVs after checking they are well formed; anything else is an error,
// never a guess. Whether to trust a header at all is the caller's decision
// (only from configured CIDRs); this package only parses.
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Signature is the 12-byte magic that starts every v2 header.
var Signature = []byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// PrefixLen is how many bytes identify and size a v2 header: signature,
// version/command, family/protocol and the 16-bit length.
const PrefixLen = 16

// MaxPayload caps the address-and-TLV block. The NLB sends the addresses and
// a VPC endpoint TLV (a few dozen bytes); the protocol's own bound is 65535.
const MaxPayload = 1024

// Command is the v2 command nibble.
type Command uint8

const (
	// CommandLocal marks a connection the proxy made on its own behalf
	// (health checks): use the real peer address.
	CommandLocal Command = 0x0
	// CommandProxy carries the original client's addresses.
	CommandProxy Command = 0x1
)

// Errors returned by Read; reader errors (EOF, deadlines) are passed through.
var (
	// ErrNoSignature means the stream does not start with a v2 header.
	ErrNoSignature = errors.New("proxyproto: no v2 signature")
	// ErrInvalid means the header does not parse.
	ErrInvalid = errors.New("proxyproto: invalid v2 header")
	// ErrTooLong means the header declares more than MaxPayload bytes.
	ErrTooLong = errors.New("proxyproto: header longer than the cap")
	// ErrUntrusted means a peer outside the trusted set sent a header.
	ErrUntrusted = errors.New("proxyproto: header from an untrusted peer")
	// ErrMissing means a header was required and the connection did not start with one.
	ErrMissing = errors.New("proxyproto: no header where one is required")
)

// Header is a parsed v2 header.
type Header struct {
	Command Command
	// Source and Destination are the original endpoints; both are invalid
	// (zero) for LOCAL or an unspecified family.
	Source, Destination netip.AddrPort
	// Length is the number of bytes the header occupied on the wire.
	Length int
}

// HasSignature reports whether b starts with (or, if shorter, is a prefix of)
// the v2 signature.
func HasSignature(b []byte) bool {
	n := min(len(b), len(Signature))
	return n > 0 && bytes.Equal(b[:n], Signature[:n])
}

// Read reads one v2 header from r, exactly PrefixLen plus its declared length.
func Read(r io.Reader) (Header, error) {
	var prefix [PrefixLen]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) && !HasSignature(prefix[:]) {
			return Header{}, ErrNoSignature
		}
		return Header{}, err
	}
	if !HasSignature(prefix[:12]) {
		return Header{}, ErrNoSignature
	}
	n := int(binary.BigEndian.Uint16(prefix[14:16]))
	if n > MaxPayload {
		return Header{}, fmt.Errorf("%w: %d bytes", ErrTooLong, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Header{}, err
	}
	h, err := parse(prefix[12], prefix[13], payload)
	h.Length = PrefixLen + n
	return h, err
}

func parse(verCmd, famProto byte, payload []byte) (Header, error) {
	if verCmd>>4 != 2 {
		return Header{}, fmt.Errorf("%w: version %d", ErrInvalid, verCmd>>4)
	}
	h := Header{Command: Command(verCmd & 0x0f)}
	if h.Command != CommandLocal && h.Command != CommandProxy {
		return Header{}, fmt.Errorf("%w: command %d", ErrInvalid, h.Command)
	}
	var addrLen int
	switch famProto {
	case 0x11: // TCP over IPv4
		addrLen = 12
	case 0x21: // TCP over IPv6
		addrLen = 36
	case 0x00: // UNSPEC: the receiver uses the real endpoints
		addrLen = 0
	default:
		if h.Command == CommandLocal {
			// A LOCAL header's addresses are ignored whatever they are.
			return h, nil
		}
		return Header{}, fmt.Errorf("%w: unsupported family/protocol %#02x", ErrInvalid, famProto)
	}
	if len(payload) < addrLen {
		return Header{}, fmt.Errorf("%w: %d address bytes, need %d", ErrInvalid, len(payload), addrLen)
	}
	if err := checkTLVs(payload[addrLen:]); err != nil {
		return Header{}, err
	}
	if h.Command == CommandLocal || addrLen == 0 {
		return h, nil
	}
	a := payload[:addrLen]
	switch famProto {
	case 0x11:
		src := netip.AddrFrom4([4]byte(a[0:4]))
		dst := netip.AddrFrom4([4]byte(a[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(a[8:10]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(a[10:12]))
	case 0x21:
		src := netip.AddrFrom16([16]byte(a[0:16])).Unmap()
		dst := netip.AddrFrom16([16]byte(a[16:32])).Unmap()
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(a[32:34]))
		h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(a[34:36]))
	}
	return h, nil
}

// checkTLVs walks the type-length-value list after the addresses. Values are
// not interpreted (the AWS VPC endpoint TLV is of no use to the relay), but a
// list that does not add up means the header is corrupt.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: truncated TLV", ErrInvalid)
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if len(b) < 3+n {
			return fmt.Errorf("%w: TLV %#02x of %d bytes overruns the header", ErrInvalid, b[0], n)
		}
		b = b[3+n:]
	}
	return nil
}

// Preamble is what ReadPreamble found at the start of a connection.
type Preamble struct {
	// Header is the parsed header, nil when the connection did not start with one.
	Header *Header
	// Source is the client: the header's source for a PROXY command that
	// carries addresses, otherwise the peer (LOCAL, UNSPEC or no header).
	Source netip.AddrPort
	// Prefix holds the bytes read that turned out not to start a header; the
	// caller must replay them before the rest of the stream.
	Prefix []byte
}

// ReadPreamble applies one policy to the start of a connection from peer:
// a header is parsed only when trusted(peer) holds, a header from anyone else
// is ErrUntrusted (never guessed at), and a connection without one is
// ErrMissing when required. A load balancer's own health checks arrive with a
// LOCAL header and keep the peer as their source.
//
// It stops reading at the first byte that cannot start the signature, so a
// short greeting that is not a header is never waited on; it reads at most
// PrefixLen bytes of one that is not, and never past a header. Time is the
// caller's to bound, with a read deadline. On a reader error Prefix still
// holds what was read; a header cut short is ErrInvalid.
func ReadPreamble(r io.Reader, peer netip.AddrPort, trusted func(netip.Addr) bool, required bool) (Preamble, error) {
	p := Preamble{Source: peer}
	buf := make([]byte, 0, PrefixLen)
	// undecided: everything read so far could still be the signature.
	undecided := func() bool { return len(buf) == 0 || len(buf) < len(Signature) && HasSignature(buf) }
	for undecided() {
		n, err := r.Read(buf[len(buf):PrefixLen])
		buf = buf[:len(buf)+n]
		if err != nil && undecided() {
			p.Prefix = buf
			return p, err
		}
	}
	if !HasSignature(buf) {
		p.Prefix = buf
		if required {
			return p, ErrMissing
		}
		return p, nil
	}
	if !trusted(peer.Addr().Unmap()) {
		return p, ErrUntrusted
	}
	h, err := Read(io.MultiReader(bytes.NewReader(buf), r))
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: header cut short (%v)", ErrInvalid, err)
	}
	if err != nil {
		return p, err
	}
	p.Header = &h
	if h.Command == CommandProxy && h.Source.IsValid() {
		p.Source = h.Source
	}
	return p, nil
}

// AppendV2 appends a PROXY v2 header for a TCP connection from src to dst.
// The relay does not send headers; tests and the benchmark use it to play the NLB.
func AppendV2(b []byte, src, dst netip.AddrPort) []byte {
	b = append(b, Signature...)
	b = append(b, 0x21) // version 2, PROXY
	if src.Addr().Is4() && dst.Addr().Is4() {
		b = append(b, 0x11, 0, 12)
		s, d := src.Addr().As4(), dst.Addr().As4()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	} else {
		b = append(b, 0x21, 0, 36)
		s, d := src.Addr().As16(), dst.Addr().As16()
		b = append(b, s[:]...)
		b = append(b, d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// AppendLocal appends a PROXY v2 LOCAL header without addresses (family
// UNSPEC): what a load balancer sends on its own health-check connections.
// Tests and the benchmark use it to play the NLB.
func AppendLocal(b []byte) []byte {
	b = append(b, Signature...)
	return append(b, 0x20, 0x00, 0, 0)
}
