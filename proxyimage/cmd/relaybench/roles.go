//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/agentgate/agentgate/internal/testkit/testpki"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

// Child roles. Each prints "ready ..." on stdout when it is set up and
// exits when its stdin closes (or, for one-shot roles, when done).

func waitStdinClosed() { io.Copy(io.Discard, os.Stdin) }

// serveLocal listens on loopback, hands each connection to handle on its own
// goroutine, prints "ready <addr>" for the orchestrator and serves until
// stdin closes.
func serveLocal(handle func(net.Conn)) {
	ln := listenLocal()
	go acceptEach(ln, handle)
	fmt.Println("ready", ln.Addr())
	waitStdinClosed()
}

// serverTLS is a TLS config with a test-CA certificate for benchName.
func serverTLS() (*tls.Config, error) {
	ca, err := testpki.NewCA()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Leaf(benchName)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
}

// clientTLS: the bench trusts whatever answers (the test CA is per process).
func clientTLS() *tls.Config {
	return &tls.Config{ServerName: benchName, InsecureSkipVerify: true}
}

// runUpstream is a TLS server that completes handshakes, answers one byte
// and then holds the connection open, reading.
func runUpstream() error {
	cfg, err := serverTLS()
	if err != nil {
		return err
	}
	serveLocal(func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, cfg)
		if tc.Handshake() != nil {
			return
		}
		var b [1]byte
		if _, err := io.ReadFull(tc, b[:]); err != nil {
			return
		}
		tc.Write(b[:])
		io.Copy(io.Discard, tc)
	})
	return nil
}

// runClient opens -n TLS connections to -target with the bench SNI, checks
// each with a one-byte echo, reports "ready OK FAILED", then holds them idle.
func runClient() error {
	cfg := clientTLS()
	conns := make([]net.Conn, 0, *n)
	var mu sync.Mutex
	var failed atomic.Int64
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for range *n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", *target, 10*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			tc := tls.Client(c, cfg)
			tc.SetDeadline(time.Now().Add(30 * time.Second))
			var b [1]byte
			if _, err := tc.Write([]byte{'x'}); err != nil {
				failed.Add(1)
				c.Close()
				return
			}
			if _, err := io.ReadFull(tc, b[:]); err != nil {
				failed.Add(1)
				c.Close()
				return
			}
			tc.SetDeadline(time.Time{})
			mu.Lock()
			conns = append(conns, tc)
			mu.Unlock()
		}()
	}
	wg.Wait()
	fmt.Println("ready", len(conns), failed.Load())
	waitStdinClosed()
	return nil
}

// runRate is the open-loop connection-rate client: for each rate in -rates
// it starts -n connections at their intended times (1/rate apart, whether
// or not earlier ones have finished) and times TCP connect + TLS handshake
// through -target from the intended start. A connection that fails or is
// not set up within -conn-timeout is an error. It prints one "step" line per
// rate and stops after the first step with ≥ -max-err errors.
func runRate() error {
	rates, err := parseRates(*ratesFlag)
	if err != nil {
		return err
	}
	cfg := clientTLS()
	if !*fullHS {
		// Resumed TLS 1.2 handshakes (session tickets) cost the load
		// generator little, so the proxy, not the generator's core, sets the
		// limit. The proxy's work is the same: read a ClientHello with the
		// SNI, route, dial, relay a one-round-trip handshake.
		cfg.MaxVersion = tls.VersionTLS12
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		if err := warmSession(cfg); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	for _, rate := range rates {
		st, resumed := rateStepRun(rate, *n, cfg)
		fmt.Printf("step %d %d %d %.1f %d %d %d\n", st.Rate, st.OK, st.Err, st.Achieved, st.P50.Nanoseconds(), st.P99.Nanoseconds(), resumed)
		if !st.passed(*maxErr, *minAchieved) {
			break
		}
		pause(500 * time.Millisecond) // let the last step's closes finish
	}
	fmt.Println("done")
	return nil
}

// warmSession makes one full handshake so that later ones can resume.
func warmSession(cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", *target, cfg)
	if err != nil {
		return fmt.Errorf("first handshake: %w", err)
	}
	return c.Close()
}

func rateStepRun(rate, count int, cfg *tls.Config) (rateStep, int) {
	st := rateStep{Rate: rate}
	resumed := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	var lastDone time.Time
	openLoop(count, time.Second/time.Duration(rate), &wg, func(_ int, intended time.Time) {
		deadline := intended.Add(*connTimeout)
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp", *target)
		if err == nil {
			tc := tls.Client(c, cfg)
			tc.SetDeadline(deadline)
			err = tc.Handshake()
			c.Close()
			if err == nil && tc.ConnectionState().DidResume {
				mu.Lock()
				resumed++
				mu.Unlock()
			}
		}
		done := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err != nil || done.After(deadline) {
			st.Err++
			return
		}
		st.OK++
		st.samples = append(st.samples, done.Sub(intended))
		if done.After(lastDone) {
			lastDone = done
		}
	})
	wg.Wait()
	if el := lastDone.Sub(start).Seconds(); el > 0 {
		st.Achieved = float64(st.OK) / el
	}
	s := sortDurations(st.samples)
	st.P50, st.P99 = percentile(s, 50), percentile(s, 99)
	st.samples = nil
	return st, resumed
}

// runSink accepts connections, reads each to EOF (the sender's
// half-close, forwarded by the proxy) and answers with the byte count.
func runSink() error {
	serveLocal(func(c net.Conn) {
		defer c.Close()
		k, err := io.Copy(io.Discard, c)
		if err == nil {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(k))
			c.Write(b[:])
		}
	})
	return nil
}

// runPump opens -streams connections to -target; each sends a real
// ClientHello and then -bytes/-streams bytes, half-closes and waits for
// the sink's count of what arrived.
// It prints the seconds from the first byte to the last acknowledgement.
func runPump() error {
	hello, err := hellogen.Capture(&tls.Config{ServerName: benchName})
	if err != nil {
		return err
	}
	per := *nbytes / int64(*streams)
	conns := make([]net.Conn, *streams)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", *target); err != nil {
			return err
		}
		defer conns[i].Close()
	}
	errs := make(chan error, len(conns))
	start := time.Now()
	for _, c := range conns {
		go func() {
			buf := make([]byte, 256<<10)
			if _, err := c.Write(hello); err != nil {
				errs <- err
				return
			}
			for left := per; left > 0; {
				k := min(int64(len(buf)), left)
				if _, err := c.Write(buf[:k]); err != nil {
					errs <- err
					return
				}
				left -= k
			}
			if err := c.(*net.TCPConn).CloseWrite(); err != nil {
				errs <- err
				return
			}
			var b [8]byte
			if _, err := io.ReadFull(c, b[:]); err != nil {
				errs <- fmt.Errorf("no count from the sink: %w", err)
				return
			}
			if got, want := binary.BigEndian.Uint64(b[:]), uint64(len(hello))+uint64(per); got != want {
				errs <- fmt.Errorf("sink got %d bytes, sent %d", got, want)
				return
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			return err
		}
	}
	fmt.Println("seconds", time.Since(start).Seconds(), per*int64(*streams))
	return nil
}

// runPlain is the naive relay: io.Copy both ways between two *net.TCPConn
// (Go splices, holding a pipe per direction while it waits).
func runPlain() error {
	serveLocal(func(c net.Conn) {
		u, err := net.Dial("tcp", *upstream)
		if err != nil {
			c.Close()
			return
		}
		go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, u)
		c.Close()
		u.Close()
	})
	return nil
}

// runBroker is a real MQTT broker (mochi-mqtt) on a TLS listener whose
// certificate is for benchName.
func runBroker() error {
	cfg, err := serverTLS()
	if err != nil {
		return err
	}
	addr := freePort()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	broker := mqtt.New(&mqtt.Options{InlineClient: false, Logger: quiet})
	if err := broker.AddHook(new(auth.AllowHook), nil); err != nil {
		return err
	}
	if err := broker.AddListener(listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: cfg})); err != nil {
		return err
	}
	go broker.Serve()
	defer broker.Close()
	if err := waitDial(addr); err != nil {
		return err
	}
	fmt.Println("ready", addr)
	waitStdinClosed()
	return nil
}

// runLatency connects an MQTT 5 client (paho) over TLS through -target and
// publishes QoS 1 messages open-loop at -rate for -duration: message i is
// due at start + i/rate and is sent then whether or not earlier ones were
// acknowledged; its latency runs from that intended time to its PUBACK, so
// a stall delays every message due during it (no coordinated omission).
// The first -warmup is not recorded. It prints "lat N ERRORS" and the N
// latencies in nanoseconds on one line.
func runLatency() error {
	ctx, cancel := context.WithTimeout(context.Background(), *duration+*warmup+30*time.Second)
	defer cancel()
	raw, err := net.DialTimeout("tcp", *target, 5*time.Second)
	if err != nil {
		return err
	}
	tc := tls.Client(raw, clientTLS())
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	cl := paho.NewClient(paho.ClientConfig{ClientID: "bench-latency", Conn: packets.NewThreadSafeConn(tc), PacketTimeout: 10 * time.Second})
	ca, err := cl.Connect(ctx, &paho.Connect{ClientID: "bench-latency", CleanStart: true, KeepAlive: 60})
	if err != nil {
		return err
	}
	if ca.ReasonCode != 0 {
		return fmt.Errorf("connack reason %d", ca.ReasonCode)
	}
	defer cl.Disconnect(&paho.Disconnect{})
	interval := time.Second / time.Duration(*rate)
	total := int((*warmup + *duration) / interval)
	skip := int(*warmup / interval)
	lat := make([]time.Duration, 0, total)
	var mu sync.Mutex
	var errs atomic.Int64
	var wg sync.WaitGroup
	payload := make([]byte, 64)
	openLoop(total, interval, &wg, func(i int, intended time.Time) {
		_, err := cl.Publish(ctx, &paho.Publish{Topic: "bench/latency", QoS: 1, Payload: payload})
		d := time.Since(intended)
		if i < skip {
			return
		}
		if err != nil {
			errs.Add(1)
			return
		}
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
	})
	wg.Wait()
	var b strings.Builder
	fmt.Fprint(&b, "lat ", len(lat), " ", errs.Load())
	for _, d := range lat {
		fmt.Fprint(&b, " ", d.Nanoseconds())
	}
	fmt.Println(b.String())
	return nil
}

// openLoop starts op(i, intended) in its own goroutine (counted in wg) at
// each intended time start + i·interval, whether or not earlier ones have
// finished: an open-loop load whose latencies, measured from the intended
// time, include any queueing (no coordinated omission).
func openLoop(count int, interval time.Duration, wg *sync.WaitGroup, op func(i int, intended time.Time)) {
	start := time.Now()
	for i := range count {
		intended := start.Add(time.Duration(i) * interval)
		if d := time.Until(intended); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			op(i, intended)
		}()
	}
}

// atoi64 parses a child's numeric output field.
func atoi64(s string) int64 {
	v, _ := strconv.ParseInt(s, 10, 64)
	return v
}

// acceptEach serves every connection ln accepts with handle, each in its
// own goroutine, until ln is closed.
func acceptEach(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}
