package agent

import (
	"fmt"
	"net"
	"sync"

	"github.com/agentgate/agentgate/contract/topics"
)

// MaxPacketBytes is the MQTT maximum packet size the agent declares in
// CONNECT (IoT's message limit plus room for the topic and header) and
// enforces on what it reads.
const MaxPacketBytes = topics.MaxMessageBytes + 1024

// limitConn enforces the declared maximum packet size on the read side:
// paho trusts a packet's remaining length and allocates it before reading,
// so a broken or hostile peer could make the agent allocate up to 256 MiB.
// It follows the MQTT framing (fixed header byte, variable-length
// remaining length, body) across reads and fails the read that carries an
// oversize or malformed length, before paho sees it.
type limitConn struct {
	net.Conn
	max uint32

	mu        sync.Mutex
	err       error
	state     int // 0: expecting a fixed header byte, 1: in the length, 2: in the body
	length    uint32
	mult      uint32
	lenBytes  int
	remaining uint32
}

func newLimitConn(c net.Conn, max uint32) *limitConn { return &limitConn{Conn: c, max: max} }

func (c *limitConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if ferr := c.follow(p[:n]); ferr != nil {
		c.err = ferr
		c.Conn.Close()
		return 0, ferr
	}
	return n, err
}

// follow advances the framing state over b.
func (c *limitConn) follow(b []byte) error {
	for len(b) > 0 {
		switch c.state {
		case 0:
			c.state, c.length, c.mult, c.lenBytes = 1, 0, 1, 0
			b = b[1:]
		case 1:
			v := b[0]
			b = b[1:]
			c.length += uint32(v&0x7f) * c.mult
			c.lenBytes++
			if v&0x80 != 0 {
				if c.lenBytes == 4 {
					return fmt.Errorf("malformed MQTT packet from the broker: remaining length longer than 4 bytes")
				}
				c.mult *= 128
				continue
			}
			if total := uint64(1+c.lenBytes) + uint64(c.length); total > uint64(c.max) {
				return fmt.Errorf("the broker sent an MQTT packet of %d bytes; the agent declared a maximum packet size of %d", total, c.max)
			}
			c.remaining = c.length
			c.state = 2
			if c.remaining == 0 {
				c.state = 0
			}
		case 2:
			k := min(uint32(len(b)), c.remaining)
			b = b[k:]
			c.remaining -= k
			if c.remaining == 0 {
				c.state = 0
			}
		}
	}
	return nil
}
