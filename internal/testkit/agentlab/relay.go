package agentlab

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/testkit/relayproc"
)

// RelayBinary builds the real relay (proxyimage/cmd/relay) once per test
// process and returns its path; Cleanup removes it.
func RelayBinary() (string, error) { return relayproc.Binary() }

// Cleanup removes the relay binary built by RelayBinary; call it from TestMain.
func Cleanup() { relayproc.Cleanup() }

// Relay is one running relay process.
type Relay struct {
	// Addr is the agent-facing listener, Admin the admin HTTP address.
	Addr, Admin string
	// Env is the RELAY_* environment it was started with.
	Env  map[string]string
	proc *relayproc.Process
	// stopped, when set, tells the load balancer the relay no longer
	// accepts connections.
	stopped func()
}

// StartRelay runs the relay binary with env as its only RELAY_*
// configuration (no flags: the environment is what a deployment sets) and
// waits for its "relay started" log line.
func StartRelay(env map[string]string) (*Relay, error) {
	cmdEnv := []string{"PATH=" + os.Getenv("PATH")} // no RELAY_* leaks in from the test's environment
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmdEnv = append(cmdEnv, k+"="+env[k])
	}
	p, err := relayproc.Start(context.Background(), relayproc.Options{Env: cmdEnv, AddressesFromEnv: true, StartTimeout: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	return &Relay{Addr: p.Listen, Admin: p.Admin, Env: env, proc: p}, nil
}

// Kill ends the relay with SIGKILL: every relayed connection drops at once,
// as when a task or host dies, and from that instant its load balancer
// zone refuses connections it would have forwarded to it. The lab tells
// the load balancer stand-in just before the signal: a real NLB does not
// complete a client's handshake itself, so the client's connect fails as
// soon as the target is gone, and only this keeps the stand-in's refusal
// at connect time too (docs/lab.md).
func (r *Relay) Kill() {
	if r.stopped != nil {
		r.stopped()
	}
	r.KillSilently()
}

// KillSilently ends the relay with SIGKILL without telling the load
// balancer stand-in, which then finds out by itself: the first connection
// it forwards to the dead relay is refused, that client is reset right
// after its handshake, and the zone refuses connections from then on.
func (r *Relay) KillSilently() { r.proc.Kill() }

// Terminate sends SIGTERM (the relay drains: unready, stop accepting,
// close connections spread over its drain window) and waits for it to exit.
func (r *Relay) Terminate() {
	r.proc.Signal(syscall.SIGTERM)
	<-r.proc.Done()
	if r.stopped != nil {
		r.stopped()
	}
}

// Logs returns what the relay logged so far.
func (r *Relay) Logs() string { return r.proc.Logs() }

// Metric returns the sum of a Prometheus counter or gauge's samples whose
// labels include all of labels ("name=value"), from the relay's /metrics.
func (r *Relay) Metric(name string, labels ...string) (float64, error) {
	resp, err := adminClient.Get("http://" + r.Admin + relayspec.MetricsPath)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return SumMetric(string(body), name, labels...)
}

// adminClient talks to a relay's admin port as a peer inside the VPC
// does: the port requires a PROXY v2 header (the relay runs with proxy
// protocol required), so every connection starts with a LOCAL one.
var adminClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if _, err := c.Write(awsstandin.ProxyV2LocalHeader()); err != nil {
				c.Close()
				return nil, err
			}
			return c, nil
		},
	},
}

// SumMetric sums the samples of name in a Prometheus text exposition whose
// labels include every "name=value" in labels.
func SumMetric(text, name string, labels ...string) (float64, error) {
	var sum float64
	found := false
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		var lbl string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.Index(rest, "}")
			if end < 0 {
				continue
			}
			lbl, rest = rest[1:end], rest[end+1:]
		case strings.HasPrefix(rest, " "):
		default:
			continue
		}
		ok := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			if !strings.Contains(","+lbl+",", ","+k+"=\""+v+"\",") {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += f
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no sample of %s with %v", name, labels)
	}
	return sum, nil
}
