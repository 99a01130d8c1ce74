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

// oneByteReader returns at most one byte per Read, as a slow peer does.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(b []byte) (int, error) { return o.r.Read(b[:min(len(b), 1)]) }

func TestReadPreamble(t *testing.T) {
	peer := netip.MustParseAddrPort("10.0.0.9:5000")
	client := netip.MustParseAddrPort("203.0.113.7:40000")
	proxied := proxyproto.AppendV2(nil, client, netip.MustParseAddrPort("10.0.0.1:8443"))
	local := proxyproto.AppendLocal(nil)
	tlsStart := []byte{0x16, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3, 0, 0, 0, 0, 0, 9, 9}
	trustAll := func(netip.Addr) bool { return true }
	trustNone := func(netip.Addr) bool { return false }
	cases := []struct {
		name       string
		in         []byte
		trusted    func(netip.Addr) bool
		required   bool
		wantErr    error
		wantSource netip.AddrPort
		wantPrefix string
		wantRest   string
	}{
		{name: "PROXY from a trusted peer", in: append(proxied, "hello"...), trusted: trustAll, wantSource: client, wantRest: "hello"},
		{name: "LOCAL keeps the peer", in: append(local, "GET"...), trusted: trustAll, required: true, wantSource: peer, wantRest: "GET"},
		{name: "no header, optional", in: tlsStart, trusted: trustAll, wantSource: peer, wantPrefix: string(tlsStart[:1]), wantRest: string(tlsStart[1:])},
		{name: "no header, required", in: tlsStart, trusted: trustAll, required: true, wantErr: proxyproto.ErrMissing},
		{name: "short greeting is not waited on", in: []byte("GE"), trusted: trustAll, wantSource: peer, wantPrefix: "G", wantRest: "E"},
		{name: "header from an untrusted peer", in: proxied, trusted: trustNone, wantErr: proxyproto.ErrUntrusted},
		{name: "LOCAL from an untrusted peer", in: local, trusted: trustNone, required: true, wantErr: proxyproto.ErrUntrusted},
		{name: "signature then EOF", in: proxyproto.Signature, trusted: trustAll, wantErr: proxyproto.ErrInvalid},
		{name: "header cut short", in: proxied[:20], trusted: trustAll, wantErr: proxyproto.ErrInvalid},
		{name: "signature prefix then EOF", in: proxyproto.Signature[:5], trusted: trustAll, wantErr: io.EOF},
		{name: "nothing", in: nil, trusted: trustAll, wantErr: io.EOF},
		{name: "over the cap", in: header(0x21, 0x11, make([]byte, proxyproto.MaxPayload+1)), trusted: trustAll, wantErr: proxyproto.ErrTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := bytes.NewReader(tc.in)
			p, err := proxyproto.ReadPreamble(oneByteReader{r}, peer, tc.trusted, tc.required)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			rest, _ := io.ReadAll(r)
			if p.Source != tc.wantSource || string(p.Prefix) != tc.wantPrefix || string(rest) != tc.wantRest {
				t.Fatalf("source %v prefix %q rest %q; want %v %q %q", p.Source, p.Prefix, rest, tc.wantSource, tc.wantPrefix, tc.wantRest)
			}
		})
	}
}

// FuzzReadPreamble: whatever the bytes, the preamble never reads past a
// header, and the bytes it read but did not parse are handed back (nothing
// is lost), so prefix + rest is exactly what followed the header.
func FuzzReadPreamble(f *testing.F) {
	f.Add(proxyproto.AppendV2(nil, netip.MustParseAddrPort("203.0.113.7:40000"), netip.MustParseAddrPort("10.0.0.1:8443")), false)
	f.Add(proxyproto.AppendLocal(nil), true)
	f.Add([]byte{0x16, 3, 1, 0, 200, 1}, false)
	f.Add([]byte("GET /readyz HTTP/1.1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, required bool) {
		r := bytes.NewReader(in)
		p, err := proxyproto.ReadPreamble(r, netip.MustParseAddrPort("10.0.0.9:5000"), func(netip.Addr) bool { return true }, required)
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(r)
		consumed := 0
		if p.Header != nil {
			consumed = p.Header.Length
			if len(p.Prefix) != 0 {
				t.Fatalf("a header and a prefix: %+v", p)
			}
		} else if len(p.Prefix) > proxyproto.PrefixLen {
			t.Fatalf("read %d bytes looking for a header", len(p.Prefix))
		}
		if got := append(append([]byte{}, p.Prefix...), rest...); !bytes.Equal(got, in[consumed:]) {
			t.Fatalf("prefix + rest = %q, want %q", got, in[consumed:])
		}
	})
}
