//go:build linux

// Command bench measures what an idle proxied connection costs (process RSS,
// kernel slab, file descriptors) and single-stream throughput, for the
// agentgate relay, HAProxy (if installed) and a plain io.Copy Go relay,
// against a direct client→upstream baseline. Everything runs on 127.0.0.1,
// every loop is bounded, and the run stops by itself (-timeout).
//
// Every process here is capped at 20,000 open files, so the client side is
// split into processes of at most -per-client connections; each proxy is a
// single process (the relay needs 2 descriptors per connection, the plain
// Go relay 6 while idle).
//
//	go run ./proxyimage/bench -n 9500 -proxies direct,relay,haproxy
//	go run ./proxyimage/bench -n 3000 -proxies direct,relay,haproxy,plain
//	go run ./proxyimage/bench -mode throughput -bytes 1073741824 -proxies direct,relay,haproxy,plain
//
// The roles (upstream, client, sink, pump, plain) are this same binary
// re-executed with -role; they are internal.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentgate/agentgate/internal/testpki"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

const benchName = "bench.iot.test"

var (
	role      = flag.String("role", "", "internal: upstream, client, sink, pump or plain")
	mode      = flag.String("mode", "idle", "idle (memory per idle connection) or throughput")
	n         = flag.Int("n", 3000, "idle connections per proxy")
	perClient = flag.Int("per-client", 9000, "connections per client process (20,000 fd cap)")
	proxies   = flag.String("proxies", "direct,relay,haproxy,plain", "what to measure, in order")
	nbytes    = flag.Int64("bytes", 1<<30, "throughput: bytes through each proxy, one stream")
	rounds    = flag.Int("rounds", 3, "throughput: runs per proxy (best is reported)")
	settle    = flag.Duration("settle", 5*time.Second, "idle: wait after the last connection before sampling")
	timeout   = flag.Duration("timeout", 15*time.Minute, "whole run")
	target    = flag.String("target", "", "internal: address to connect to")
	upstream  = flag.String("upstream", "", "internal: plain relay upstream")
	expect    = flag.Int64("expect", 0, "internal: sink byte count")
)

func main() {
	flag.Parse()
	var err error
	switch *role {
	case "upstream":
		err = runUpstream()
	case "client":
		err = runClient()
	case "sink":
		err = runSink()
	case "pump":
		err = runPump()
	case "plain":
		err = runPlain()
	case "":
		err = orchestrate()
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// ---- child roles. Each prints "ready ..." on stdout and exits when stdin closes. ----

func waitStdinClosed() { io.Copy(io.Discard, os.Stdin) }

func listenLocal() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	return ln
}

// serveLocal listens on loopback, hands each connection to handle on its own
// goroutine, prints "ready <addr>" for the orchestrator and serves until
// stdin closes.
func serveLocal(handle func(net.Conn)) {
	ln := listenLocal()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	fmt.Println("ready", ln.Addr())
	waitStdinClosed()
}

// runUpstream is a TLS server that completes handshakes, answers one byte
// and then holds the connection open, reading.
func runUpstream() error {
	ca, err := testpki.NewCA()
	if err != nil {
		return err
	}
	cert, err := ca.Leaf(benchName)
	if err != nil {
		return err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
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
// each with a one-byte echo, reports, then holds them idle.
func runClient() error {
	cfg := &tls.Config{ServerName: benchName, InsecureSkipVerify: true}
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

// runSink accepts one connection at a time, reads -expect bytes, answers one byte.
func runSink() error {
	serveLocal(func(c net.Conn) {
		defer c.Close()
		if _, err := io.CopyN(io.Discard, c, *expect); err == nil {
			c.Write([]byte{1})
		}
	})
	return nil
}

// runPump sends a real ClientHello and then -bytes bytes, waits for the
// sink's byte and prints the elapsed seconds.
func runPump() error {
	hello, err := hellogen.Capture(&tls.Config{ServerName: benchName})
	if err != nil {
		return err
	}
	c, err := net.Dial("tcp", *target)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	if _, err := c.Write(hello); err != nil {
		return err
	}
	for left := *nbytes; left > 0; {
		k := min(int64(len(buf)), left)
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		left -= k
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fmt.Errorf("no ack: %w", err)
	}
	fmt.Println("seconds", time.Since(start).Seconds())
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

// ---- orchestration ----

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// readyLine waits for the child's "ready" line.
func (c *child) readyLine(d time.Duration) ([]string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			l, err := c.out.ReadString('\n')
			if err != nil || strings.HasPrefix(l, "ready") || strings.HasPrefix(l, "seconds") {
				ch <- res{l, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, r.err
		}
		return strings.Fields(r.line), nil
	case <-time.After(d):
		return nil, errors.New("child not ready in time")
	}
}

func spawn(ctx context.Context, name string, args []string, env ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}, nil
}

func self(ctx context.Context, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return spawn(ctx, exe, args, "GOMAXPROCS=1")
}

func freePort() string {
	ln := listenLocal()
	defer ln.Close()
	return ln.Addr().String()
}

// proxy is a running proxy under test.
type proxy struct {
	name  string
	addr  string
	admin string // the relay's admin address, for its Go memory metrics
	pid   int
	stop  func()
}

func startProxy(ctx context.Context, kind, up, tmp string, maxConn int) (*proxy, error) {
	switch kind {
	case "direct":
		return &proxy{name: kind, addr: up, stop: func() {}}, nil
	case "plain":
		c, err := self(ctx, "-role", "plain", "-upstream", up)
		if err != nil {
			return nil, err
		}
		f, err := c.readyLine(30 * time.Second)
		if err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: f[1], pid: c.cmd.Process.Pid, stop: c.stop}, nil
	case "relay":
		bin := filepath.Join(tmp, "relay")
		if _, err := os.Stat(bin); err != nil {
			out, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./proxyimage/cmd/relay").CombinedOutput()
			if err != nil {
				return nil, fmt.Errorf("go build relay (run from the repository root): %v\n%s", err, out)
			}
		}
		addr, admin := freePort(), freePort()
		c, err := spawn(ctx, bin, []string{"--listen", addr, "--admin", admin,
			"--route", benchName + "=" + up, "--max-conns", strconv.Itoa(maxConn),
			"--source-rate", "0", "--log-level", "warn", "--unready-delay", "0s", "--drain-timeout", "5s"}, "GOMAXPROCS=1")
		if err != nil {
			return nil, err
		}
		if err := waitDial(addr); err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: addr, admin: admin, pid: c.cmd.Process.Pid, stop: c.stop}, nil
	case "haproxy":
		path, err := exec.LookPath("haproxy")
		if err != nil {
			return nil, fmt.Errorf("haproxy not installed (apt-get install -y haproxy)")
		}
		addr := freePort()
		cfg := fmt.Sprintf(`global
  maxconn %d
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client 400s
  timeout server 400s
frontend fe
  bind %s
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  use_backend be if { req_ssl_sni -i %s }
backend be
  server up %s maxconn %d
`, maxConn, addr, benchName, up, maxConn)
		cf := filepath.Join(tmp, "haproxy.cfg")
		if err := os.WriteFile(cf, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		c, err := spawn(ctx, path, []string{"-db", "-f", cf})
		if err != nil {
			return nil, err
		}
		if err := waitDial(addr); err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: addr, pid: c.cmd.Process.Pid, stop: func() { c.cmd.Process.Kill(); c.cmd.Wait() }}, nil
	}
	return nil, fmt.Errorf("unknown proxy %q", kind)
}

func waitDial(addr string) error {
	for range 200 {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never accepted", addr)
}

func procKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	return fieldKB(string(b), field)
}

func fieldKB(s, field string) int64 {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

func meminfoKB(field string) int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	return fieldKB(string(b), field)
}

func fdCount(pid int) int {
	es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(es)
}

func sockstat() string {
	b, _ := os.ReadFile("/proc/net/sockstat")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "TCP:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

type idleResult struct {
	name                string
	conns               int
	rssBefore, rssAfter int64 // KB
	fdBefore, fdAfter   int
	slabDelta           int64 // KB, whole machine
	sockBefore, sockAft string
	goMem               string // the relay's own view: stack and heap in use
}

func measureIdle(ctx context.Context, kind, tmp string) (*idleResult, error) {
	up, err := self(ctx, "-role", "upstream")
	if err != nil {
		return nil, err
	}
	defer up.stop()
	uf, err := up.readyLine(30 * time.Second)
	if err != nil {
		return nil, err
	}
	p, err := startProxy(ctx, kind, uf[1], tmp, *n+200)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	time.Sleep(time.Second)
	r := &idleResult{name: kind}
	if p.pid != 0 {
		r.rssBefore, r.fdBefore = procKB(p.pid, "VmRSS"), fdCount(p.pid)
	}
	r.sockBefore = sockstat()
	slab0 := meminfoKB("Slab")
	var clients []*child
	defer func() {
		for _, c := range clients {
			c.stop()
		}
	}()
	for left := *n; left > 0; left -= *perClient {
		k := min(left, *perClient)
		c, err := self(ctx, "-role", "client", "-target", p.addr, "-n", strconv.Itoa(k))
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	for _, c := range clients {
		f, err := c.readyLine(10 * time.Minute)
		if err != nil {
			return nil, err
		}
		ok, _ := strconv.Atoi(f[1])
		r.conns += ok
		if f[2] != "0" {
			fmt.Fprintf(os.Stderr, "%s: %s connections failed\n", kind, f[2])
		}
	}
	time.Sleep(*settle)
	if p.pid != 0 {
		r.rssAfter, r.fdAfter = procKB(p.pid, "VmRSS"), fdCount(p.pid)
	}
	r.slabDelta = meminfoKB("Slab") - slab0
	r.sockAft = sockstat()
	if p.admin != "" {
		r.goMem = goMemory(p.admin)
	}
	return r, nil
}

// goMemory scrapes the relay's Go runtime memory gauges.
func goMemory(admin string) string {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, m := range []string{"go_memstats_stack_inuse_bytes ", "go_memstats_heap_inuse_bytes ", "go_goroutines "} {
			if strings.HasPrefix(l, m) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "; ")
}

func orchestrate() error {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "agentgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Printf("# agentgate relay bench: mode=%s %s, GOMAXPROCS=1 for Go proxies, haproxy nbthread 1, %s\n",
		*mode, strings.Join(os.Args[1:], " "), runtime.Version())
	if *mode == "throughput" {
		return orchestrateThroughput(ctx, tmp)
	}
	var results []*idleResult
	for _, kind := range strings.Split(*proxies, ",") {
		r, err := measureIdle(ctx, kind, tmp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", kind, err)
			continue
		}
		results = append(results, r)
		fmt.Printf("%-8s conns=%d rss_kb %d→%d fds %d→%d slab_delta_kb=%d sockstat[%s]→[%s] %s\n",
			r.name, r.conns, r.rssBefore, r.rssAfter, r.fdBefore, r.fdAfter, r.slabDelta, r.sockBefore, r.sockAft, r.goMem)
		time.Sleep(3 * time.Second) // let the kernel free the previous run's sockets
	}
	var direct *idleResult
	for _, r := range results {
		if r.name == "direct" {
			direct = r
		}
	}
	fmt.Println()
	fmt.Println("| proxy | idle conns | RSS per conn | kernel (slab growth minus direct) per conn | fds per conn |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range results {
		if r.name == "direct" || r.conns == 0 {
			continue
		}
		c := float64(r.conns)
		kernel := "n/a"
		if direct != nil && direct.conns > 0 {
			kernel = fmt.Sprintf("%.1f KB", (float64(r.slabDelta)-float64(direct.slabDelta)*c/float64(direct.conns))/c)
		}
		fmt.Printf("| %s | %d | %.1f KB | %s | %.2f |\n", r.name, r.conns,
			float64(r.rssAfter-r.rssBefore)/c, kernel, float64(r.fdAfter-r.fdBefore)/c)
	}
	if direct != nil {
		fmt.Printf("\ndirect path slab growth: %.1f KB per connection (client + upstream sockets)\n", float64(direct.slabDelta)/float64(direct.conns))
	}
	return nil
}

func orchestrateThroughput(ctx context.Context, tmp string) error {
	hello, err := hellogen.Capture(&tls.Config{ServerName: benchName})
	if err != nil {
		return err
	}
	type tp struct {
		name string
		addr string
		best float64
		all  []float64
	}
	// Start every path first, then interleave the rounds, so a noisy
	// neighbour on a shared machine hurts all of them alike.
	var res []*tp
	for _, kind := range strings.Split(*proxies, ",") {
		sink, err := self(ctx, "-role", "sink", "-expect", strconv.FormatInt(int64(len(hello))+*nbytes, 10))
		if err != nil {
			return err
		}
		defer sink.stop()
		sf, err := sink.readyLine(30 * time.Second)
		if err != nil {
			return err
		}
		p, err := startProxy(ctx, kind, sf[1], tmp, 100)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", kind, err)
			continue
		}
		defer p.stop()
		res = append(res, &tp{name: kind, addr: p.addr})
	}
	for range *rounds {
		for _, r := range res {
			pump, err := self(ctx, "-role", "pump", "-target", r.addr, "-bytes", strconv.FormatInt(*nbytes, 10))
			if err != nil {
				return err
			}
			f, err := pump.readyLine(5 * time.Minute)
			pump.stop()
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: pump: %v\n", r.name, err)
				continue
			}
			s, _ := strconv.ParseFloat(f[1], 64)
			mbps := float64(*nbytes) / s / (1 << 20)
			r.all = append(r.all, mbps)
			r.best = max(r.best, mbps)
		}
	}
	var ha float64
	for _, r := range res {
		sort.Float64s(r.all)
		fmt.Printf("%-8s MiB/s sorted runs=%.0f\n", r.name, r.all)
		if r.name == "haproxy" {
			ha = r.best
		}
	}
	fmt.Println()
	fmt.Printf("| path | best of %d, MiB/s (%d MiB one stream) | median | best vs HAProxy |\n|---|---|---|---|\n", *rounds, *nbytes>>20)
	for _, r := range res {
		ratio := "n/a"
		if ha > 0 {
			ratio = fmt.Sprintf("%.2f×", r.best/ha)
		}
		med := 0.0
		if len(r.all) > 0 {
			med = r.all[len(r.all)/2]
		}
		fmt.Printf("| %s | %.0f | %.0f | %s |\n", r.name, r.best, med, ratio)
	}
	return nil
}
