//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/relayproc"
)

// pathResult collects one path's numbers; NaN is "not measured".
type pathResult struct {
	conns                                     int
	rssKB, slabKB, sockKB, fds                float64 // per idle connection
	sockSlabKB                                float64 // socket caches only, proxy's share
	rate                                      rateStep
	rateOK                                    bool
	rateCPUus                                 float64 // proxy CPU µs per connection during the rate test
	setup                                     setupSummary
	setupNote                                 string // set when the proxy was not saturated
	mibs1, best1, cpu1, mibs16, best16, cpu16 float64
	p50, p99, p999                            float64 // µs
}

func newPathResult() *pathResult {
	nan := math.NaN()
	return &pathResult{setup: summarizeSetup(nil), rssKB: nan, slabKB: nan, sockSlabKB: nan, sockKB: nan, fds: nan, rateCPUus: nan,
		mibs1: nan, best1: nan, cpu1: nan, mibs16: nan, best16: nan, cpu16: nan, p50: nan, p99: nan, p999: nan}
}

func orchestrate() error {
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "agentgate-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	defer relayproc.Cleanup()
	start := time.Now()
	fmt.Println("# agentgate bench", strings.Join(os.Args[1:], " "))
	printEnvironment()
	if !haveTaskset {
		fmt.Println("# WARNING: taskset not found; nothing is pinned")
	}
	pl := splitList(*paths)
	res := map[string]*pathResult{}
	for _, p := range pl {
		res[p] = newPathResult()
	}
	for _, t := range splitList(*tests) {
		fmt.Printf("\n## %s (load %s)\n", t, loadavg())
		switch t {
		case "idle":
			err = benchIdle(ctx, pl, tmp, res)
		case "rate":
			err = benchRate(ctx, pl, tmp, res)
		case "setup":
			err = benchSetup(ctx, pl, tmp, res)
		case "throughput":
			err = benchThroughput(ctx, pl, tmp, res)
		case "latency":
			err = benchLatency(ctx, pl, tmp, res)
		default:
			err = fmt.Errorf("unknown test %q", t)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	fmt.Printf("\n## results (load %s, %.0f s)\n\n", loadavg(), time.Since(start).Seconds())
	fmt.Print(table(resultRows(res)))
	return nil
}

func printEnvironment() {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Printf("# cpu: %s × %d; kernel %s; %s; load %s\n", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version(), loadavg())
	for _, c := range [][]string{{"haproxy", "-v"}, {"nginx", "-v"}} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		line := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
		if err != nil {
			line = "not available: " + err.Error()
		}
		fmt.Printf("# %s: %s\n", c[0], line)
	}
}

// ---- idle ----

func benchIdle(ctx context.Context, pl []string, tmp string, res map[string]*pathResult) error {
	directSlab, directSock := math.NaN(), math.NaN() // KB per connection on the direct path
	for _, kind := range pl {
		r, err := measureIdle(ctx, kind, tmp)
		if err != nil {
			fmt.Fprintf(os.Stderr, "idle %s: %v\n", kind, err)
			continue
		}
		c := float64(r.conns)
		pr := res[kind]
		pr.conns = r.conns
		slab := float64(r.slabDelta) / c
		sock := r.sockCachesKB / c
		if kind == "direct" {
			directSlab, directSock = slab, sock
			pr.slabKB, pr.sockSlabKB = slab, sock
		} else {
			pr.sockSlabKB = sock - directSock
			pr.rssKB = float64(r.rssAfter-r.rssBefore) / c
			pr.fds = float64(r.fdAfter-r.fdBefore) / c
			pr.slabKB = slab - directSlab // the proxy's share (NaN without direct)
		}
		pr.sockKB = float64(r.sockMemAfter-r.sockMemBefore) * 4 / c
		fmt.Printf("%-8s conns=%d rss_kb %d→%d fds %d→%d slab_delta_kb=%d sockstat[%s]→[%s] %s\n         kernel caches per conn: %s\n",
			kind, r.conns, r.rssBefore, r.rssAfter, r.fdBefore, r.fdAfter, r.slabDelta, r.sockBefore, r.sockAfter, r.goMem, r.caches)
		pause(3 * time.Second) // let the kernel free the previous run's sockets
	}
	return nil
}

type idleResult struct {
	conns                       int
	rssBefore, rssAfter         int64 // KB
	fdBefore, fdAfter           int
	slabDelta                   int64 // KB, whole machine
	sockBefore, sockAfter       string
	sockMemBefore, sockMemAfter int64 // pages
	goMem                       string
	caches                      string  // slab caches that grew most, per connection
	sockCachesKB                float64 // growth of socketCaches
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
	pause(time.Second)
	r := &idleResult{}
	r.rssBefore, r.fdBefore = rssKB(p.pids()), fdCount(p.pids())
	r.sockBefore, r.sockMemBefore = tcpSockstat()
	slab0 := kernelObjectsKB()
	caches0 := readSlabCaches()
	var clients []*child
	defer func() {
		for _, c := range clients {
			c.stop()
		}
	}()
	for left := *n; left > 0; left -= *perClient {
		c, err := self(ctx, "-role", "client", "-target", p.addr, "-n", strconv.Itoa(min(left, *perClient)))
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
	if r.conns == 0 {
		return nil, fmt.Errorf("no connection succeeded")
	}
	time.Sleep(*settle)
	r.rssAfter, r.fdAfter = rssKB(p.pids()), fdCount(p.pids())
	r.slabDelta = kernelObjectsKB() - slab0
	caches1 := readSlabCaches()
	r.caches = topGrowth(caches0, caches1, r.conns, 8)
	r.sockCachesKB = float64(cacheGrowth(caches0, caches1, socketCaches)) / 1024
	r.sockAfter, r.sockMemAfter = tcpSockstat()
	if p.admin != "" {
		r.goMem = goMemory(p.admin)
		if *pprofOn {
			saveProfile(p.admin, "heap", filepath.Join(*profDir, "bench-relay-idle.heap.pprof"))
		}
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
		for _, m := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
			"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_stack_inuse_bytes",
			"go_memstats_mspan_inuse_bytes", "go_memstats_gc_sys_bytes", "go_memstats_other_sys_bytes", "go_memstats_sys_bytes"} {
			if v, ok := strings.CutPrefix(l, m+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				if m != "go_goroutines" {
					v = fmt.Sprintf("%.2fMB", f/1e6)
				}
				out = append(out, strings.TrimPrefix(strings.TrimPrefix(m, "go_memstats_"), "go_")+"="+v)
			}
		}
	}
	return strings.Join(out, " ")
}

// saveProfile fetches /debug/pprof/<name> from the relay's admin port.
func saveProfile(admin, name, file string) {
	resp, err := http.Get("http://" + admin + "/debug/pprof/" + name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
	fmt.Println("# saved", file)
}

// ---- connection rate ----

// benchRate runs the rate steps interleaved: each step (target rate) is run
// through every path still in the race before the next step, so a noisy
// neighbour hits all paths alike. A failed step is repeated once (the machine
// is shared); a path that fails it twice stops there.
func benchRate(ctx context.Context, pl []string, tmp string, res map[string]*pathResult) error {
	rates, err := parseRates(*ratesFlag)
	if err != nil {
		return err
	}
	_, ps, stop, err := behindProxies(ctx, "upstream", "rate", pl, tmp, 19000/2)
	if err != nil {
		return err
	}
	defer stop()
	type racer struct {
		p      *proxy
		steps  []rateStep
		conns  int
		cpu    float64
		failed bool
	}
	var live []*racer
	for _, p := range ps {
		live = append(live, &racer{p: p})
	}
	profiled := false
	for _, rate := range rates {
		for _, r := range live {
			if r.failed {
				continue
			}
			for attempt := 1; attempt <= 2; attempt++ {
				if *pprofOn && r.p.admin != "" && !profiled {
					profiled = true
					go saveProfile(r.p.admin, "profile?seconds=5", filepath.Join(*profDir, "bench-relay-rate.cpu.pprof"))
				}
				cpu0 := cpuSeconds(r.p.pids())
				st, resumed, err := rateStepThrough(ctx, r.p.addr, rate)
				if err != nil {
					return fmt.Errorf("%s: %w", r.p.name, err)
				}
				r.cpu += cpuSeconds(r.p.pids()) - cpu0
				r.conns += st.OK + st.Err
				fmt.Printf("%-8s rate %5d/s: ok %d err %d (resumed %d) achieved %.0f/s set-up p50 %.2f ms p99 %.2f ms\n",
					r.p.name, st.Rate, st.OK, st.Err, resumed, st.Achieved, ms(st.P50), ms(st.P99))
				pause(time.Second) // let the step's closes finish
				if st.passed(*maxErr, *minAchieved) || attempt == 2 {
					r.steps = append(r.steps, st)
					r.failed = !st.passed(*maxErr, *minAchieved)
					break
				}
			}
		}
	}
	for _, r := range live {
		pr := res[r.p.name]
		if r.p.pid != 0 && r.conns > 0 {
			pr.rateCPUus = r.cpu / float64(r.conns) * 1e6
		}
		pr.rate, pr.rateOK = highestPassing(r.steps, *maxErr, *minAchieved)
		fmt.Printf("%-8s highest passing rate %d/s (found %v); proxy CPU %.0f µs per connection over %d connections\n",
			r.p.name, pr.rate.Rate, pr.rateOK, pr.rateCPUus, r.conns)
	}
	return nil
}

// rateStepThrough runs one rate step through addr in a fresh client process.
func rateStepThrough(ctx context.Context, addr string, rate int) (rateStep, int, error) {
	c, err := self(ctx, "-role", "rate", "-target", addr, "-rates", strconv.Itoa(rate), "-n", strconv.Itoa(*rateCount),
		"-conn-timeout", connTimeout.String(), "-max-err", strconv.FormatFloat(*maxErr, 'g', -1, 64),
		"-min-achieved", strconv.FormatFloat(*minAchieved, 'g', -1, 64), "-full-handshakes="+strconv.FormatBool(*fullHS))
	if err != nil {
		return rateStep{}, 0, err
	}
	defer c.stop()
	if _, err := c.readyLine(30 * time.Second); err != nil {
		return rateStep{}, 0, err
	}
	f, err := c.line(5*time.Minute, "step")
	if err != nil {
		return rateStep{}, 0, err
	}
	st := rateStep{Rate: int(atoi64(f[1])), OK: int(atoi64(f[2])), Err: int(atoi64(f[3])),
		P50: time.Duration(atoi64(f[5])), P99: time.Duration(atoi64(f[6]))}
	st.Achieved, _ = strconv.ParseFloat(f[4], 64)
	return st, int(atoi64(f[7])), nil
}

// pause sleeps d, a fifth of it under -quick.
func pause(d time.Duration) {
	if *quick {
		d /= 5
	}
	time.Sleep(d)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- throughput ----

func benchThroughput(ctx context.Context, pl []string, tmp string, res map[string]*pathResult) error {
	_, ps, stop, err := behindProxies(ctx, "sink", "throughput", pl, tmp, 100)
	if err != nil {
		return err
	}
	defer stop()
	// Start every path first, then interleave the rounds, so a noisy
	// neighbour on a shared machine hurts all of them alike.
	type run struct{ mibs, cpuPerGB []float64 }
	type tp struct {
		p    *proxy
		runs map[int]*run
	}
	var live []*tp
	for _, p := range ps {
		live = append(live, &tp{p: p, runs: map[int]*run{1: {}, 16: {}}})
	}
	for range *rounds {
		for _, s := range []int{1, 16} {
			for _, t := range live {
				cpu0 := cpuSeconds(t.p.pids())
				pump, err := self(ctx, "-role", "pump", "-target", t.p.addr, "-bytes", strconv.FormatInt(*nbytes, 10), "-streams", strconv.Itoa(s))
				if err != nil {
					return err
				}
				f, err := pump.line(5*time.Minute, "seconds")
				pump.stop()
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s: pump: %v\n", t.p.name, err)
					continue
				}
				sec, _ := strconv.ParseFloat(f[1], 64)
				moved := float64(atoi64(f[2]))
				r := t.runs[s]
				r.mibs = append(r.mibs, moved/sec/(1<<20))
				if t.p.pid != 0 {
					r.cpuPerGB = append(r.cpuPerGB, (cpuSeconds(t.p.pids())-cpu0)/(moved/1e9))
				}
			}
		}
	}
	for _, t := range live {
		pr := res[t.p.name]
		for _, s := range []int{1, 16} {
			r := t.runs[s]
			best := math.NaN()
			for _, v := range r.mibs {
				if math.IsNaN(best) || v > best {
					best = v
				}
			}
			med, cpu := math.NaN(), math.NaN()
			if len(r.mibs) > 0 {
				med = median(r.mibs)
			}
			if len(r.cpuPerGB) > 0 {
				cpu = median(r.cpuPerGB)
			}
			fmt.Printf("%-8s %2d stream(s): MiB/s runs %.0f, median %.0f; CPU s/GB %.2f\n", t.p.name, s, r.mibs, med, r.cpuPerGB)
			if s == 1 {
				pr.mibs1, pr.best1, pr.cpu1 = med, best, cpu
			} else {
				pr.mibs16, pr.best16, pr.cpu16 = med, best, cpu
			}
		}
	}
	return nil
}

// ---- latency ----

// benchLatency runs -rounds latency windows per path, interleaved across
// the paths (all proxies up at once), and merges each path's samples.
func benchLatency(ctx context.Context, pl []string, tmp string, res map[string]*pathResult) error {
	_, ps, stop, err := behindProxies(ctx, "broker", "latency", pl, tmp, 100)
	if err != nil {
		return err
	}
	defer stop()
	type lp struct {
		p       *proxy
		samples []time.Duration
		errs    int64
	}
	var live []*lp
	for _, p := range ps {
		live = append(live, &lp{p: p})
	}
	window := *duration / time.Duration(max(*rounds, 1))
	for range max(*rounds, 1) {
		for _, l := range live {
			c, err := self(ctx, "-role", "latency", "-target", l.p.addr, "-rate", strconv.Itoa(*rate),
				"-duration", window.String(), "-warmup", warmup.String())
			if err != nil {
				return err
			}
			f, err := c.line(window+*warmup+time.Minute, "lat")
			c.stop()
			if err != nil {
				fmt.Fprintf(os.Stderr, "latency %s: %v\n", l.p.name, err)
				continue
			}
			l.errs += atoi64(f[2])
			for _, v := range f[3:] {
				l.samples = append(l.samples, time.Duration(atoi64(v)))
			}
		}
	}
	for _, l := range live {
		s := sortDurations(l.samples)
		pr := res[l.p.name]
		us := func(d time.Duration) float64 { return float64(d) / 1e3 }
		pr.p50, pr.p99, pr.p999 = us(percentile(s, 50)), us(percentile(s, 99)), us(percentile(s, 99.9))
		fmt.Printf("%-8s %d msgs, %d errors at %d/s in %d windows: p50 %.0f µs p99 %.0f µs p99.9 %.0f µs\n",
			l.p.name, len(s), l.errs, *rate, max(*rounds, 1), pr.p50, pr.p99, pr.p999)
	}
	return nil
}

// ---- the table ----

func resultRows(res map[string]*pathResult) []row {
	get := func(path string, f func(*pathResult) float64) float64 {
		if pr, ok := res[path]; ok {
			return f(pr)
		}
		return math.NaN()
	}
	mk := func(name string, f func(*pathResult) float64, format string, g goal, limit float64) row {
		return row{name: name, relay: get("relay", f), haproxy: get("haproxy", f), nginx: get("nginx", f), direct: get("direct", f),
			relaySplice: get("relay-splice", f),
			format:      func(v float64) string { return fmt.Sprintf(format, v) }, goal: g, limit: limit}
	}
	noted := func(r row) row {
		r.notes = map[string]string{}
		for path, pr := range res {
			r.notes[path] = pr.setupNote
		}
		return r
	}
	nan := math.NaN()
	rate := func(f func(rateStep) float64) func(*pathResult) float64 {
		return func(pr *pathResult) float64 {
			if !pr.rateOK {
				return nan
			}
			return f(pr.rate)
		}
	}
	return []row{
		mk("idle TLS connections held", func(pr *pathResult) float64 { return float64(pr.conns) }, "%.0f", noGoal, 0),
		mk("RSS per idle conn (KB)", func(pr *pathResult) float64 { return pr.rssKB }, "%.2f", atMost, 1.0),
		mk("kernel slab objects per idle conn (KB; proxy's share, direct = both ends)", func(pr *pathResult) float64 { return pr.slabKB }, "%.2f", noGoal, 0),
		mk("kernel socket caches per idle conn (KB; TCP, inode, file, dentry, epoll; proxy's share)", func(pr *pathResult) float64 { return pr.sockSlabKB }, "%.2f", noGoal, 0),
		mk("RSS + kernel socket caches per idle conn (KB)", func(pr *pathResult) float64 { return pr.rssKB + pr.sockSlabKB }, "%.2f", atMost, 1.0),
		mk("sockstat TCP mem per idle conn (KB)", func(pr *pathResult) float64 { return pr.sockKB }, "%.2f", noGoal, 0),
		mk("RSS + kernel per idle conn (KB)", func(pr *pathResult) float64 { return pr.rssKB + pr.slabKB }, "%.2f", atMost, 0.85),
		mk("descriptors per idle conn", func(pr *pathResult) float64 { return pr.fds }, "%.2f", noGoal, 0),
		mk("new connections/s (< 0.1% errors, ≥ 90% of target)", rate(func(s rateStep) float64 { return float64(s.Rate) }), "%.0f", atLeast, 0.8),
		mk("set-up p50 at that rate (ms)", rate(func(s rateStep) float64 { return ms(s.P50) }), "%.2f", noGoal, 0),
		mk("set-up p99 at that rate (ms)", rate(func(s rateStep) float64 { return ms(s.P99) }), "%.2f", noGoal, 0),
		mk("proxy CPU per new connection (µs)", func(pr *pathResult) float64 { return pr.rateCPUus }, "%.0f", noGoal, 0),
		noted(mk("new connections/s at saturation", func(pr *pathResult) float64 { return pr.setup.Rate }, "%.0f", noGoal, 0)),
		mk("failed connections at saturation (all rounds)", func(pr *pathResult) float64 {
			if pr.setup.Rounds == 0 {
				return nan
			}
			return float64(pr.setup.Err)
		}, "%.0f", noGoal, 0),
		noted(mk("proxy CPU per new connection at saturation (µs)", func(pr *pathResult) float64 { return pr.setup.ProxyUs }, "%.0f", atMost, 1.0)),
		mk(fmt.Sprintf("proxy's share of its core at saturation (%%; < %.0f = not saturated)", 100**minBusy), func(pr *pathResult) float64 { return 100 * pr.setup.ProxyUtil }, "%.0f", noGoal, 0),
		mk("proxy's core busy at saturation (%; every process on it)", func(pr *pathResult) float64 { return 100 * pr.setup.ProxyCore }, "%.0f", noGoal, 0),
		mk("load core busy at saturation (%)", func(pr *pathResult) float64 { return 100 * pr.setup.LoadCore }, "%.0f", noGoal, 0),
		mk("throughput, 1 stream, median (MiB/s)", func(pr *pathResult) float64 { return pr.mibs1 }, "%.0f", atLeast, 0.95),
		mk("throughput, 1 stream, best (MiB/s)", func(pr *pathResult) float64 { return pr.best1 }, "%.0f", noGoal, 0),
		mk("proxy CPU, 1 stream (s/GB)", func(pr *pathResult) float64 { return pr.cpu1 }, "%.2f", noGoal, 0),
		mk("throughput, 16 streams, median (MiB/s)", func(pr *pathResult) float64 { return pr.mibs16 }, "%.0f", atLeast, 0.95),
		mk("throughput, 16 streams, best (MiB/s)", func(pr *pathResult) float64 { return pr.best16 }, "%.0f", noGoal, 0),
		mk("proxy CPU, 16 streams (s/GB)", func(pr *pathResult) float64 { return pr.cpu16 }, "%.2f", noGoal, 0),
		mk("MQTT PUBLISH→PUBACK p50 (µs)", func(pr *pathResult) float64 { return pr.p50 }, "%.0f", noGoal, 0),
		mk("MQTT PUBLISH→PUBACK p99 (µs)", func(pr *pathResult) float64 { return pr.p99 }, "%.0f", addedAtMost, 1.5),
		mk("MQTT PUBLISH→PUBACK p99.9 (µs)", func(pr *pathResult) float64 { return pr.p999 }, "%.0f", noGoal, 0),
	}
}
