//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

// CPUs: the proxy under test gets one core to itself, everything else
// (orchestrator, load generators, upstreams) shares the other.
const (
	proxyCPU = "0"
	loadCPU  = "1"
)

// child is a process started by the orchestrator.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// stop closes the child's stdin (roles exit on that) and kills it if it
// has not exited within five seconds.
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

// kill ends a child that does not read stdin (HAProxy, nginx).
func (c *child) kill() {
	c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// line waits for the child's next stdout line starting with one of
// prefixes and returns its fields.
func (c *child) line(d time.Duration, prefixes ...string) ([]string, error) {
	type res struct {
		line string
		err  error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			l, err := c.out.ReadString('\n')
			if err != nil {
				ch <- res{l, err}
				return
			}
			for _, p := range prefixes {
				if strings.HasPrefix(l, p+" ") || strings.TrimSpace(l) == p {
					ch <- res{l, nil}
					return
				}
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("child exited before %q: %w", prefixes, r.err)
		}
		return strings.Fields(r.line), nil
	case <-time.After(d):
		return nil, fmt.Errorf("no %q line from child in %v", prefixes, d)
	}
}

// readyLine waits for the child's "ready" line.
func (c *child) readyLine(d time.Duration) ([]string, error) { return c.line(d, "ready") }

var haveTaskset = func() bool { _, err := exec.LookPath("taskset"); return err == nil }()

// spawn starts name pinned to cpu (taskset execs the program, so the pid
// is the program's own).
func spawn(ctx context.Context, cpu, name string, args []string, env ...string) (*child, error) {
	if haveTaskset && cpu != "" {
		args = append([]string{"-c", cpu, name}, args...)
		name = "taskset"
	}
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

// self re-executes this binary in a role, on the load generator's core.
func self(ctx context.Context, args ...string) (*child, error) {
	return spawnSelfOn(ctx, loadCPU, args...)
}

// spawnSelfOn re-executes this binary in a role on cpu, with GOMAXPROCS=1.
func spawnSelfOn(ctx context.Context, cpu string, args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return spawn(ctx, cpu, exe, args, "GOMAXPROCS=1")
}

func listenLocal() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	return ln
}

func freePort() string {
	ln := listenLocal()
	defer ln.Close()
	return ln.Addr().String()
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

// procTree returns pid and its direct children (nginx's worker).
func procTree(pid int) []int {
	pids := []int{pid}
	es, _ := os.ReadDir("/proc")
	for _, e := range es {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(p); err == nil && st.ppid == pid {
			pids = append(pids, p)
		}
	}
	return pids
}

type procStat struct {
	ppid         int
	utime, stime int64 // clock ticks
}

// readStat parses /proc/PID/stat (the command name may contain spaces and
// parentheses, so fields are counted from the last ')').
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

func parseStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, errors.New("stat: no ')'")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, errors.New("stat: too few fields")
	}
	var st procStat
	var err1, err2, err3 error
	st.ppid, err1 = strconv.Atoi(f[1])
	st.utime, err2 = strconv.ParseInt(f[11], 10, 64)
	st.stime, err3 = strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("stat: %w", err)
	}
	return st, nil
}

// clockTick is USER_HZ, 100 on every Linux architecture Go supports.
const clockTick = 100

// cpuSeconds is user+system CPU of pids.
func cpuSeconds(pids []int) float64 {
	var t int64
	for _, p := range pids {
		if st, err := readStat(p); err == nil {
			t += st.utime + st.stime
		}
	}
	return float64(t) / clockTick
}

// rssKB sums VmRSS of pids.
func rssKB(pids []int) int64 {
	var t int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err == nil {
			t += max(fieldKB(string(b), "VmRSS"), 0)
		}
	}
	return t
}

// fdCount sums open descriptors of pids.
func fdCount(pids []int) int {
	t := 0
	for _, p := range pids {
		es, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p))
		t += len(es)
	}
	return t
}

// fieldKB returns the number after "field:" in a /proc key-value file, or -1.
func fieldKB(s, field string) int64 {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) < 2 {
				return -1
			}
			v, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return v
		}
	}
	return -1
}

func meminfoKB(field string) int64 {
	b, _ := os.ReadFile("/proc/meminfo")
	return fieldKB(string(b), field)
}

// tcpSockstat returns the TCP line of /proc/net/sockstat and its mem field
// (pages of socket buffers, machine-wide).
func tcpSockstat() (line string, memPages int64) {
	b, _ := os.ReadFile("/proc/net/sockstat")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "TCP:") {
			f := strings.Fields(l)
			for i := 1; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					memPages, _ = strconv.ParseInt(f[i+1], 10, 64)
				}
			}
			return strings.TrimSpace(l), memPages
		}
	}
	return "", 0
}

// loadavg returns the first three fields of /proc/loadavg.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// kernelObjectsKB is the kernel's live slab objects in KB (active objects ×
// object size, every cache in /proc/slabinfo) without TIME_WAIT sockets:
// earlier phases' closed connections leave TIME_WAIT entries that expire
// (60 s) during a later measurement and would be counted against it. It
// falls back to /proc/meminfo's Slab if slabinfo is not readable.
func kernelObjectsKB() int64 {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return meminfoKB("Slab")
	}
	if v, ok := parseSlabinfo(string(b)); ok {
		return v
	}
	return meminfoKB("Slab")
}

// parseSlabinfo sums active_objs × objsize over the caches of a
// /proc/slabinfo (version 2.1) text, except tw_sock_*, in KB.
func parseSlabinfo(s string) (int64, bool) {
	caches, ok := slabCaches(s)
	if !ok {
		return 0, false
	}
	var bytes int64
	for name, b := range caches {
		if !strings.HasPrefix(name, "tw_sock") {
			bytes += b
		}
	}
	return bytes / 1024, true
}

// slabCaches maps each cache of a /proc/slabinfo text to the bytes of its
// live objects (active_objs × objsize).
func slabCaches(s string) (map[string]int64, bool) {
	caches := map[string]int64{}
	for _, l := range strings.Split(s, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "slabinfo") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 4 {
			return nil, false
		}
		active, err1 := strconv.ParseInt(f[1], 10, 64)
		size, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		caches[f[0]] += active * size
	}
	return caches, len(caches) > 0
}

// socketCaches are the slab caches an idle proxied socket occupies: the
// TCP socket, its inode, file and dentry, and epoll registrations. Their
// growth is attributable to the connections; the machine-wide total also
// moves with whatever else runs (builds, other tests).
var socketCaches = []string{"TCP", "sock_inode_cache", "filp", "dentry", "eventpoll_epi", "eventpoll_pwq"}

// cacheGrowth sums the growth of the named caches, in bytes.
func cacheGrowth(before, after map[string]int64, names []string) int64 {
	var d int64
	for _, n := range names {
		d += after[n] - before[n]
	}
	return d
}

// readSlabCaches reads /proc/slabinfo (nil if unreadable).
func readSlabCaches() map[string]int64 {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		return nil
	}
	c, _ := slabCaches(string(b))
	return c
}

// topGrowth names the caches that grew most between two snapshots, as
// "name=+bytes/conn", largest first.
func topGrowth(before, after map[string]int64, conns, k int) string {
	type g struct {
		name string
		d    int64
	}
	var gs []g
	for name, b := range after {
		if d := b - before[name]; d > 0 && !strings.HasPrefix(name, "tw_sock") {
			gs = append(gs, g{name, d})
		}
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].d > gs[j].d })
	var out []string
	for i := 0; i < len(gs) && i < k; i++ {
		out = append(out, fmt.Sprintf("%s=+%.0fB", gs[i].name, float64(gs[i].d)/float64(max(conns, 1))))
	}
	return strings.Join(out, " ")
}
