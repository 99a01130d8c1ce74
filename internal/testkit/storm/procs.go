package storm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
)

// client is one running client process (ClientMain) and its pipes.
type client struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	stderr *syncbuf.Buffer
	exited chan error
	count  int
}

func (c *client) report() (ClientReport, error) {
	var rep ClientReport
	if _, err := io.WriteString(c.stdin, "report\n"); err != nil {
		return rep, fmt.Errorf("client: %w; stderr:\n%s", err, c.stderr.String())
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return rep, fmt.Errorf("client report: %w; stderr:\n%s", err, c.stderr.String())
	}
	return rep, json.Unmarshal(line, &rep)
}

// timeline asks the client process for its agents' events per slot.
func (c *client) timeline() (map[int64]Offer, error) {
	if _, err := io.WriteString(c.stdin, "timeline\n"); err != nil {
		return nil, fmt.Errorf("client: %w; stderr:\n%s", err, c.stderr.String())
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("client timeline: %w; stderr:\n%s", err, c.stderr.String())
	}
	var slots map[int64]Offer
	return slots, json.Unmarshal(line, &slots)
}

// startClients starts cfg.Processes client processes over the lab; died
// receives a client process's exit, whatever the reason; only an
// early one is read.
func startClients(cfg Config, l *agentlab.Lab, died chan<- error) ([]*client, error) {
	keyPEM, err := l.CA.KeyPEM()
	if err != nil {
		return nil, err
	}
	var clients []*client
	per, rest := cfg.Agents/cfg.Processes, cfg.Agents%cfg.Processes
	first := 0
	every := time.Duration(float64(time.Second) * float64(cfg.Processes) / cfg.StartRate)
	for p := range cfg.Processes {
		count := per
		if p < rest {
			count++
		}
		spec := ClientSpec{CACertPEM: l.CA.CertPEM(), CAKeyPEM: keyPEM, RelayPort: l.RelayPort, DNSAddr: l.DNS.Addr,
			First: first, Count: count, StartEvery: every, KeepAlive: 60 * time.Second, ReconnectSpread: cfg.ReconnectSpread,
			SignalledAddr: net.JoinHostPort(agentlab.RelayIPs[0].String(), l.RelayPort)}
		first += count
		b, err := json.Marshal(spec)
		if err != nil {
			return clients, err
		}
		path := filepath.Join(cfg.Dir, fmt.Sprintf("storm-client-%d.json", p))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return clients, err
		}
		cmd := exec.Command(cfg.Executable)
		cmd.Env = append(os.Environ(), ClientEnv+"="+path)
		c := &client{cmd: cmd, stderr: new(syncbuf.Buffer), exited: make(chan error, 1), count: count}
		cmd.Stderr = c.stderr
		if c.stdin, err = cmd.StdinPipe(); err != nil {
			return clients, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return clients, err
		}
		c.out = bufio.NewReaderSize(stdout, 1<<20)
		if err := cmd.Start(); err != nil {
			return clients, err
		}
		clients = append(clients, c)
		go func() {
			err := fmt.Errorf("storm client %d exited: %v; stderr:\n%s", p, cmd.Wait(), c.stderr.String())
			c.exited <- err
			select {
			case died <- err:
			default:
			}
		}()
	}
	return clients, nil
}

// stopClients closes every client's stdin (the agents disconnect and the
// process exits) and kills what has not exited within a minute.
func stopClients(clients []*client) {
	for _, c := range clients {
		c.stdin.Close()
	}
	for _, c := range clients {
		select {
		case <-c.exited:
		case <-time.After(time.Minute):
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
}

// collect asks the clients for their deliveries until want distinct
// messages arrived or patience ran out; it returns the last count.
func collect(clients []*client, want int64, patience time.Duration) (int64, []ClientReport, error) {
	deadline := time.Now().Add(patience)
	for {
		var got int64
		var reps []ClientReport
		for _, c := range clients {
			rep, err := c.report()
			if err != nil {
				return got, reps, err
			}
			for _, d := range rep.Delivered {
				got += int64(d)
			}
			reps = append(reps, rep)
		}
		if got >= want {
			return got, reps, nil
		}
		if time.Now().After(deadline) {
			return got, reps, fmt.Errorf("storm: %d of %d messages delivered after %s", got, want, patience)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func awaitDelivered(clients []*client, want int64, patience time.Duration) error {
	_, _, err := collect(clients, want, patience)
	return err
}

// failures sums the clients' failed steps, with one error of each kind.
func failures(clients []*client) string {
	sum, last := map[string]int64{}, map[string]string{}
	for _, c := range clients {
		rep, err := c.report()
		if err != nil {
			return err.Error()
		}
		for k, v := range rep.Failures {
			sum[k] += v
			last[k] = rep.LastError[k]
		}
	}
	if len(sum) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(sum)) {
		fmt.Fprintf(&b, "%s %d (e.g. %.160s); ", k, sum[k], last[k])
	}
	return b.String()
}
