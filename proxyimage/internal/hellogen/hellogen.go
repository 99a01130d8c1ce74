// Package hellogen produces TLS ClientHellos for tests, fuzz seeds and the
// benchmark: real ones captured from crypto/tls, hand-built ones with exact
// extensions (an IP-literal SNI, ECH, padding), and re-fragmentations of a
// hello into several TLS records.
package hellogen

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"time"
)

// Capture returns the first flight (the ClientHello record or records) that
// crypto/tls sends with cfg. The handshake is abandoned after that.
func Capture(cfg *tls.Config) ([]byte, error) {
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		c := tls.Client(client, cfg)
		_ = c.Handshake() // fails when the pipe closes
		client.Close()
	}()
	_ = server.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out []byte
	buf := make([]byte, 64<<10)
	// Read records until the handshake message they carry is complete.
	for {
		n, err := server.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return nil, err
		}
		if complete(out) {
			return out, nil
		}
	}
}

func complete(b []byte) bool {
	var msg []byte
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if len(b) < 5+n {
			return false
		}
		msg = append(msg, b[5:5+n]...)
		b = b[5+n:]
	}
	if len(msg) < 4 {
		return false
	}
	return len(msg) >= 4+(int(msg[1])<<16|int(msg[2])<<8|int(msg[3]))
}

// Handshake extracts the handshake message from one or more records.
func Handshake(records []byte) ([]byte, error) {
	var msg []byte
	for len(records) > 0 {
		if len(records) < 5 {
			return nil, errors.New("hellogen: truncated record header")
		}
		n := int(binary.BigEndian.Uint16(records[3:5]))
		if len(records) < 5+n {
			return nil, errors.New("hellogen: truncated record")
		}
		msg = append(msg, records[5:5+n]...)
		records = records[5+n:]
	}
	return msg, nil
}

// Records wraps a handshake message into TLS handshake records, cutting it
// at the given offsets (ascending, inside the message).
func Records(msg []byte, cuts ...int) []byte {
	var out []byte
	prev := 0
	for _, c := range append(cuts, len(msg)) {
		frag := msg[prev:c]
		out = append(out, 0x16, 3, 1)
		out = binary.BigEndian.AppendUint16(out, uint16(len(frag)))
		out = append(out, frag...)
		prev = c
	}
	return out
}

// Extension is one raw ClientHello extension.
type Extension struct {
	Type uint16
	Data []byte
}

// SNI returns a server_name extension for host (sent as given, unchecked).
func SNI(host string) Extension {
	var d []byte
	d = binary.BigEndian.AppendUint16(d, uint16(len(host)+3))
	d = append(d, 0)
	d = binary.BigEndian.AppendUint16(d, uint16(len(host)))
	d = append(d, host...)
	return Extension{Type: 0, Data: d}
}

// ECH returns an encrypted_client_hello extension with an opaque payload.
func ECH() Extension { return Extension{Type: 0xfe0d, Data: []byte{0, 0, 1, 0, 1, 7, 0, 0, 0, 0}} }

// Padding returns a padding extension (type 21) of n zero bytes.
func Padding(n int) Extension { return Extension{Type: 21, Data: make([]byte, n)} }

// Build returns a minimal ClientHello handshake message with exts.
func Build(exts ...Extension) []byte {
	var body []byte
	body = append(body, 3, 3)                // legacy_version
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // TLS_AES_128_GCM_SHA256
	body = append(body, 1, 0)                // null compression
	var e []byte
	for _, x := range exts {
		e = binary.BigEndian.AppendUint16(e, x.Type)
		e = binary.BigEndian.AppendUint16(e, uint16(len(x.Data)))
		e = append(e, x.Data...)
	}
	if len(exts) > 0 {
		body = binary.BigEndian.AppendUint16(body, uint16(len(e)))
		body = append(body, e...)
	}
	msg := []byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	return append(msg, body...)
}

// Record wraps a handshake message in as many records as needed (≤16 KiB each).
func Record(msg []byte) []byte {
	var cuts []int
	for c := 1 << 14; c < len(msg); c += 1 << 14 {
		cuts = append(cuts, c)
	}
	return Records(msg, cuts...)
}
