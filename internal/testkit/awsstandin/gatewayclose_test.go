package awsstandin

import (
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// gatedConn lets the first write (the ClientHello) through and holds every
// later one (the client's Finished) until release is closed.
type gatedConn struct {
	net.Conn
	once    sync.Once
	held    chan struct{}
	release chan struct{}
	writes  int
}

func (c *gatedConn) Write(b []byte) (int, error) {
	c.writes++
	if c.writes > 1 {
		c.once.Do(func() { close(c.held) })
		<-c.release
	}
	return c.Conn.Write(b)
}

// TestGatewayCloseDuringHandshake: a WebSocket-path TLS handshake that
// completes after Close must not panic the stand-in (it used to send the
// connection on a channel Close had closed) and the connection is closed.
func TestGatewayCloseDuringHandshake(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	const host = "abc-ats.iot.eu-west-1.amazonaws.com"
	cert, err := ca.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	g, err := StartIoTGateway(cert, ca.Pool, &CredentialsProvider{issued: map[string]IssuedCredentials{}}, "eu-west-1", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	gc := &gatedConn{Conn: raw, held: make(chan struct{}), release: make(chan struct{})}
	tc := tls.Client(gc, &tls.Config{RootCAs: ca.Pool, ServerName: host, NextProtos: []string{"http/1.1"}})
	handshake := make(chan error, 1)
	go func() { handshake <- tc.Handshake() }()
	select {
	case <-gc.held:
	case <-time.After(60 * time.Second):
		t.Fatal("the handshake never reached the client's Finished")
	}
	g.Close()
	// Let the accept loop see its listener closed (where the channel used
	// to be closed) before the handshake completes.
	time.Sleep(100 * time.Millisecond)
	close(gc.release)
	<-handshake
	raw.SetReadDeadline(time.Now().Add(60 * time.Second))
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Fatal("the gateway kept a connection accepted after Close")
	}
}
