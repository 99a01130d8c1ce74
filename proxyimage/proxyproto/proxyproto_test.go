package proxyproto_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/agentgate/agentgate/proxyimage/proxyproto"
)

func header(verCmd, fam byte, payload []byte) []byte {
	b := append([]byte{}, proxyproto.Signature...)
	b = append(b, verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	return append(b, payload...)
}

func TestReadTCP4AndTCP6(t *testing.T) {
	src4 := netip.MustParseAddrPort("203.0.113.7:40000")
	dst4 := netip.MustParseAddrPort("10.0.1.5:8443")
	src6 := netip.MustParseAddrPort("[2001:db8::1]:40001")
	dst6 := netip.MustParseAddrPort("[2001:db8::2]:8443")
	for _, tc := range []struct{ src, dst netip.AddrPort }{{src4, dst4}, {src6, dst6}} {
		in := proxyproto.AppendV2(nil, tc.src, tc.dst)
		in = append(in, "TLS..."...)
		r := bytes.NewReader(in)
		h, err := proxyproto.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		if h.Command != proxyproto.CommandProxy || h.Source != tc.src || h.Destination != tc.dst {
			t.Errorf("got %+v", h)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "TLS..." {
			t.Errorf("read past the header: left %q", rest)
		}
	}
}

func TestReadTLVsAndLocal(t *testing.T) {
	addrs := proxyproto.AppendV2(nil, netip.MustParseAddrPort("1.2.3.4:1"), netip.MustParseAddrPort("5.6.7.8:2"))[16:]
	// AWS NLB VPC endpoint TLV (0xEA, subtype 0x01) and a NOOP (0x04).
	tlvs := []byte{0xEA, 0, 5, 0x01, 'v', 'p', 'c', 'e', 0x04, 0, 0}
	h, err := proxyproto.Read(bytes.NewReader(header(0x21, 0x11, append(append([]byte{}, addrs...), tlvs...))))
	if err != nil || h.Source.String() != "1.2.3.4:1" || h.Length != 16+12+len(tlvs) {
		t.Fatalf("TLVs: %+v %v", h, err)
	}
	h, err = proxyproto.Read(bytes.NewReader(header(0x20, 0x00, nil)))
	if err != nil || h.Command != proxyproto.CommandLocal || h.Source.IsValid() {
		t.Fatalf("LOCAL: %+v %v", h, err)
	}
}

func TestReadRejects(t *testing.T) {
	addrs := make([]byte, 12)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"tls", []byte{0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3, 0, 0, 0, 0, 0}, proxyproto.ErrNoSignature},
		{"v1 text", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ErrNoSignature},
		{"short", []byte{0x0D, 0x0A}, proxyproto.ErrNoSignature},
		{"version 1 nibble", header(0x11, 0x11, addrs), proxyproto.ErrInvalid},
		{"command 2", header(0x22, 0x11, addrs), proxyproto.ErrInvalid},
		{"udp", header(0x21, 0x12, addrs), proxyproto.ErrInvalid},
		{"unix", header(0x21, 0x31, make([]byte, 216)), proxyproto.ErrInvalid},
		{"short tcp4", header(0x21, 0x11, addrs[:11]), proxyproto.ErrInvalid},
		{"short tcp6", header(0x21, 0x21, make([]byte, 35)), proxyproto.ErrInvalid},
		{"truncated tlv", header(0x21, 0x11, append(append([]byte{}, addrs...), 0xEA, 0, 9, 1)), proxyproto.ErrInvalid},
		{"over cap", header(0x21, 0x11, make([]byte, proxyproto.MaxPayload+1)), proxyproto.ErrTooLong},
		{"truncated payload", header(0x21, 0x11, addrs)[:20], io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := proxyproto.Read(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzRead: no panic, never reads more than the declared header, and a
// PROXY result always carries addresses of the declared family.
func FuzzRead(f *testing.F) {
	f.Add(proxyproto.AppendV2(nil, netip.MustParseAddrPort("203.0.113.7:40000"), netip.MustParseAddrPort("10.0.0.1:8443")))
	f.Add(proxyproto.AppendV2(nil, netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2")))
	f.Add(header(0x20, 0x00, nil))
	f.Add(header(0x21, 0x11, append(make([]byte, 12), 0xEA, 0, 1, 1)))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		h, err := proxyproto.Read(r)
		if err != nil {
			return
		}
		consumed := len(in) - r.Len()
		if consumed != h.Length || h.Length > proxyproto.PrefixLen+proxyproto.MaxPayload {
			t.Fatalf("consumed %d, header says %d", consumed, h.Length)
		}
		if h.Command == proxyproto.CommandProxy && h.Source.IsValid() != h.Destination.IsValid() {
			t.Fatalf("half an address: %+v", h)
		}
		if h.Command == proxyproto.CommandLocal && h.Source.IsValid() {
			t.Fatalf("LOCAL with a source: %+v", h)
		}
	})
}
