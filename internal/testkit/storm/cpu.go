package storm

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProfileEnv, set in a storm's environment, makes the test process write a
// CPU profile (<value>-<signal>.cpu.pprof) and block and mutex profiles
// (.block.pprof, .mutex.pprof) of the storm, from the signal to recovery.
const ProfileEnv = "AGENTGATE_STORM_PROFILE"

// Busy is how busy the host and the test process were from the signal to
// recovery: the test process hosts the stand-ins, the load balancer
// stand-in and the broker, so when it cannot get the CPU it wants, upgrades
// and CONNECTs queue there and are served late, in bursts.
type Busy struct {
	// Wall is the window; ProcessCPU the test process's user+system CPU
	// time in it; HostBusy the share of all the host's CPUs busy in it
	// (/proc/stat); CPUs the host's.
	Wall, ProcessCPU time.Duration
	HostBusy         float64
	CPUs             int
	// LoadBefore and LoadAfter are the 1-minute load averages at the
	// signal and at recovery.
	LoadBefore, LoadAfter string
}

// String is the one report line of b.
func (b Busy) String() string {
	if b.Wall <= 0 {
		return "not measured"
	}
	return fmt.Sprintf("test process (stand-ins, load balancer stand-in, broker) %.1f CPU-s in %.1f s (%.2f of %d cores); host CPUs %.0f%% busy; load average %s at the signal, %s at recovery",
		b.ProcessCPU.Seconds(), b.Wall.Seconds(), b.ProcessCPU.Seconds()/b.Wall.Seconds(), b.CPUs, 100*b.HostBusy, b.LoadBefore, b.LoadAfter)
}

// busyMeter measures Busy over a window.
type busyMeter struct {
	at             time.Time
	cpu            time.Duration
	hostBusy, host uint64
	load           string
	stopProfile    func()
}

// startBusy starts measuring, with profiles when profile names a prefix.
func startBusy(profile, signal string) *busyMeter {
	m := &busyMeter{at: time.Now(), cpu: processCPU(), load: loadAvg(), stopProfile: func() {}}
	m.hostBusy, m.host = hostCPU()
	if profile != "" {
		m.stopProfile = sync.OnceFunc(startProfiles(profile + "-" + signal))
	}
	return m
}

// finish stops the profiles (once) and returns the measurement so far.
func (m *busyMeter) finish() Busy {
	m.stopProfile()
	busy, total := hostCPU()
	b := Busy{Wall: time.Since(m.at), ProcessCPU: processCPU() - m.cpu, CPUs: runtime.NumCPU(), LoadBefore: m.load, LoadAfter: loadAvg()}
	if total > m.host {
		b.HostBusy = float64(busy-m.hostBusy) / float64(total-m.host)
	}
	return b
}

// startProfiles starts the CPU profile and the block and mutex sampling;
// the returned func writes them.
func startProfiles(prefix string) func() {
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	runtime.SetBlockProfileRate(int(time.Millisecond))
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		for _, name := range []string{"block", "mutex"} {
			if out, err := os.Create(prefix + "." + name + ".pprof"); err == nil {
				pprof.Lookup(name).WriteTo(out, 0)
				out.Close()
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}
}

// processCPU is the process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostCPU reads the host's busy and total CPU ticks from /proc/stat
// (Linux); zeros elsewhere.
func hostCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal; guest and
	// guest_nice are already inside user and nice.
	for i, v := range f[1:min(len(f), 9)] {
		var n uint64
		fmt.Sscan(v, &n)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// loadAvg is the 1-minute load average (Linux), "?" elsewhere.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
