//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

// The set-up test's two roles: the answering upstream and the closed-loop
// generator. Neither does any TLS crypto; the proxy in between does its
// whole job for each connection (read the ClientHello, parse the SNI,
// route, dial, forward, relay the answer, forward both FINs, close).
//
// Who closes first: the upstream, right after its answer. The proxy
// forwards that FIN to the client, the client reads the answer and EOF and
// then closes, and the proxy forwards the client's FIN to the upstream.
// So each leg's TIME_WAIT lands on its listening side (the upstream's and
// the proxy's accepted sockets), never on an ephemeral port: neither the
// generators' connects nor the proxy's connects to the upstream wait for
// ports in TIME_WAIT, and a SYN that meets an old TIME_WAIT entry of the
// same four-tuple is accepted by its newer timestamp. Every FIN is a real
// FIN (no SO_LINGER 0, which would turn the close into a reset and change
// the proxy's work). The generators also spread their connects over
// -setup-sources loopback source addresses (IP_BIND_ADDRESS_NO_PORT, so the
// kernel picks the port at connect time per destination, not at bind time),
// which makes four-tuples recur less often.

// runAnswer is the set-up test's upstream (answerServer): for each
// connection it reads one TLS handshake record, writes setupAnswer and
// closes. It prints "ready ADDR" and serves until stdin closes.
func runAnswer() error {
	a, addr, err := listenAnswer()
	if err != nil {
		return err
	}
	defer a.close()
	var stop atomic.Bool
	go func() { waitStdinClosed(); stop.Store(true) }()
	fmt.Println("ready", addr)
	return a.serve(&stop)
}

// runSetupGen is one set-up generator: -setup-conc connections in flight
// (-setup-client: one epoll loop, or a goroutine per connection), each slot
// in a closed loop (connect to -target, send the ClientHello, read the answer
// and EOF, close), from the start time the orchestrator writes on stdin
// ("start UNIX-NS") until -setup-warmup + -setup-window later.
// Connections finished inside the recorded window (after the warm-up) are
// counted: "setup OK ERR FIRST-ERROR".
func runSetupGen() error {
	hello, err := hellogen.Capture(&tls.Config{ServerName: benchName})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	// The orchestrator answers with the common start time once every
	// generator is ready.
	line, err := bufio.NewReader(io.LimitReader(os.Stdin, 64)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no start time: %w", err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "start ")), 10, 64)
	if err != nil {
		return fmt.Errorf("start time %q: %w", line, err)
	}
	start := time.Unix(0, ns)
	from := start.Add(*setupWarmup)
	to := from.Add(*setupWindow)
	time.Sleep(time.Until(start))
	var c setupCounts
	switch *setupClient {
	case "epoll":
		c, err = runEpollGen(*target, hello, *setupConc, *genIndex, *setupSources, from, to, 0)
		if err != nil {
			return err
		}
	case "net":
		c = runNetGen(hello, from, to)
	default:
		return fmt.Errorf("-setup-client %q: want epoll or net", *setupClient)
	}
	fmt.Printf("setup %d %d %q\n", c.ok, c.failed, c.firstErr)
	return nil
}

// runNetGen is the generator on Go's net package: one goroutine per
// connection in flight, each in a closed loop.
func runNetGen(hello []byte, from, to time.Time) setupCounts {
	var mu sync.Mutex
	var c setupCounts
	var wg sync.WaitGroup
	for j := range *setupConc {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+(*genIndex**setupConc+j)%max(*setupSources, 1)))}
		d := &net.Dialer{LocalAddr: src, Control: bindNoPort, KeepAlive: -1}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(setupAnswer)+1)
			for {
				now := time.Now()
				if !now.Before(to) {
					return
				}
				err := setupOnce(d, hello, buf, now.Add(*connTimeout))
				mu.Lock()
				c.addIn(err, time.Now(), from, to)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return c
}

// setupOnce makes one connection: send hello, expect exactly setupAnswer
// and then EOF (at most len(buf) bytes are read), all before deadline.
func setupOnce(d *net.Dialer, hello, buf []byte, deadline time.Time) error {
	d.Deadline = deadline
	c, err := d.Dial("tcp", *target)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := c.Write(hello); err != nil {
		return err
	}
	got := 0
	for {
		n, err := c.Read(buf[got:])
		got += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if got == len(buf) {
			return fmt.Errorf("answer longer than %d bytes", len(setupAnswer))
		}
	}
	if !bytes.Equal(buf[:got], setupAnswer) {
		return fmt.Errorf("answer %x, want %x", buf[:got], setupAnswer)
	}
	return nil
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT on a dialing socket: binding the
// source address then leaves the port to connect(), which picks one free
// for that destination instead of one free for every destination.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	return errors.Join(err, serr)
}

// setupCounts are the connections finished inside the recorded window.
type setupCounts struct {
	ok, failed int64
	firstErr   string
}

func (c *setupCounts) add(err error) {
	if err == nil {
		c.ok++
		return
	}
	c.failed++
	if c.firstErr == "" {
		c.firstErr = err.Error()
	}
}

// addIn counts a connection that ended at now if now is in [from, to).
func (c *setupCounts) addIn(err error, now, from, to time.Time) {
	if !now.Before(from) && now.Before(to) {
		c.add(err)
	}
}
