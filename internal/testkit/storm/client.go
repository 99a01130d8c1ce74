package storm

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/bits"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// ClientEnv names the file a client process reads its ClientSpec from; a
// test binary whose TestMain sees it set runs ClientMain instead of its
// tests (the storm starts its client processes from its own executable).
const ClientEnv = "AGENTGATE_STORM_CLIENT"

// HeapProfileEnv, set in a storm's environment, makes every client process
// write a heap profile to <value>.<first agent> at each report.
const HeapProfileEnv = "AGENTGATE_STORM_HEAPPROFILE"

// ClientSpec is what one client process runs: agents First..First+Count-1
// of the storm, each the real reference agent (package agent) with its own
// certificate and client ID.
type ClientSpec struct {
	CACertPEM, CAKeyPEM []byte
	// RelayPort is the static IPs' port; DNSAddr the DNS stand-in's UDP
	// address.
	RelayPort, DNSAddr string
	First, Count       int
	// StartEvery spaces the agents' starts (the fleet's first connection is
	// not what the storm measures).
	StartEvery time.Duration
	KeepAlive  time.Duration
	// ReconnectSpread is each agent's agent.Config.ReconnectSpread.
	ReconnectSpread time.Duration
	// SignalledAddr is the static IP:port of the relay the storm signals:
	// TCP connects refused there are counted apart (Offer).
	SignalledAddr string
}

// ThingName is storm agent i's thing name and MQTT client ID.
func ThingName(i int) string { return fmt.Sprintf("storm-%05d", i) }

// Topic is where the storm publishes storm agent i's QoS 1 messages.
func Topic(i int) string { return topics.DownTopic(agentlab.CustomerID, ThingName(i), "storm") }

// payload is round r's message; rounds are 1..MaxRounds.
func payload(r int) []byte { return []byte("round-" + strconv.Itoa(r)) }

// MaxRounds bounds the publish rounds: a client keeps each agent's
// distinct rounds in one 64-bit mask.
const MaxRounds = 63

// ClientReport is a client process's answer to "report".
type ClientReport struct {
	// Delivered is, per agent of the process, how many distinct rounds
	// arrived.
	Delivered []int
	// Messages counts deliveries in all, duplicates included.
	Messages int64
	// RSSBefore and RSSNow are the process's resident set before the agents
	// started and now, in bytes; HeapInuse and StackInuse are the Go
	// runtime's.
	RSSBefore, RSSNow, HeapInuse, StackInuse uint64
	Goroutines                               int
	// Failures counts failed connection steps by agent.Event step, with
	// the last error of each.
	Failures  map[string]int64
	LastError map[string]string
}

// ClientMain runs a client process: it reads the spec named by ClientEnv,
// starts the agents, answers each "report" line on stdin with a
// ClientReport line on stdout and each "timeline" line with its agents'
// events per slot (a JSON object of Offer by slotOf), and stops the agents
// when stdin closes.
func ClientMain() int {
	if err := runClient(os.Getenv(ClientEnv), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storm client:", err)
		return 1
	}
	return 0
}

func runClient(specFile string, in io.Reader, out io.Writer) error {
	b, err := os.ReadFile(specFile)
	if err != nil {
		return err
	}
	var spec ClientSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("spec %s: %w", specFile, err)
	}
	if spec.Count < 1 || spec.Count > 20000 {
		return fmt.Errorf("spec %s: count %d outside 1..20000", specFile, spec.Count)
	}
	ca, err := testpki.LoadCA(spec.CACertPEM, spec.CAKeyPEM)
	if err != nil {
		return err
	}
	rssBefore := rss()
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", spec.DNSAddr)
	}}
	dialer := &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: spec.RelayPort, Resolver: resolver, Timeout: 10 * time.Second}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	masks := make([]atomic.Uint64, spec.Count)
	var messages atomic.Int64
	var failMu sync.Mutex
	failures, lastErr := map[string]int64{}, map[string]string{}
	counts := newTally(spec.SignalledAddr)
	onEvent := func(k int) func(agent.Event) {
		return func(e agent.Event) {
			counts.record(k, e)
			if e.Err == nil {
				return
			}
			failMu.Lock()
			failures[e.Step]++
			lastErr[e.Step] = e.Err.Error()
			failMu.Unlock()
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	startErr := make(chan error, 1)
	go func() {
		defer close(startErr)
		for k := range spec.Count {
			i := spec.First + k
			cert, err := ca.ClientLeaf(ThingName(i))
			if err != nil {
				startErr <- err
				return
			}
			mask := &masks[k]
			topic := Topic(i)
			a, err := agent.New(agent.Config{
				CustomerID: agentlab.CustomerID, ThingName: ThingName(i),
				IoTEndpoint: agentlab.IoTHost, CredentialsEndpoint: agentlab.CredsHost, RoleAlias: agentlab.RoleAlias,
				Certificate: cert, RootCAs: ca.Pool, Dialer: dialer,
				KeepAlive: spec.KeepAlive, ReconnectSpread: spec.ReconnectSpread, ConnectTimeout: 30 * time.Second,
				Logger: quiet, OnEvent: onEvent(k),
				OnMessage: func(m agent.Message) {
					messages.Add(1)
					r, ok := strings.CutPrefix(string(m.Payload), "round-")
					n, err := strconv.Atoi(r)
					if m.Topic != topic || !ok || err != nil || n < 1 || n > MaxRounds {
						return
					}
					for {
						old := mask.Load()
						if mask.CompareAndSwap(old, old|1<<n) {
							return
						}
					}
				},
			})
			if err != nil {
				startErr <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.Run(ctx)
			}()
			select {
			case <-ctx.Done():
				return
			case <-time.After(spec.StartEvery):
			}
		}
	}()
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		select {
		case err := <-startErr:
			if err != nil {
				return err
			}
		default:
		}
		switch sc.Text() {
		case "report":
		case "timeline":
			if err := enc.Encode(counts.snapshot()); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("unknown command %q", sc.Text())
		}
		rep := ClientReport{Delivered: make([]int, spec.Count), Messages: messages.Load(), RSSBefore: rssBefore, RSSNow: rss(), Goroutines: runtime.NumGoroutine()}
		for k := range masks {
			rep.Delivered[k] = bits.OnesCount64(masks[k].Load())
		}
		failMu.Lock()
		rep.Failures, rep.LastError = maps.Clone(failures), maps.Clone(lastErr)
		failMu.Unlock()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if path := os.Getenv(HeapProfileEnv); path != "" {
			if f, err := os.Create(fmt.Sprintf("%s.%d", path, spec.First)); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		rep.HeapInuse, rep.StackInuse = ms.HeapInuse, ms.StackInuse
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	return nil
}

// rss is the process's resident set size in bytes (Linux), 0 if unknown.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
