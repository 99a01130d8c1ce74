package awsstandin

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Route53Checks stands in for Route 53 endpoint health checks of type HTTPS,
// one per IP address, as constructs/agentdns creates them (IPAddress, Port,
// FullyQualifiedDomainName with EnableSNI, ResourcePath, RequestInterval,
// FailureThreshold). What it imitates, from the Route 53 Developer Guide,
// "How Amazon Route 53 determines whether a health check is healthy", and
// the API reference's HealthCheckConfig:
//
//   - A check must establish a TCP connection within four seconds and get
//     an HTTP status of 2xx or 3xx within two seconds after connecting.
//   - The certificate is not validated ("HTTPS health checks don't validate
//     SSL/TLS certificates"); the endpoint must support TLS 1.0, 1.1 or 1.2,
//     so the checker offers nothing newer than TLS 1.2 and a relay that
//     answered the health name with TLS 1.3 only would fail here as there.
//   - With EnableSNI the FullyQualifiedDomainName is sent in the
//     client_hello, and it is the Host header.
//   - FailureThreshold is the number of consecutive checks that must fail,
//     or pass, to change the status either way; a new check is healthy until
//     there is enough data.
//
// Route 53 runs many checkers that do not coordinate and calls an endpoint
// healthy while more than 18 % of them see it healthy; one checker per
// address stands in for them all (the status flips when the checkers'
// threshold runs complete, which one checker reproduces; their spread in
// time is not imitated).
type Route53Checks struct {
	cfg     Route53CheckConfig
	mu      sync.Mutex
	status  map[netip.Addr]*dnsCheck
	watch   []func(netip.Addr, bool)
	changed chan struct{}
	quit    chan struct{}
	wg      sync.WaitGroup
}

// Route 53's limits on one HTTP or HTTPS check ("How Amazon Route 53
// determines whether a health check is healthy").
const (
	// Route53ConnectTimeout: the TCP connection must be established within it.
	Route53ConnectTimeout = 4 * time.Second
	// Route53ResponseTimeout: the status must arrive within it after connecting.
	Route53ResponseTimeout = 2 * time.Second
)

// Route53CheckConfig configures every check.
type Route53CheckConfig struct {
	// Port is the checked port (443 in AWS; the lab's listener port).
	Port int
	// SNI is the FullyQualifiedDomainName sent with EnableSNI.
	SNI string
	// Path is the ResourcePath.
	Path string
	// Interval is the RequestInterval.
	Interval time.Duration
	// FailureThreshold is consecutive results to change the status.
	FailureThreshold int
	// ConnectTimeout (4 s in AWS) bounds the TCP connect; ResponseTimeout
	// (2 s in AWS) bounds the TLS handshake and the status line after it.
	ConnectTimeout, ResponseTimeout time.Duration
	// Source is the checkers' address (AWS: its own ranges); the zero
	// value lets the kernel choose.
	Source netip.Addr
}

type dnsCheck struct {
	healthy bool
	// run counts consecutive results that disagree with healthy.
	run int
	// checks and passed count completed and passed checks; last is the
	// latest error (nil: passed).
	checks, passed int
	last           error
}

// StartRoute53Checks starts one check per address; each runs at once and
// then every Interval until Close.
func StartRoute53Checks(cfg Route53CheckConfig, addrs ...netip.Addr) (*Route53Checks, error) {
	if cfg.Port < 1 || cfg.Port > 65535 || cfg.SNI == "" || cfg.Path == "" || cfg.Interval <= 0 ||
		cfg.FailureThreshold < 1 || cfg.FailureThreshold > 10 || cfg.ConnectTimeout <= 0 || cfg.ResponseTimeout <= 0 {
		return nil, fmt.Errorf("route53 checks: incomplete config %+v", cfg)
	}
	r := &Route53Checks{cfg: cfg, status: map[netip.Addr]*dnsCheck{}, changed: make(chan struct{}), quit: make(chan struct{})}
	for _, a := range addrs {
		r.status[a] = &dnsCheck{healthy: true}
	}
	for a := range r.status {
		r.wg.Add(1)
		go r.run(a)
	}
	return r, nil
}

// Close stops the checks.
func (r *Route53Checks) Close() {
	close(r.quit)
	r.wg.Wait()
}

// Status is addr's current status; checked is false for an address this
// stand-in does not check (Route 53: a record without a health check is
// always healthy).
func (r *Route53Checks) Status(addr netip.Addr) (healthy, checked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.status[addr]
	if !ok {
		return true, false
	}
	return s.healthy, true
}

// Watch calls f (on a checker's goroutine) whenever a status changes,
// after the new status is visible to Status.
func (r *Route53Checks) Watch(f func(addr netip.Addr, healthy bool)) {
	r.mu.Lock()
	r.watch = append(r.watch, f)
	r.mu.Unlock()
}

// Await waits until addr's status is healthy, or ctx ends.
func (r *Route53Checks) Await(ctx context.Context, addr netip.Addr, healthy bool) error {
	return r.await(ctx, addr, fmt.Sprintf("healthy=%v", healthy), func(s *dnsCheck) bool { return s.healthy == healthy })
}

// AwaitPassed waits until a check of addr has passed, or ctx ends: a new
// check counts as healthy before it has run (as in Route 53), so this is
// how a caller learns that the endpoint really answers.
func (r *Route53Checks) AwaitPassed(ctx context.Context, addr netip.Addr) error {
	return r.await(ctx, addr, "a passed check", func(s *dnsCheck) bool { return s.passed > 0 })
}

func (r *Route53Checks) await(ctx context.Context, addr netip.Addr, what string, done func(*dnsCheck) bool) error {
	for {
		r.mu.Lock()
		s, changed := r.status[addr], r.changed
		ok, last := false, error(nil)
		if s != nil {
			ok, last = done(s), s.last
		}
		r.mu.Unlock()
		if s == nil {
			return fmt.Errorf("route53 checks: %s is not checked", addr)
		}
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("route53 checks: %s: gave up waiting for %s (last check: %v): %w", addr, what, last, ctx.Err())
		}
	}
}

func (r *Route53Checks) run(addr netip.Addr) {
	defer r.wg.Done()
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		err := r.checkOnce(addr)
		r.record(addr, err)
		select {
		case <-r.quit:
			return
		case <-tick.C:
		}
	}
}

func (r *Route53Checks) record(addr netip.Addr, err error) {
	r.mu.Lock()
	s := r.status[addr]
	s.checks++
	if err == nil {
		s.passed++
	}
	s.last = err
	if (err == nil) == s.healthy {
		s.run = 0
	} else {
		s.run++
	}
	flipped := s.run >= r.cfg.FailureThreshold
	if flipped {
		s.healthy, s.run = !s.healthy, 0
	}
	healthy, watch := s.healthy, append([]func(netip.Addr, bool){}, r.watch...)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	if flipped {
		for _, f := range watch {
			f(addr, healthy)
		}
	}
}

// checkOnce is one HTTPS check of addr.
func (r *Route53Checks) checkOnce(addr netip.Addr) error {
	d := net.Dialer{Timeout: r.cfg.ConnectTimeout}
	if r.cfg.Source.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: r.cfg.Source.AsSlice()}
	}
	c, err := d.Dial("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(r.cfg.Port)))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(r.cfg.ResponseTimeout)); err != nil {
		return err
	}
	tc := tls.Client(c, &tls.Config{
		ServerName:         r.cfg.SNI,
		InsecureSkipVerify: true, // Route 53 does not validate the certificate
		MaxVersion:         tls.VersionTLS12,
	})
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	if _, err := fmt.Fprintf(tc, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", r.cfg.Path, r.cfg.SNI); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(tc, 64<<10)), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return errors.New("answered " + resp.Status)
	}
	return nil
}
