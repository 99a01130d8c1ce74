package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The set-up test's pure parts: the answer record, the ClientHello record
// bound, /proc/stat core times, one window's arithmetic and the saturation
// label.

// setupAnswer is what the set-up test's upstream sends after reading the
// ClientHello record: a TLS fatal alert (handshake_failure), a server
// refusing the handshake. The proxies relay it like any server bytes.
var setupAnswer = []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}

// maxHelloRecord bounds the ClientHello record the set-up upstream reads
// (TLS caps a record's plaintext at 2^14 bytes).
const maxHelloRecord = 1 << 14

// helloRecordLen returns the body length of the TLS handshake record whose
// 5-byte header is h, or an error if it is not a handshake record or is
// longer than maxHelloRecord.
func helloRecordLen(h []byte) (int, error) {
	if len(h) < 5 {
		return 0, errors.New("record header: short")
	}
	if h[0] != 0x16 {
		return 0, fmt.Errorf("record type %#x, want a handshake (0x16)", h[0])
	}
	n := int(binary.BigEndian.Uint16(h[3:5]))
	if n == 0 || n > maxHelloRecord {
		return 0, fmt.Errorf("record length %d, want 1..%d", n, maxHelloRecord)
	}
	return n, nil
}

// coreTimes is one CPU's line of /proc/stat, in clock ticks.
type coreTimes struct {
	busy, total int64 // total includes idle and iowait; busy does not
}

// parseCoreTimes finds the "cpuN" line of a /proc/stat text. Busy time is
// every field except idle (4th) and iowait (5th); guest time is already
// part of user time and is not added twice.
func parseCoreTimes(stat string, cpu int) (coreTimes, error) {
	name := "cpu" + strconv.Itoa(cpu)
	for _, l := range strings.Split(stat, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != name {
			continue
		}
		if len(f) < 5 {
			return coreTimes{}, fmt.Errorf("%s: %d fields", name, len(f)-1)
		}
		var t coreTimes
		for i, s := range f[1:] {
			if i >= 8 { // guest, guest_nice: counted in user, nice
				break
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return coreTimes{}, fmt.Errorf("%s field %d: %w", name, i+1, err)
			}
			t.total += v
			if i != 3 && i != 4 {
				t.busy += v
			}
		}
		return t, nil
	}
	return coreTimes{}, fmt.Errorf("no %s line", name)
}

// busyFrac is the fraction of the core busy between two samples, NaN if
// no time passed.
func busyFrac(before, after coreTimes) float64 {
	dt := after.total - before.total
	if dt <= 0 {
		return math.NaN()
	}
	return float64(after.busy-before.busy) / float64(dt)
}

// setupRound is one recorded window (one round) of the set-up test through one path.
type setupRound struct {
	OK, Err    int64   // connections completed (answer and EOF seen) and failed in the window
	Seconds    float64 // the window's wall time
	ProxyCPU   float64 // proxy utime+stime over the window, seconds; NaN for direct
	GenCPU     float64 // generators' and upstream's utime+stime, seconds
	ProxyCore  float64 // /proc/stat busy fraction of the proxy's core (every process on it)
	LoadCore   float64 // /proc/stat busy fraction of the generators' core
	ProxyAlone bool    // false for direct (no proxy process)
}

// Rate is completed connections per second.
func (w setupRound) Rate() float64 {
	if w.Seconds <= 0 {
		return math.NaN()
	}
	return float64(w.OK) / w.Seconds
}

// ProxyUtil is the proxy's CPU over the window's wall time (1 = its core
// fully used by the proxy).
func (w setupRound) ProxyUtil() float64 {
	if !w.ProxyAlone || w.Seconds <= 0 {
		return math.NaN()
	}
	return w.ProxyCPU / w.Seconds
}

// ProxyUsPerConn is the proxy's CPU per completed or failed connection, µs.
func (w setupRound) ProxyUsPerConn() float64 {
	return perConnUs(w.ProxyCPU, w.OK+w.Err, w.ProxyAlone)
}

// GenUsPerConn is the load side's CPU (generators and upstream) per
// connection, µs.
func (w setupRound) GenUsPerConn() float64 { return perConnUs(w.GenCPU, w.OK+w.Err, true) }

func perConnUs(cpu float64, conns int64, ok bool) float64 {
	if !ok || conns <= 0 {
		return math.NaN()
	}
	return cpu / float64(conns) * 1e6
}

// setupSummary is a path's set-up result over its rounds: medians, and
// errors summed.
type setupSummary struct {
	Rate, ProxyUs, GenUs, ProxyUtil, ProxyCore, LoadCore float64
	Err                                                  int64
	Rounds                                               int
}

// summarizeSetup takes the median of each quantity over the windows
// (quantities that are NaN in a window are left out of its median) and
// sums the errors. No windows give NaNs.
func summarizeSetup(ws []setupRound) setupSummary {
	med := func(f func(setupRound) float64) float64 {
		var xs []float64
		for _, w := range ws {
			if v := f(w); !math.IsNaN(v) {
				xs = append(xs, v)
			}
		}
		if len(xs) == 0 {
			return math.NaN()
		}
		return median(xs)
	}
	s := setupSummary{Rounds: len(ws),
		Rate:      med(setupRound.Rate),
		ProxyUs:   med(setupRound.ProxyUsPerConn),
		GenUs:     med(setupRound.GenUsPerConn),
		ProxyUtil: med(setupRound.ProxyUtil),
		ProxyCore: med(func(w setupRound) float64 { return w.ProxyCore }),
		LoadCore:  med(func(w setupRound) float64 { return w.LoadCore }),
	}
	for _, w := range ws {
		s.Err += w.Err
	}
	return s
}

// saturationNote labels a path's set-up numbers: "" when the proxy used at
// least minBusy of its core (the rate is the proxy's), otherwise a note
// saying the proxy was not saturated, with the share of its core it used
// and what was busy instead: its core (other processes on it) and the load
// core (the generators' limit), each named when at least minBusy busy.
// Direct (NaN utilization) gets no note.
func saturationNote(s setupSummary, minBusy float64) string {
	if math.IsNaN(s.ProxyUtil) || s.ProxyUtil >= minBusy {
		return ""
	}
	note := fmt.Sprintf("not saturated: proxy %.0f%%", 100*s.ProxyUtil)
	if !math.IsNaN(s.ProxyCore) && s.ProxyCore >= minBusy {
		note += fmt.Sprintf(", its core %.0f%%", 100*s.ProxyCore)
	}
	if !math.IsNaN(s.LoadCore) && s.LoadCore >= minBusy {
		note += fmt.Sprintf(", load core %.0f%%", 100*s.LoadCore)
	}
	return note
}
