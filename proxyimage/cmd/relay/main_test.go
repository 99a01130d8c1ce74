//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/relayproc"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
	"github.com/agentgate/agentgate/proxyimage/proxyproto"
)

// TestMain removes the relay binary the tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	relayproc.Cleanup()
	os.Exit(code)
}

// buildRelay returns this command's binary, built once per test run.
func buildRelay(t *testing.T) string {
	t.Helper()
	bin, err := relayproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// process is a running relay with the helpers these tests read it through.
type process struct {
	*relayproc.Process
	listen, admin string
}

// startRelay runs the binary on 127.0.0.1 ports the kernel picks, with an
// empty environment, and returns once it logged the addresses it bound.
func startRelay(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	rp, err := relayproc.Start(context.Background(), relayproc.Options{Bin: bin, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-rp.Done():
		default:
			rp.Kill()
		}
		if t.Failed() {
			t.Logf("relay stderr:\n%s", rp.Logs())
		}
	})
	return &process{Process: rp, listen: rp.Listen, admin: rp.Admin}
}

// metric sums the samples of family name on the admin port's /metrics
// (0 when unreachable or absent).
func (p *process) metric(name string) float64 {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// waitLog waits for a log line whose msg is msg.
func (p *process) waitLog(t *testing.T, msg string) {
	t.Helper()
	if err := p.WaitLog(msg, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

func (p *process) readyz() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// holdUpstream accepts connections and keeps them open until the relay closes them.
func holdUpstream(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return ln
}

func TestSIGTERMDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelay(t)
	up := holdUpstream(t)
	const unready, drain = 2 * time.Second, 6 * time.Second
	p := startRelay(t, bin, "--route", "raw.iot.test="+up.Addr().String(),
		"--unready-delay", unready.String(), "--drain-timeout", drain.String(),
		"--probe-interval", "100ms", "--source-rate", "0")
	deadline := time.Now().Add(20 * time.Second)
	for p.readyz() != 200 {
		if time.Now().After(deadline) {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	hello := hellogen.Record(hellogen.Build(hellogen.SNI("raw.iot.test")))
	var mu sync.Mutex
	var closes []time.Time
	var wg sync.WaitGroup
	open := func() error {
		c, err := net.DialTimeout("tcp", p.listen, 2*time.Second)
		if err != nil {
			return err
		}
		if _, err := c.Write(hello); err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(io.Discard, c) // returns when the relay closes us
			mu.Lock()
			closes = append(closes, time.Now())
			mu.Unlock()
			c.Close()
		}()
		return nil
	}
	const n = 12
	for range n {
		if err := open(); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the relay holds every one as a session (what the drain closes).
	deadline = time.Now().Add(20 * time.Second)
	for p.metric("agentgate_relay_connections_active") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%v relayed connections, want %d", p.metric("agentgate_relay_connections_active"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}

	sigterm := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for p.readyz() != 503 {
		if time.Since(sigterm) > unready {
			t.Fatal("readiness did not fail before the unready delay ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Still accepting during the health-check window.
	if err := open(); err != nil {
		t.Fatalf("refused a connection inside the unready window: %v", err)
	}
	// After the window, new connections are refused.
	var refusedAt time.Time
	for {
		c, err := net.DialTimeout("tcp", p.listen, time.Second)
		if err != nil {
			refusedAt = time.Now()
			break
		}
		c.Close()
		if time.Since(sigterm) > drain {
			t.Fatal("still accepting at the drain deadline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if refusedAt.Sub(sigterm) < unready {
		t.Fatalf("stopped accepting %v after SIGTERM, before the %v unready delay", refusedAt.Sub(sigterm), unready)
	}
	select {
	case <-p.Done():
	case <-time.After(drain + 10*time.Second):
		t.Fatal("relay did not exit within the drain timeout plus slack")
	}
	exitedAt := time.Now()
	if p.ExitErr() != nil {
		t.Fatalf("exit: %v", p.ExitErr())
	}
	wg.Wait()
	if len(closes) != n+1 {
		t.Fatalf("%d connections closed, want %d", len(closes), n+1)
	}
	sort.Slice(closes, func(i, j int) bool { return closes[i].Before(closes[j]) })
	first, last := closes[0], closes[len(closes)-1]
	if first.Sub(sigterm) < unready {
		t.Fatalf("first connection closed %v after SIGTERM, inside the unready window", first.Sub(sigterm))
	}
	// The relay spreads closes over 90% of (drain - unready) = 3.6 s. Demand
	// only a quarter of that between first and last close: a relay that
	// closes everything at once spans a few milliseconds.
	window := (drain - unready) * 9 / 10
	if span := last.Sub(first); span < window/4 {
		t.Fatalf("closes spanned %v; want them spread over ~%v", span, window)
	}
	// And no instant took a large share: at most a third in any tenth of the window.
	for i := range closes {
		k := 0
		for j := i; j < len(closes) && closes[j].Sub(closes[i]) < window/10; j++ {
			k++
		}
		if k > len(closes)/3 {
			t.Fatalf("%d of %d connections closed within %v", k, len(closes), window/10)
		}
	}
	t.Logf("unready→refused %v, closes %v..%v after SIGTERM, exit after %v",
		refusedAt.Sub(sigterm), first.Sub(sigterm), last.Sub(sigterm), exitedAt.Sub(sigterm))
}

func TestSecondSignalForcesExit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelay(t)
	up := holdUpstream(t)
	p := startRelay(t, bin, "--route", "raw.iot.test="+up.Addr().String(),
		"--unready-delay", "60s", "--drain-timeout", "100s")
	p.Signal(syscall.SIGTERM)
	p.waitLog(t, "draining") // the second signal must not be taken for the first
	start := time.Now()
	p.Signal(syscall.SIGINT)
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second): // far below the 60 s unready delay
		t.Fatal("second signal did not force an exit")
	}
	var ee *exec.ExitError
	if !errors.As(p.ExitErr(), &ee) || ee.ExitCode() != 1 {
		t.Fatalf("forced exit: %v, want exit status 1", p.ExitErr())
	}
	t.Logf("forced exit after %v", time.Since(start))
}

func TestBadFlagStopsStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelay(t)
	cmd := exec.Command(bin, "--route", "foo")
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), `--route "foo": want SNI=HOST:PORT`) {
		t.Fatalf("exit %v, output %q", err, out)
	}
	cmd = exec.Command(bin, "--help")
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RELAY_IDLE_TIMEOUT") {
		t.Fatalf("--help: %v %q", err, out)
	}
}

// TestDockerfileBuildLine runs the Dockerfile's own `go build` line (there
// is no Docker daemon here) for both target architectures, from the
// repository root as the Docker build context is, and checks the result is
// a static binary for that machine.
func TestDockerfileBuildLine(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles twice")
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(df), "\\\n", " ")
	m := regexp.MustCompile(`(?m)^RUN .*?(CGO_ENABLED=0 GOOS=\$TARGETOS GOARCH=\$TARGETARCH\s+go build .*)$`).FindStringSubmatch(joined)
	if m == nil {
		t.Fatal("no `CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build` line in the Dockerfile")
	}
	line := m[1]
	for _, want := range []string{"-trimpath", `-ldflags "-s -w`, "./proxyimage/cmd/relay", "-o /out/relay"} {
		if !strings.Contains(line, want) {
			t.Fatalf("build line %q lacks %q", line, want)
		}
	}
	for arch, machine := range map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64} {
		t.Run(arch, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "relay")
			script := strings.ReplaceAll(line, "/out/relay", out)
			cmd := exec.Command("sh", "-c", script)
			cmd.Dir = "../../.."
			cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+arch, "VERSION=test")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", script, err, b)
			}
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machine {
				t.Fatalf("machine %v, want %v", f.Machine, machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Fatal("dynamically linked; distroless/static needs a static binary")
				}
			}
			if f.Section(".symtab") != nil {
				t.Fatal("symbol table present: -s not applied")
			}
		})
	}
}

// TestPprofOffByDefault: the admin port serves no profiles unless
// RELAY_DEBUG_PPROF=1 (relayproc starts it with an empty environment).
func TestPprofOffByDefault(t *testing.T) {
	up := holdUpstream(t)
	p := startRelay(t, buildRelay(t), "--route", "a.example.com="+up.Addr().String(), "--probe-interval", "1h")
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /debug/pprof/ without %s: status %d, want 404", pprofEnv, resp.StatusCode)
	}
}

// TestWithPprof: profiles are added in front of the admin handler, which
// still answers everything else.
func TestWithPprof(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "admin:"+r.URL.Path) })
	srv := httptest.NewServer(withPprof(inner))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || body != "admin:/metrics" {
		t.Errorf("/metrics: %d %q", code, body)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d %.80q", code, body)
	}
	if code, body := get("/debug/pprof/heap?debug=1"); code != 200 || !strings.Contains(body, "heap profile") {
		t.Errorf("/debug/pprof/heap: %d %.80q", code, body)
	}
}

// nlbHealthCheck plays the NLB's own target health check on the admin port
// with proxy protocol enabled on the target group: a PROXY v2 header (LOCAL,
// no client address, as the NLB user guide's "Health check connections"
// says; or a PROXY-command header), then GET path. It returns the status, or
// 0 when the relay closed the connection without an HTTP answer.
func nlbHealthCheck(t *testing.T, admin string, header []byte, path string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", admin, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(append([]byte{}, header...), "GET "+path+" HTTP/1.1\r\nHost: target\r\nConnection: close\r\n\r\n"...)); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAdminListenerBehindTheNLB: with proxy protocol on the target group the
// NLB's health checks of the admin port start with a PROXY v2 header; the
// admin port must read it exactly as the agent port does, or no task ever
// becomes healthy.
func TestAdminListenerBehindTheNLB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildRelay(t)
	up := holdUpstream(t)
	proxyHeader := proxyproto.AppendV2(nil, netip.MustParseAddrPort("10.0.3.7:51000"), netip.MustParseAddrPort("10.0.1.5:9901"))
	p := startRelay(t, bin, "--route", "raw.iot.test="+up.Addr().String(),
		"--proxy-protocol", "required", "--trusted-cidr", "127.0.0.0/8",
		"--probe-interval", "100ms", "--unready-delay", "30s", "--drain-timeout", "40s")
	deadline := time.Now().Add(20 * time.Second)
	for nlbHealthCheck(t, p.admin, proxyproto.AppendLocal(nil), "/readyz") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("LOCAL header + GET /readyz never answered 200")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := nlbHealthCheck(t, p.admin, proxyHeader, "/readyz"); code != 200 {
		t.Fatalf("PROXY-command header + GET /readyz: %d, want 200", code)
	}
	if code := nlbHealthCheck(t, p.admin, nil, "/readyz"); code != 0 {
		t.Fatalf("--proxy-protocol required, no header: answered %d, want the connection refused", code)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for nlbHealthCheck(t, p.admin, proxyproto.AppendLocal(nil), "/readyz") != 503 {
		if time.Now().After(deadline) {
			t.Fatal("LOCAL header + GET /readyz never answered 503 while draining")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A header from a peer outside --trusted-cidr is refused; without one the
	// same peer is served (optional).
	q := startRelay(t, bin, "--route", "raw.iot.test="+up.Addr().String(),
		"--proxy-protocol", "optional", "--trusted-cidr", "10.0.0.0/8", "--probe-interval", "1h")
	if code := nlbHealthCheck(t, q.admin, proxyproto.AppendLocal(nil), "/healthz"); code != 0 {
		t.Fatalf("header from an untrusted peer: answered %d, want the connection refused", code)
	}
	if code := nlbHealthCheck(t, q.admin, nil, "/healthz"); code != 200 {
		t.Fatalf("optional, no header: %d, want 200", code)
	}
}

// echoUpstream echoes every byte back until the relay closes the connection.
func echoUpstream(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln
}

// peakRSS is the process's high-water resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("VmHWM line %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestHealthNameMemoryExhaustion: one connection to the health server name
// that sends an endless HTTP request line must not grow the relay's memory
// (the request was read with no size limit), and agents relayed by the same
// process keep working meanwhile.
func TestHealthNameMemoryExhaustion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const attack = 100 << 20
	const allowedGrowth = 8 << 20
	bin := buildRelay(t)
	echo := echoUpstream(t)
	// A peek timeout far longer than the attack needs, so the deadline is
	// not what stops it: only a byte cap can.
	p := startRelay(t, bin, "--route", "raw.iot.test="+echo.Addr().String(),
		"--peek-timeout", "2m", "--idle-timeout", "10m", "--source-rate", "0", "--probe-interval", "1h")

	agent, err := net.DialTimeout("tcp", p.listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	hello := hellogen.Record(hellogen.Build(hellogen.SNI("raw.iot.test")))
	agent.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := agent.Write(hello); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(agent, make([]byte, len(hello))); err != nil {
		t.Fatalf("agent connection not relayed: %v", err)
	}
	pings := 0
	ping := func() error {
		msg := fmt.Sprintf("ping %d\n", pings)
		pings++
		agent.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(agent, msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(agent, got); err != nil {
			return err
		}
		if string(got) != msg {
			return fmt.Errorf("echo %q, want %q", got, msg)
		}
		return nil
	}
	if err := ping(); err != nil {
		t.Fatal(err)
	}
	before := peakRSS(t, p.Pid())

	raw, err := net.DialTimeout("tcp", p.listen, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: "healthcheck.agentgate.invalid", InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(2 * time.Minute))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("health handshake: %v", err)
	}
	chunk := bytes.Repeat([]byte("a"), 1<<20)
	sent := 0
	var writeErr error
	if _, writeErr = io.WriteString(tc, "GET /"); writeErr == nil {
		for sent < attack {
			var n int
			n, writeErr = tc.Write(chunk)
			sent += n
			if writeErr != nil {
				break
			}
			if sent%(8<<20) == 0 {
				if err := ping(); err != nil {
					t.Fatalf("agent connection broke after %d MiB at the health name: %v", sent>>20, err)
				}
			}
		}
	}
	tc.Close()
	if err := ping(); err != nil {
		t.Fatalf("agent connection broke after the attack: %v", err)
	}
	after := peakRSS(t, p.Pid())
	t.Logf("sent %d MiB of request line (stopped by: %v); relay peak RSS %.1f MiB before, %.1f MiB after; %d pings echoed",
		sent>>20, writeErr, float64(before)/(1<<20), float64(after)/(1<<20), pings)
	if growth := after - before; growth >= allowedGrowth {
		t.Fatalf("relay peak RSS grew by %.1f MiB (%.1f → %.1f MiB) under one endless health request; want < %d MiB",
			float64(growth)/(1<<20), float64(before)/(1<<20), float64(after)/(1<<20), allowedGrowth>>20)
	}
}
