// Package clienthello reads a TLS ClientHello off a connection without
// terminating TLS, so a relay can route on the server name and then forward
// the exact bytes it read.
//
// The hello may arrive in several TCP segments and in several TLS records
// (RFC 8446 §5.1 allows a handshake message to be fragmented across records);
// post-quantum key shares (X25519MLKEM768) make hellos of ~1.7 KB common.
// Read reassembles up to MaxHelloLength bytes of handshake message, reading
// exactly the records it needs and nothing after them, so the rest of the
// stream is still in the socket for the relay's splice path.
package clienthello

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxHelloLength caps the reassembled ClientHello handshake message (header
// included), as caddy-l4 does; real hellos, post-quantum ones included, are
// far below it.
const MaxHelloLength = 16 << 10

// MaxALPN is how many ALPN protocol names Read keeps. Every name of a
// longer list is still parsed and checked, so a malformed list is refused
// as before, but only the first MaxALPN are kept: ALPN is only logged, the
// relay forwards the hello byte for byte and the upstream's TLS server
// chooses the protocol, so a longer list is not refused (the relay would
// otherwise be stricter than the server it fronts; RFC 7301 bounds the list
// only by its 2^16-1-byte length). Without the cap a 16 KiB hello of
// one-byte names would hold thousands of strings for the connection's
// life. IoT clients offer one or two protocols ("x-amzn-mqtt-ca", or
// "mqtt" over custom authentication; browsers "h2", "http/1.1").
const MaxALPN = 8

const (
	recordTypeHandshake   = 0x16
	handshakeClientHello  = 0x01
	recordHeaderLen       = 5
	handshakeHeaderLen    = 4
	maxRecordPayload      = 1<<14 + 2048 // TLSCiphertext bound; a plaintext hello record is ≤ 2^14
	extServerName         = 0x0000
	extALPN               = 0x0010
	extEncryptedHello     = 0xfe0d
	serverNameTypeHost    = 0
	maxServerNameLength   = 253 + 1 // a DNS name plus an optional trailing dot
	maxExtensionsExamined = 1 << 10
)

// Errors Read returns for bytes that are not an acceptable ClientHello. Other
// errors come from the reader (io.EOF, io.ErrUnexpectedEOF, deadlines).
var (
	// ErrNotTLS means the first bytes are not a TLS handshake record holding a ClientHello.
	ErrNotTLS = errors.New("clienthello: not a TLS ClientHello")
	// ErrTooLong means the hello's declared length exceeds MaxHelloLength.
	ErrTooLong = errors.New("clienthello: hello longer than the cap")
	// ErrMalformed means the records or the hello body do not parse.
	ErrMalformed = errors.New("clienthello: malformed hello")
)

// Hello is what the relay needs from a ClientHello.
type Hello struct {
	// Raw holds every byte read, record headers included, to be written to the
	// upstream before relaying the rest of the stream.
	Raw []byte
	// ServerName is the SNI host_name, ASCII letters lower-cased, trailing
	// dot removed (NormalizeName); empty when the extension is absent. It is
	// not validated: the relay refuses names failing ValidNameBytes.
	ServerName string
	// ECH reports an encrypted_client_hello extension (0xfe0d): the real
	// server name is hidden, so the relay cannot route it.
	ECH bool
	// ALPN lists the offered application protocols (for logs: "x-amzn-mqtt-ca",
	// "http/1.1"), at most the first MaxALPN of them.
	ALPN []string
	// Records is the number of TLS records the hello spanned.
	Records int
}

// Read reads one ClientHello from r, reassembling it from as many handshake
// records as needed, and never reads past the record that completes it.
// Callers bound the time it may take with a read deadline.
func Read(r io.Reader) (*Hello, error) {
	h := &Hello{Raw: make([]byte, 0, 2048)}
	var msg []byte // reassembled handshake message
	want := -1     // total handshake message length once known
	for want < 0 || len(msg) < want {
		start := len(h.Raw)
		h.Raw = append(h.Raw, make([]byte, recordHeaderLen)...)
		if _, err := io.ReadFull(r, h.Raw[start:]); err != nil {
			if h.Records == 0 && errors.Is(err, io.ErrUnexpectedEOF) {
				// A short non-TLS greeting followed by a close.
				return h, fmt.Errorf("%w: %d bytes then EOF", ErrNotTLS, len(h.Raw[start:]))
			}
			return h, err
		}
		hdr := h.Raw[start:]
		if hdr[0] != recordTypeHandshake || hdr[1] != 3 {
			if h.Records == 0 {
				return h, ErrNotTLS
			}
			return h, fmt.Errorf("%w: record type %#x inside a fragmented hello", ErrMalformed, hdr[0])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n == 0 || n > maxRecordPayload {
			return h, fmt.Errorf("%w: record length %d", ErrMalformed, n)
		}
		if want >= 0 && n > want-len(msg) {
			// The record carries bytes after the hello (a second handshake
			// message): clients do not do that before the server replies.
			return h, fmt.Errorf("%w: record runs past the hello", ErrMalformed)
		}
		if want < 0 && len(msg)+n > MaxHelloLength+handshakeHeaderLen {
			return h, ErrTooLong
		}
		start = len(h.Raw)
		h.Raw = append(h.Raw, make([]byte, n)...)
		if _, err := io.ReadFull(r, h.Raw[start:]); err != nil {
			return h, err
		}
		h.Records++
		msg = append(msg, h.Raw[start:]...)
		if want < 0 && len(msg) >= handshakeHeaderLen {
			if msg[0] != handshakeClientHello {
				return h, ErrNotTLS
			}
			body := int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])
			want = handshakeHeaderLen + body
			if want > MaxHelloLength {
				return h, ErrTooLong
			}
			if len(msg) > want {
				return h, fmt.Errorf("%w: record runs past the hello", ErrMalformed)
			}
		}
	}
	if err := h.parse(msg[handshakeHeaderLen:]); err != nil {
		return h, err
	}
	return h, nil
}

// reader is a bounds-checked cursor over the hello body.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

// vec reads a length-prefixed vector whose length field is lenBytes long.
func (r *reader) vec(lenBytes int) *reader {
	var n int
	if lenBytes == 1 {
		n = r.u8()
	} else {
		n = r.u16()
	}
	return &reader{b: r.bytes(n), bad: r.bad}
}

func (h *Hello) parse(body []byte) error {
	r := &reader{b: body}
	r.bytes(2)  // legacy_version
	r.bytes(32) // random
	if sid := r.vec(1); len(sid.b) > 32 {
		return fmt.Errorf("%w: session id of %d bytes", ErrMalformed, len(sid.b))
	}
	if cs := r.vec(2); len(cs.b)%2 != 0 || len(cs.b) == 0 {
		return fmt.Errorf("%w: cipher suites", ErrMalformed)
	}
	if cm := r.vec(1); len(cm.b) == 0 {
		return fmt.Errorf("%w: compression methods", ErrMalformed)
	}
	if r.bad {
		return fmt.Errorf("%w: truncated hello", ErrMalformed)
	}
	if len(r.b) == 0 {
		return nil // no extensions: no SNI
	}
	exts := r.vec(2)
	if r.bad || len(r.b) != 0 {
		return fmt.Errorf("%w: extensions block", ErrMalformed)
	}
	seen := make(map[int]bool)
	for i := 0; len(exts.b) > 0; i++ {
		if i >= maxExtensionsExamined {
			return fmt.Errorf("%w: too many extensions", ErrMalformed)
		}
		typ := exts.u16()
		data := exts.vec(2)
		if exts.bad || data.bad {
			return fmt.Errorf("%w: truncated extension", ErrMalformed)
		}
		if seen[typ] {
			return fmt.Errorf("%w: duplicate extension %#04x", ErrMalformed, typ)
		}
		seen[typ] = true
		switch typ {
		case extServerName:
			name, err := parseServerName(data)
			if err != nil {
				return err
			}
			h.ServerName = name
		case extALPN:
			list := data.vec(2)
			for len(list.b) > 0 && !list.bad {
				p := list.vec(1)
				if p.bad || len(p.b) == 0 {
					return fmt.Errorf("%w: alpn", ErrMalformed)
				}
				if len(h.ALPN) < MaxALPN {
					h.ALPN = append(h.ALPN, string(p.b))
				}
			}
			if list.bad || data.bad || len(data.b) != 0 {
				return fmt.Errorf("%w: alpn", ErrMalformed)
			}
		case extEncryptedHello:
			h.ECH = true
		}
	}
	return nil
}

func parseServerName(data *reader) (string, error) {
	list := data.vec(2)
	if data.bad || len(data.b) != 0 || list.bad {
		return "", fmt.Errorf("%w: server_name", ErrMalformed)
	}
	var name string
	for len(list.b) > 0 {
		typ := list.u8()
		v := list.vec(2)
		if list.bad || v.bad {
			return "", fmt.Errorf("%w: server_name entry", ErrMalformed)
		}
		if typ != serverNameTypeHost {
			continue
		}
		if name != "" {
			return "", fmt.Errorf("%w: two host names", ErrMalformed)
		}
		if len(v.b) == 0 || len(v.b) > maxServerNameLength {
			return "", fmt.Errorf("%w: host name of %d bytes", ErrMalformed, len(v.b))
		}
		name = NormalizeName(string(v.b))
		if name == "" {
			return "", fmt.Errorf("%w: empty host name", ErrMalformed)
		}
	}
	return name, nil
}

// NormalizeName lower-cases the ASCII letters of an SNI, CONNECT host or
// route name and drops one trailing dot, so "ABC.example.com." and
// "abc.example.com" match the same route. Only ASCII is folded: Unicode case
// mapping (strings.ToLower) turns U+212A KELVIN SIGN into "k" and U+0130 into
// "i", which would let a name that is not the configured one match it. Other
// bytes are left as they are for ValidNameBytes to refuse.
func NormalizeName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// ValidNameBytes reports whether s is non-empty and holds only ASCII
// letters, digits, '-' and '.': the only bytes a host name the relay routes
// can contain (RFC 1123 host names; RFC 6066 sends SNI as ASCII). Anything
// else (non-ASCII, NUL, '_', ':', '*') is refused before a name is compared,
// and so is an empty label (a leading dot, "..", or a dot left at the end
// after NormalizeName removed the root's): no routed name has one
// (relayspec.CheckServerName), and NormalizeName would not be idempotent on
// it ("a.." becomes "a.", then "a").
func ValidNameBytes(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
