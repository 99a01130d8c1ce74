package storm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent"
)

// at is slot s's start plus off, for building events at known slots.
func at(s int64, off time.Duration) time.Time { return time.Unix(0, s*int64(SlotWidth)).Add(off) }

// TestTimelinePeak: the peak is the busiest window of ten consecutive
// slots, wherever it starts (not only at whole seconds), with its offset;
// Seconds sums whole seconds; totals are sums.
func TestTimelinePeak(t *testing.T) {
	tl := newTimeline(1000, 1049) // 5 s
	for i := range tl.Slots {
		tl.Slots[i].Seen.Connects = 1
	}
	for i := 15; i < 25; i++ { // 1.5 s to 2.5 s: 30 a slot, straddling two seconds
		tl.Slots[i].Seen.Connects = 30
	}
	per, off := tl.Peak(colConnects)
	if per != 300 || off != 1500*time.Millisecond {
		t.Errorf("peak %d at %s, want 300 at 1.5s", per, off)
	}
	secs := tl.Seconds()
	if len(secs) != 5 || secs[1].Seen.Connects != 5+150 || secs[2].Seen.Connects != 150+5 || secs[0].Seen.Connects != 10 {
		t.Errorf("seconds %+v", secs)
	}
	if got := tl.Total(colConnects); got != 40+300 {
		t.Errorf("total %d, want 340", got)
	}
	short := newTimeline(0, 3)
	for i := range short.Slots {
		short.Slots[i].Agents.Offered = 2
	}
	if per, off := short.Peak(colOffered); per != 8 || off != 0 {
		t.Errorf("shorter than a window: %d at %s, want its sum 8 at 0", per, off)
	}
	if per, _ := newTimeline(5, 4).Peak(colOffered); per != 0 {
		t.Errorf("empty timeline peak %d", per)
	}
}

// TestTimelineKeepsItsSlots: slots before the signal (the fleet's first
// connection) and after the end are left out; the clients' slots add up.
func TestTimelineKeepsItsSlots(t *testing.T) {
	tl := newTimeline(100, 119)
	tl.addAgents(map[int64]Offer{99: {Offered: 7}, 100: {Offered: 1, LatencyMaxMs: 5}, 119: {Offered: 2}, 120: {Offered: 9}})
	tl.addAgents(map[int64]Offer{100: {Offered: 3, LatencyMaxMs: 9, RefusedSignalled: 2, Refused: 1}})
	tl.addSeen(map[int64]Seen{99: {Connects: 4}, 110: {Connects: 1, Upgrades: 2}})
	r := tl.Rates()
	if r.Offered != 6 || r.Reaching != 3 || r.PeakReaching != 2 || r.PeakReachingAt != time.Second || r.Connects != 1 || r.Upgrades != 2 {
		t.Errorf("rates %+v, want 6 offered, 3 of them not refused (peak 2 from 1s: slot 100 has 1, slot 119 has 2), 1 connect, 2 upgrades", r)
	}
	if s := tl.Slots[0].Agents; s.Offered != 4 || s.LatencyMaxMs != 9 {
		t.Errorf("slot 0 %+v, want 4 offered, latency max 9", s)
	}
}

// TestSpread: a counter's increase is shared among the slots its interval
// overlaps, in proportion, in whole events that sum to it.
func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		from, to time.Time
		n        int64
		want     map[int64]int64
	}{
		{at(10, 0), at(10, 50*time.Millisecond), 7, map[int64]int64{10: 7}},
		{at(10, 50*time.Millisecond), at(11, 50*time.Millisecond), 10, map[int64]int64{10: 5, 11: 5}},
		{at(10, 0), at(13, 0), 30, map[int64]int64{10: 10, 11: 10, 12: 10}}, // to is slot 13's first instant: 0 there
		{at(10, 0), at(12, 0), 3, map[int64]int64{10: 2, 11: 1}},
		{at(10, 0), at(10, 0), 4, map[int64]int64{10: 4}},
		{at(10, 0), at(9, 0), 4, map[int64]int64{9: 4}},
	} {
		got := spread(tc.from, tc.to, tc.n)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("spread(%d→%d, %d) = %v, want %v", tc.from.UnixMilli(), tc.to.UnixMilli(), tc.n, got, tc.want)
		}
	}
}

// TestTallyCountsEachAttemptOnce: an attempt counts as offered at its
// presign; a refused TCP connect, which the agent reports at the TCP step
// and again at the upgrade, fails it once, apart at the signalled relay's
// address; the CONNACK's latency is from the attempt's start.
func TestTallyCountsEachAttemptOnce(t *testing.T) {
	const sig, other = "127.0.0.2:8443", "127.0.0.3:8443"
	refused := &syscallErr{syscall.ECONNREFUSED}
	c := newTally(sig)
	ev := func(k int, step, detail string, err error, when time.Time) {
		c.record(k, agent.Event{Step: step, Detail: detail, Err: err, Time: when})
	}
	// Agent 0: lost in slot 10, refused at the signalled IP in slot 20,
	// then refused elsewhere, then a timeout, then connected in slot 40.
	ev(0, agent.StepDisconnect, "", nil, at(10, 0))
	ev(0, agent.StepCredentials, "", nil, at(20, 0))
	ev(0, agent.StepPresign, "", nil, at(20, 0))
	ev(0, agent.StepTCP, sig, refused, at(20, time.Millisecond))
	ev(0, agent.StepUpgrade, "", fmt.Errorf("no address accepted: %s: connect: connection refused", sig), at(20, time.Millisecond))
	ev(0, agent.StepPresign, "", nil, at(25, 0))
	ev(0, agent.StepTCP, other, refused, at(25, 0))
	ev(0, agent.StepPresign, "", nil, at(30, 0))
	ev(0, agent.StepUpgrade, "", context.DeadlineExceeded, at(33, 0))
	ev(0, agent.StepConnect, "", errors.New("connect: context deadline exceeded"), at(33, 0))
	ev(0, agent.StepPresign, "", nil, at(40, 0))
	ev(0, agent.StepUpgrade, "", nil, at(40, 20*time.Millisecond))
	ev(0, agent.StepConnect, "session present=true", nil, at(40, 70*time.Millisecond))
	ev(0, agent.StepSubscribe, "kept by the session", nil, at(40, 80*time.Millisecond))
	// Agent 1, CONNACKed in the same slot after 150 ms; a later failed
	// status publish is not an attempt's failure.
	ev(1, agent.StepPresign, "", nil, at(38, 90*time.Millisecond))
	ev(1, agent.StepConnect, "", nil, at(40, 40*time.Millisecond))
	ev(1, agent.StepStatus, "", errors.New("EOF"), at(41, 0))

	got := c.snapshot()
	want := map[int64]Offer{
		10: {Lost: 1},
		20: {Offered: 1, RefusedSignalled: 1},
		25: {Offered: 1, Refused: 1},
		30: {Offered: 1},
		33: {Timeouts: 1},
		38: {Offered: 1},
		40: {Offered: 1, Upgraded: 1, Connacked: 2, LatencySumMs: 70 + 150, LatencyMaxMs: 150},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("slots\n got %v\nwant %v", got, want)
	}
	var sum Offer
	for _, o := range got {
		sum.add(o)
	}
	if sum.Failed() != 3 || sum.Offered != 5 {
		t.Errorf("%d failed of %d offered, want 3 of 5", sum.Failed(), sum.Offered)
	}
}

type syscallErr struct{ errno syscall.Errno }

func (e *syscallErr) Error() string { return "connect: " + e.errno.Error() }
func (e *syscallErr) Unwrap() error { return e.errno }

// TestCause sorts the errors the agents report.
func TestCause(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want failureCause
	}{
		{&syscallErr{syscall.ECONNREFUSED}, causeRefused},
		{errors.New("unreachable: no address accepted a connection: 127.0.0.2:1: connection refused"), causeRefused},
		{fmt.Errorf("upgrade: %w", context.DeadlineExceeded), causeTimeout},
		{errors.New("dial tcp 127.0.0.3:1: i/o timeout"), causeTimeout},
		{&syscallErr{syscall.ECONNRESET}, causeReset},
		{errors.New("websocket: bad handshake: unexpected EOF"), causeReset},
		{errors.New("refused: CONNACK 0x87 not authorized"), causeOther},
	} {
		if got := cause(tc.err); got != tc.want {
			t.Errorf("cause(%q) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// TestTimelinePrintAndCSV: one line per second under the column header; one CSV
// row per slot plus the header, offsets in ms.
func TestTimelinePrintAndCSV(t *testing.T) {
	tl := newTimeline(0, 24)
	tl.Slots[12].Agents = Offer{Offered: 3, Connacked: 2, LatencySumMs: 300, LatencyMaxMs: 200}
	tl.Slots[12].Seen.Connects = 2
	var b bytes.Buffer
	tl.Print(&b)
	_, table, ok := strings.Cut(b.String(), " s lost offered")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if !ok || len(lines) != 1+3 {
		t.Fatalf("want the column header and 3 seconds:\n%s", b.String())
	}
	if f := strings.Fields(lines[2]); len(f) != 18 || f[0] != "1" || f[2] != "3" || f[9] != "2" || f[10] != "150ms" || f[11] != "200ms" || f[15] != "2" {
		t.Errorf("second 1: %q", lines[2])
	}
	b.Reset()
	if err := tl.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(rows) != 1+25 || !strings.HasPrefix(rows[13], "1200,0,3,") {
		t.Errorf("csv: %d rows, row 13 %q", len(rows), rows[13])
	}
}
