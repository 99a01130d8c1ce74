package agent

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// chunkConn serves data in reads of at most chunk bytes, then EOF.
type chunkConn struct {
	net.Conn
	data  []byte
	chunk int
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.chunk, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}
func (c *chunkConn) Close() error                     { return nil }
func (c *chunkConn) SetReadDeadline(time.Time) error  { return nil }
func (c *chunkConn) SetWriteDeadline(time.Time) error { return nil }

// readAll reads through a limitConn in 5-byte reads (so lengths and bodies
// split across reads).
func readAll(data []byte, chunk int) ([]byte, error) {
	lc := newLimitConn(&chunkConn{data: data, chunk: chunk}, MaxPacketBytes)
	var out []byte
	buf := make([]byte, 5)
	for {
		n, err := lc.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// remainingLength encodes n as MQTT's variable-length integer.
func remainingLength(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func publishFrame(body int) []byte {
	return append(append([]byte{0x30}, remainingLength(body)...), bytes.Repeat([]byte{'x'}, body)...)
}

// TestLimitConnPassesConformingPackets: packets up to the declared maximum
// pass byte for byte, whatever the read boundaries.
func TestLimitConnPassesConformingPackets(t *testing.T) {
	maxBody := MaxPacketBytes - 1 - len(remainingLength(MaxPacketBytes))
	var stream []byte
	stream = append(stream, 0x20, 0x03, 0, 0, 0) // CONNACK
	stream = append(stream, publishFrame(300)...)
	stream = append(stream, 0xd0, 0x00) // PINGRESP
	stream = append(stream, publishFrame(maxBody)...)
	for _, chunk := range []int{1, 3, 5} {
		got, err := readAll(stream, chunk)
		if err != nil || !bytes.Equal(got, stream) {
			t.Fatalf("chunk %d: %d of %d bytes, err %v", chunk, len(got), len(stream), err)
		}
	}
}

// TestLimitConnRefusesHostileFrames: a frame announcing more than the
// declared maximum (the remaining length is enough: the body never needs
// to arrive) or a malformed length fails the read that carries it.
func TestLimitConnRefusesHostileFrames(t *testing.T) {
	maxBody := MaxPacketBytes - 1 - len(remainingLength(MaxPacketBytes))
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"one byte over":     {append([]byte{0x30}, remainingLength(maxBody+1)...), "maximum packet size of 132096"},
		"256 MiB announced": {[]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, "MQTT packet of 268435460 bytes"},
		"after a good one":  {append(append([]byte{0xd0, 0x00}, 0x30), remainingLength(200<<10)...), "maximum packet size"},
		"length of 5 bytes": {[]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, "remaining length longer than 4 bytes"},
	} {
		_, err := readAll(tc.data, 2)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}

// FuzzLimitConn: any byte stream, any read size: never a panic, bytes pass
// unchanged up to an error, and an error only for a frame over the limit
// or a malformed length.
func FuzzLimitConn(f *testing.F) {
	f.Add([]byte{0x20, 0x03, 0, 0, 0, 0xd0, 0x00}, uint8(1))
	f.Add(publishFrame(200), uint8(7))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, uint8(2))
	f.Add([]byte{0x30, 0x80, 0x80, 0x80, 0x80, 0x01}, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		got, err := readAll(data, int(chunk)%16+1)
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("output is not a prefix of the input")
		}
		if err != nil && !strings.Contains(err.Error(), "maximum packet size") && !strings.Contains(err.Error(), "longer than 4 bytes") {
			t.Fatalf("unexpected error %v", err)
		}
		if err == nil && len(got) != len(data) {
			t.Fatalf("%d of %d bytes without an error", len(got), len(data))
		}
	})
}
