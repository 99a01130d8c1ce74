package awsstandin

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// healthEndpoint is a relay's health answer on its agent port: TLS for the
// health name, GET /healthz answered with status.
type healthEndpoint struct {
	addr   netip.AddrPort
	status atomic.Int32
	mu     sync.Mutex
	seen   []seenCheck
	counts map[int]int // answers by status
}

type seenCheck struct {
	sni, host, path, remote string
	version                 uint16
}

func startHealthEndpoint(t *testing.T, ip string, maxTLS uint16) *healthEndpoint {
	t.Helper()
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Leaf("health.agents.example.test")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if maxTLS == tls.VersionTLS13 {
		cfg.MinVersion = tls.VersionTLS13
	}
	ln, err := tls.Listen("tcp", ip+":0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := &healthEndpoint{addr: ln.Addr().(*net.TCPAddr).AddrPort(), counts: map[int]int{}}
	e.status.Store(http.StatusOK)
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := int(e.status.Load())
		e.mu.Lock()
		e.seen = append(e.seen, seenCheck{r.TLS.ServerName, r.Host, r.URL.Path, r.RemoteAddr, r.TLS.Version})
		e.counts[status]++
		e.mu.Unlock()
		w.WriteHeader(status)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return e
}

func (e *healthEndpoint) count(status int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counts[status]
}

func startChecks(t *testing.T, port int, addrs ...netip.Addr) *Route53Checks {
	t.Helper()
	r, err := StartRoute53Checks(Route53CheckConfig{
		Port: port, SNI: "health.agents.example.test", Path: "/healthz",
		Interval: 10 * time.Millisecond, FailureThreshold: 3,
		ConnectTimeout: 4 * time.Second, ResponseTimeout: 2 * time.Second,
		Source: netip.MustParseAddr("127.0.0.100"),
	}, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func awaitStatus(t *testing.T, r *Route53Checks, addr netip.Addr, healthy bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Await(ctx, addr, healthy); err != nil {
		t.Fatal(err)
	}
}

// TestRoute53ChecksFlipAfterTheThreshold: HTTPS with the health name as
// SNI and Host, TLS 1.2, from the checkers' own address; healthy from the
// start; unhealthy exactly when FailureThreshold checks in a row failed
// (a 503), healthy again after as many passes; an address without a check
// reports unchecked.
func TestRoute53ChecksFlipAfterTheThreshold(t *testing.T) {
	e := startHealthEndpoint(t, "127.0.0.2", tls.VersionTLS12)
	ip := e.addr.Addr()
	r := startChecks(t, int(e.addr.Port()), ip)
	if h, checked := r.Status(ip); !h || !checked {
		t.Fatalf("a new check is %v (checked %v), want healthy", h, checked)
	}
	if h, checked := r.Status(netip.MustParseAddr("127.0.0.9")); !h || checked {
		t.Fatalf("an unchecked address is %v (checked %v)", h, checked)
	}
	flips := make(chan string, 4)
	r.Watch(func(addr netip.Addr, healthy bool) {
		// The checker is sequential: the count is exactly the checks that
		// led to the flip (and those before it).
		flips <- strconv.FormatBool(healthy) + " after " + strconv.Itoa(e.count(http.StatusServiceUnavailable)) + " unavailable"
	})
	e.status.Store(http.StatusServiceUnavailable)
	awaitStatus(t, r, ip, false)
	e.status.Store(http.StatusNoContent)
	awaitStatus(t, r, ip, true)
	for _, want := range []string{"false after 3 unavailable", "true after 3 unavailable"} {
		select {
		case got := <-flips:
			if got != want {
				t.Errorf("flip %q, want %q", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no flip %q", want)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range e.seen {
		if s.sni != "health.agents.example.test" || s.host != s.sni || s.path != "/healthz" || s.version != tls.VersionTLS12 || !strings.HasPrefix(s.remote, "127.0.0.100:") {
			t.Fatalf("check %+v, want SNI and Host the health name, TLS 1.2, from 127.0.0.100", s)
		}
	}
	if e.counts[http.StatusNoContent] < 3 {
		t.Errorf("healthy again after %d passes", e.counts[http.StatusNoContent])
	}
}

// TestRoute53ChecksRefuseTLS13Only: Route 53 supports TLS up to 1.2, so an
// endpoint that answers only TLS 1.3 fails, as a refused connection does.
func TestRoute53ChecksRefuseTLS13Only(t *testing.T) {
	e := startHealthEndpoint(t, "127.0.0.2", tls.VersionTLS13)
	r := startChecks(t, int(e.addr.Port()), e.addr.Addr(), netip.MustParseAddr("127.0.0.3"))
	awaitStatus(t, r, e.addr.Addr(), false)
	awaitStatus(t, r, netip.MustParseAddr("127.0.0.3"), false)
	r.mu.Lock()
	last := r.status[e.addr.Addr()].last
	r.mu.Unlock()
	if last == nil || !strings.Contains(last.Error(), "TLS") {
		t.Errorf("last error %v, want the TLS handshake's", last)
	}
}

// TestDNSHealthSource: the health source decides for the addresses it
// checks, in both modes; multi-address answers drop unhealthy addresses
// and fail open to all of them.
func TestDNSHealthSource(t *testing.T) {
	a, b := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")
	d, err := StartDNS("agents.example.test", a, b)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	src := &fakeSource{h: map[netip.Addr]bool{a: true, b: true}}
	d.SetHealthSource(src)
	lookup := func() string {
		ips, err := d.Resolver().LookupHost(context.Background(), "agents.example.test")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(ips, " ")
	}
	if got := lookup(); got != "127.0.0.2 127.0.0.3" {
		t.Errorf("both healthy: %s", got)
	}
	src.set(a, false)
	if got := lookup(); got != "127.0.0.3" {
		t.Errorf("first unhealthy: %s", got)
	}
	src.set(b, false)
	if got := lookup(); got != "127.0.0.2 127.0.0.3" {
		t.Errorf("all unhealthy: %s, want every address (fail open)", got)
	}
	// Weighted: the record says healthy, the check says not.
	d.SetWeighted(WeightedRecord{a, 1, true}, WeightedRecord{b, 0, true})
	src.set(b, true)
	for range 20 {
		if got := lookup(); got != "127.0.0.3" {
			t.Fatalf("active record's check failing: answered %s, want the standby", got)
		}
	}
}

type fakeSource struct {
	mu sync.Mutex
	h  map[netip.Addr]bool
}

func (f *fakeSource) set(addr netip.Addr, healthy bool) {
	f.mu.Lock()
	f.h[addr] = healthy
	f.mu.Unlock()
}

func (f *fakeSource) Status(addr netip.Addr) (bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.h[addr]
	return h, ok
}
