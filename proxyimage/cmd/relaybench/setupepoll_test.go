//go:build linux

package main

import (
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

func TestSetupCountsWindow(t *testing.T) {
	from := time.Unix(100, 0)
	to := from.Add(time.Second)
	var c setupCounts
	c.addIn(nil, from.Add(-time.Nanosecond), from, to) // warm-up: not counted
	c.addIn(nil, from, from, to)
	c.addIn(errTest("first"), from.Add(time.Millisecond), from, to)
	c.addIn(errTest("second"), to.Add(-time.Nanosecond), from, to)
	c.addIn(nil, to, from, to) // after the window
	if c.ok != 1 || c.failed != 2 || c.firstErr != "first" {
		t.Errorf("%+v", c)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// serveAnswers runs handle for every connection to a loopback listener.
func serveAnswers(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, handle)
	return ln.Addr().String()
}

func testHello(t *testing.T) []byte {
	t.Helper()
	h, err := hellogen.Capture(&tls.Config{ServerName: benchName})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestEpollGenAgainstAnswer(t *testing.T) {
	a, addr, err := listenAnswer()
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	served := make(chan error, 1)
	go func() { served <- a.serve(&stop) }()
	defer func() {
		stop.Store(true)
		if err := <-served; err != nil {
			t.Error(err)
		}
		a.close()
	}()
	// A count, not a time: 40 connections, with a window no loaded
	// machine runs out of.
	now := time.Now()
	c, err := runEpollGen(addr, testHello(t), 4, 0, 2, now, now.Add(time.Minute), 40)
	if err != nil {
		t.Fatal(err)
	}
	if c.ok < 40 || c.failed != 0 {
		t.Fatalf("%+v: want 40 connections and no errors", c)
	}
	// Connections can finish inside open (the upstream answers that fast
	// here): without a limit the generator must still run until the
	// window ends.
	now = time.Now()
	to := now.Add(200 * time.Millisecond)
	if _, err := runEpollGen(addr, testHello(t), 4, 0, 2, now, to, 0); err != nil {
		t.Fatal(err)
	}
	if time.Now().Before(to) {
		t.Errorf("returned %v before the window's end", time.Until(to))
	}
}

func TestEpollGenCatchesWrongAnswers(t *testing.T) {
	for name, reply := range map[string][]byte{
		"longer":   append(append([]byte(nil), setupAnswer...), 0),
		"other":    {0x15, 3, 3, 0, 2, 2, 0x50},
		"nothing":  nil,
		"truncate": setupAnswer[:3],
	} {
		t.Run(name, func(t *testing.T) {
			addr := serveAnswers(t, func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if readRecord(c, make([]byte, 5+maxHelloRecord)) == nil {
					c.Write(reply)
				}
			})
			now := time.Now()
			c, err := runEpollGen(addr, testHello(t), 2, 0, 1, now, now.Add(time.Minute), 4)
			if err != nil {
				t.Fatal(err)
			}
			if c.ok != 0 || c.failed == 0 || !strings.Contains(c.firstErr, "answer") {
				t.Fatalf("%+v: want every connection failed on its answer", c)
			}
		})
	}
}

func TestEpollGenRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	now := time.Now()
	c, err := runEpollGen(dead, testHello(t), 2, 0, 1, now, now.Add(time.Minute), 4)
	if err != nil {
		t.Fatal(err)
	}
	if c.ok != 0 || c.failed == 0 {
		t.Fatalf("%+v: want refused connections counted as errors", c)
	}
	if _, err := runEpollGen("localhost:1", nil, 1, 0, 1, now, now, 0); err == nil {
		t.Error("a host name target was accepted")
	}
}

// readRecord reads one TLS handshake record from c into buf (which holds
// the largest one).
func readRecord(c net.Conn, buf []byte) error {
	got, want := 0, 5
	for got < want {
		n, err := c.Read(buf[got:want])
		got += n
		if err != nil {
			return err
		}
		if want == 5 && got >= 5 {
			body, err := helloRecordLen(buf[:5])
			if err != nil {
				return err
			}
			want = 5 + body
		}
	}
	return nil
}
