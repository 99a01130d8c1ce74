//go:build linux

package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestHelloRecordLen(t *testing.T) {
	if n, err := helloRecordLen([]byte{0x16, 3, 1, 0x02, 0x00}); err != nil || n != 512 {
		t.Fatalf("got %d %v, want 512", n, err)
	}
	if n, err := helloRecordLen([]byte{0x16, 3, 1, 0x40, 0x00}); err != nil || n != maxHelloRecord {
		t.Fatalf("largest record: %d %v", n, err)
	}
	for name, h := range map[string][]byte{
		"short":       {0x16, 3, 1, 0},
		"alert":       {0x15, 3, 3, 0, 2},
		"application": {0x17, 3, 3, 0, 5},
		"empty":       {0x16, 3, 1, 0, 0},
		"too long":    {0x16, 3, 1, 0x40, 0x01},
	} {
		if _, err := helloRecordLen(h); err == nil {
			t.Errorf("%s header %x accepted", name, h)
		}
	}
}

func TestSetupAnswerIsOneAlertRecord(t *testing.T) {
	// The answer must be a complete record so that a reader can check it
	// byte for byte: type, version, length matching the body.
	if len(setupAnswer) < 5 || setupAnswer[0] != 0x15 || int(setupAnswer[3])<<8|int(setupAnswer[4]) != len(setupAnswer)-5 {
		t.Fatalf("setupAnswer %x is not one alert record", setupAnswer)
	}
}

const procStatText = `cpu  1000 10 500 9000 100 0 50 0 0 0
cpu0 600 5 300 4000 50 0 40 0 0 0
cpu1 400 5 200 5000 50 0 10 0 7 0
intr 12345
`

func TestParseCoreTimes(t *testing.T) {
	c0, err := parseCoreTimes(procStatText, 0)
	if err != nil || c0.busy != 600+5+300+40 || c0.total != 600+5+300+4000+50+40 {
		t.Fatalf("cpu0 %+v %v", c0, err)
	}
	// guest (7) is already in user: not counted twice.
	c1, err := parseCoreTimes(procStatText, 1)
	if err != nil || c1.busy != 400+5+200+10 || c1.total != 400+5+200+5000+50+10 {
		t.Fatalf("cpu1 %+v %v", c1, err)
	}
	if _, err := parseCoreTimes(procStatText, 2); err == nil {
		t.Error("cpu2 found")
	}
	// "cpu1" must not match "cpu10".
	if c, err := parseCoreTimes("cpu10 1 1 1 1 1\ncpu1 2 0 0 2 0\n", 1); err != nil || c.busy != 2 || c.total != 4 {
		t.Errorf("cpu1 next to cpu10: %+v %v", c, err)
	}
	for _, bad := range []string{"cpu0 1 2 3\n", "cpu0 1 x 3 4 5\n", ""} {
		if _, err := parseCoreTimes(bad, 0); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestBusyFrac(t *testing.T) {
	if got := busyFrac(coreTimes{busy: 100, total: 1000}, coreTimes{busy: 190, total: 1100}); got != 0.9 {
		t.Errorf("got %v, want 0.9", got)
	}
	if got := busyFrac(coreTimes{busy: 1, total: 5}, coreTimes{busy: 1, total: 5}); !math.IsNaN(got) {
		t.Errorf("no time passed: %v", got)
	}
}

func TestSetupRoundArithmetic(t *testing.T) {
	w := setupRound{OK: 49_900, Err: 100, Seconds: 5, ProxyCPU: 4.5, GenCPU: 4, ProxyAlone: true}
	if got := w.Rate(); got != 9980 {
		t.Errorf("rate %v, want 9980 (completed only)", got)
	}
	if got := w.ProxyUtil(); got != 0.9 {
		t.Errorf("util %v", got)
	}
	// Failed connections cost the proxy too: 4.5 s over 50,000.
	if got := w.ProxyUsPerConn(); math.Abs(got-90) > 1e-9 {
		t.Errorf("proxy µs/conn %v, want 90", got)
	}
	if got := w.GenUsPerConn(); math.Abs(got-80) > 1e-9 {
		t.Errorf("load µs/conn %v, want 80", got)
	}
	direct := setupRound{OK: 10, Seconds: 1, ProxyCPU: math.NaN(), GenCPU: 1}
	if !math.IsNaN(direct.ProxyUtil()) || !math.IsNaN(direct.ProxyUsPerConn()) || direct.GenUsPerConn() != 1e5 {
		t.Errorf("direct: util %v µs %v gen %v", direct.ProxyUtil(), direct.ProxyUsPerConn(), direct.GenUsPerConn())
	}
	none := setupRound{Seconds: 5, ProxyCPU: 1, ProxyAlone: true}
	if !math.IsNaN(none.ProxyUsPerConn()) || none.Rate() != 0 {
		t.Errorf("no connections: µs %v rate %v", none.ProxyUsPerConn(), none.Rate())
	}
}

func TestSummarizeSetup(t *testing.T) {
	ws := []setupRound{
		{OK: 5000, Err: 1, Seconds: 1, ProxyCPU: 0.5, GenCPU: 0.6, ProxyCore: 0.6, LoadCore: 1, ProxyAlone: true},
		{OK: 9000, Err: 2, Seconds: 1, ProxyCPU: 0.9, GenCPU: 0.9, ProxyCore: 0.95, LoadCore: 1, ProxyAlone: true},
		{OK: 8000, Seconds: 1, ProxyCPU: 0.96, GenCPU: 0.8, ProxyCore: 1, LoadCore: 0.99, ProxyAlone: true},
	}
	s := summarizeSetup(ws)
	if s.Rate != 8000 || s.Err != 3 || s.Rounds != 3 || s.ProxyUtil != 0.9 || s.ProxyCore != 0.95 || s.LoadCore != 1 {
		t.Errorf("%+v", s)
	}
	// Per-round µs/conn: 99.980 (0.5 s / 5,001), 99.978 (0.9 s / 9,002), 120;
	// the median is the middle round's own ratio, not total CPU over total
	// connections (101.8).
	if want := 0.5 / 5001 * 1e6; math.Abs(s.ProxyUs-want) > 1e-6 {
		t.Errorf("proxy µs %v, want %v", s.ProxyUs, want)
	}
	if e := summarizeSetup(nil); !math.IsNaN(e.Rate) || !math.IsNaN(e.ProxyUs) || e.Rounds != 0 {
		t.Errorf("no rounds: %+v", e)
	}
}

func TestSaturationNote(t *testing.T) {
	if n := saturationNote(setupSummary{ProxyUtil: 0.93, ProxyCore: 1, LoadCore: 1}, 0.9); n != "" {
		t.Errorf("saturated proxy noted: %q", n)
	}
	if n := saturationNote(setupSummary{ProxyUtil: math.NaN(), LoadCore: 1}, 0.9); n != "" {
		t.Errorf("direct noted: %q", n)
	}
	n := saturationNote(setupSummary{ProxyUtil: 0.62, ProxyCore: 0.65, LoadCore: 0.99}, 0.9)
	if want := "not saturated: proxy 62%, load core 99%"; n != want {
		t.Errorf("generator-bound: %q, want %q", n, want)
	}
	n = saturationNote(setupSummary{ProxyUtil: 0.3, ProxyCore: 0.97, LoadCore: 0.5}, 0.9)
	if want := "not saturated: proxy 30%, its core 97%"; n != want {
		t.Errorf("neighbour-bound: %q, want %q", n, want)
	}
}

func TestTableNotes(t *testing.T) {
	r := row{name: "µs", relay: 120, haproxy: 100, nginx: 90, direct: math.NaN(), relaySplice: math.NaN(),
		format: func(v float64) string { return fmt.Sprintf("%.0f", v) }, goal: atMost, limit: 1, notes: map[string]string{"haproxy": "not saturated"}}
	out := table([]row{r})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := "| µs | 120 | 100 (not saturated) | 90 | – | 1.20 | ≤ 1.00× | no (see notes) |"
	if len(lines) != 3 || lines[2] != want {
		t.Fatalf("got\n%s\nwant row\n%s", out, want)
	}
	r.notes = map[string]string{"nginx": "not saturated"}
	if got := strings.Split(strings.TrimSpace(table([]row{r})), "\n")[2]; !strings.HasSuffix(got, "| 1.20 | ≤ 1.00× | no |") {
		t.Errorf("a note on nginx qualified the relay's goal: %s", got)
	}
}

func TestAnswerConnFeed(t *testing.T) {
	rec := append([]byte{0x16, 3, 1, 0, 4}, 1, 2, 3, 4)
	// Any split of the record completes exactly at its last byte.
	for cut := 0; cut <= len(rec); cut++ {
		var c answerConn
		done1, err1 := c.feed(rec[:cut])
		done2, err2 := c.feed(rec[cut:])
		if err1 != nil || err2 != nil || (done1 && cut < len(rec)) || !done2 {
			t.Errorf("cut %d: %v %v %v %v", cut, done1, err1, done2, err2)
		}
	}
	var c answerConn
	if _, err := c.feed(append(append([]byte(nil), rec...), 0x16)); err == nil {
		t.Error("bytes past the record accepted")
	}
	c = answerConn{}
	if _, err := c.feed([]byte{0x17, 3, 3, 0, 1}); err == nil {
		t.Error("an application-data record accepted")
	}
	c = answerConn{}
	if done, err := c.feed([]byte{0x16, 3}); done || err != nil {
		t.Errorf("partial header: %v %v", done, err)
	}
}
