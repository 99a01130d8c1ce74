//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// benchSetup saturates each proxy's core with new connections that carry a
// real ClientHello but no TLS crypto (setuproles.go): -setup-gens closed-loop
// generator processes with -setup-conc connections in flight each, for
// -setup-warmup (not recorded) and -setup-window (recorded), through each
// path in turn, -setup-rounds times, interleaved. Per window it samples
// the proxy's utime+stime, the generators' and upstream's, and /proc/stat
// for both cores.
func benchSetup(ctx context.Context, pl []string, tmp string, res map[string]*pathResult) error {
	up, ps, stop, err := behindProxies(ctx, "answer", "setup", pl, tmp, 19000/2)
	if err != nil {
		return err
	}
	defer stop()
	type sp struct {
		p  *proxy
		ws []setupRound
	}
	var live []*sp
	for _, p := range ps {
		live = append(live, &sp{p: p})
	}
	upPid := up.cmd.Process.Pid
	for round := range max(*setupRounds, 1) {
		for _, s := range live {
			w, err := setupRoundThrough(ctx, s.p, upPid)
			if err != nil {
				return fmt.Errorf("%s: %w", s.p.name, err)
			}
			s.ws = append(s.ws, w)
			fmt.Printf("%-8s round %d: %.0f conn/s, ok %d err %d; proxy %s of its core, %s µs/conn; cores busy: proxy's %.0f%%, load's %.0f%%; load side %.0f µs/conn\n",
				s.p.name, round+1, w.Rate(), w.OK, w.Err, pct(w.ProxyUtil()), num(w.ProxyUsPerConn()), 100*w.ProxyCore, 100*w.LoadCore, w.GenUsPerConn())
			pause(time.Second) // let the window's last closes finish
		}
	}
	for _, s := range live {
		sum := summarizeSetup(s.ws)
		pr := res[s.p.name]
		pr.setup, pr.setupNote = sum, saturationNote(sum, *minBusy)
		note := ""
		if pr.setupNote != "" {
			note = " (" + pr.setupNote + ")"
		}
		fmt.Printf("%-8s median of %d: %.0f new conn/s, %d errors, proxy CPU %s µs per connection, proxy %s of its core%s; load core %.0f%% busy, load side %.0f µs/conn\n",
			s.p.name, sum.Rounds, sum.Rate, sum.Err, num(sum.ProxyUs), pct(sum.ProxyUtil), note, 100*sum.LoadCore, sum.GenUs)
	}
	return nil
}

// setupRoundThrough runs one round (window) through p: starts the generators,
// waits out the warm-up, samples, waits out the window, samples again and
// collects the generators' counts.
func setupRoundThrough(ctx context.Context, p *proxy, upPid int) (setupRound, error) {
	var gens []*child
	defer func() {
		for _, g := range gens {
			g.stop()
		}
	}()
	for i := range *setupGens {
		g, err := self(ctx, "-role", "setup", "-target", p.addr, "-gen-index", strconv.Itoa(i),
			"-setup-conc", strconv.Itoa(*setupConc), "-setup-client", *setupClient, "-setup-sources", strconv.Itoa(*setupSources),
			"-setup-warmup", setupWarmup.String(), "-setup-window", setupWindow.String(), "-conn-timeout", connTimeout.String())
		if err != nil {
			return setupRound{}, err
		}
		gens = append(gens, g)
	}
	for _, g := range gens {
		if _, err := g.readyLine(30 * time.Second); err != nil {
			return setupRound{}, err
		}
	}
	start := time.Now().Add(100 * time.Millisecond)
	for _, g := range gens {
		if _, err := fmt.Fprintf(g.stdin, "start %d\n", start.UnixNano()); err != nil {
			return setupRound{}, err
		}
	}
	loadPids := func() []int {
		pids := []int{upPid}
		for _, g := range gens {
			pids = append(pids, g.cmd.Process.Pid)
		}
		return pids
	}
	time.Sleep(time.Until(start.Add(*setupWarmup)))
	t0, p0, g0, c0 := time.Now(), cpuSeconds(p.pids()), cpuSeconds(loadPids()), readCores()
	time.Sleep(time.Until(start.Add(*setupWarmup + *setupWindow)))
	t1, p1, g1, c1 := time.Now(), cpuSeconds(p.pids()), cpuSeconds(loadPids()), readCores()
	w := setupRound{Seconds: t1.Sub(t0).Seconds(), ProxyCPU: p1 - p0, GenCPU: g1 - g0, ProxyAlone: p.pid != 0,
		ProxyCore: busyFrac(c0[0], c1[0]), LoadCore: busyFrac(c0[1], c1[1])}
	if !w.ProxyAlone {
		w.ProxyCPU = math.NaN()
	}
	for _, g := range gens {
		f, err := g.line(*setupWindow+*connTimeout+30*time.Second, "setup")
		if err != nil {
			return setupRound{}, err
		}
		ok, errs := atoi64(f[1]), atoi64(f[2])
		w.OK += ok
		w.Err += errs
		if errs > 0 && len(f) > 3 {
			fmt.Fprintf(os.Stderr, "setup %s: %d errors, first %s\n", p.name, errs, strings.Join(f[3:], " "))
		}
	}
	return w, nil
}

// readCores samples /proc/stat for the proxy's core and the load core
// (zero times if unreadable: the busy fractions are then NaN).
func readCores() [2]coreTimes {
	var out [2]coreTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return out
	}
	for i, cpu := range []string{proxyCPU, loadCPU} {
		n, _ := strconv.Atoi(cpu)
		out[i], _ = parseCoreTimes(string(b), n)
	}
	return out
}

// pct formats a fraction as a percentage ("–" for NaN).
func pct(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*f)
}

// num formats a value with no decimals ("–" for NaN).
func num(f float64) string {
	if math.IsNaN(f) {
		return "–"
	}
	return fmt.Sprintf("%.0f", f)
}
