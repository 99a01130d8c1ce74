// Package relayproc runs the real relay binary (proxyimage/cmd/relay) as a
// child process, for the relay command's tests, the agent lab and the relay
// benchmark: one way to build it, start it, learn its addresses, read its
// log, stop it.
package relayproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartedLogMessage is the relay's log line, once it listens, that names
// its addresses in the keys "listen" and "admin".
const StartedLogMessage = "relay started"

// Package is the relay command's import path.
const Package = "github.com/agentgate/agentgate/proxyimage/cmd/relay"

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// Binary builds the relay once per process (-trimpath, as the image does)
// into a temporary directory and returns its path; Cleanup removes it.
func Binary() (string, error) {
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go toolchain not on PATH: %w", err)
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "relayproc-"); buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "relay")
		out, err := exec.Command(goBin, "build", "-trimpath", "-o", buildPath, Package).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building the relay: %v\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// Cleanup removes the binary Binary built; call it from TestMain (or at the
// end of main).
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Options say how to start a relay. The zero value starts the built binary
// on 127.0.0.1 ports the kernel picks, with an empty environment.
type Options struct {
	// Bin is the relay binary; empty means Binary().
	Bin string
	// Args are the flags after --listen and --admin.
	Args []string
	// Listen and Admin are the addresses to bind; empty means 127.0.0.1:0,
	// read back from the StartedLogMessage line. Set both to fixed
	// addresses to start a relay whose --log-level hides that line: Start
	// then also accepts a connection to Listen as proof it serves.
	Listen, Admin string
	// AddressesFromEnv passes no --listen and --admin: Env sets
	// RELAY_LISTEN and RELAY_ADMIN, as a deployment does (ports 0, read
	// back from the StartedLogMessage line).
	AddressesFromEnv bool
	// Env is the child's whole environment (nothing leaks in from the
	// caller's: a stray RELAY_* would change the relay's configuration).
	Env []string
	// Wrap is a command the relay runs under, such as
	// {"taskset", "-c", "0"}; it must exec the relay so the child's pid is
	// the relay's.
	Wrap []string
	// Stderr, if set, also receives every log line.
	Stderr io.Writer
	// StartTimeout bounds the wait for the relay to serve (default 30 s).
	StartTimeout time.Duration
}

// Process is one running relay.
type Process struct {
	// Listen is the agent-facing address, Admin the admin HTTP address.
	Listen, Admin string
	cmd           *exec.Cmd
	done          chan struct{}
	exitErr       error
	mu            sync.Mutex
	lines         []string
}

// Start runs the relay and returns once it serves.
func Start(ctx context.Context, o Options) (*Process, error) {
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	listen, admin := o.Listen, o.Admin
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if admin == "" {
		admin = "127.0.0.1:0"
	}
	argv := append(append([]string(nil), o.Wrap...), bin)
	if !o.AddressesFromEnv {
		argv = append(argv, "--listen", listen, "--admin", admin)
	}
	argv = append(argv, o.Args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append([]string{}, o.Env...)
	cmd.SysProcAttr = dieWithTheParent()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan map[string]any, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if o.Stderr != nil {
				fmt.Fprintln(o.Stderr, line)
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == StartedLogMessage {
				select {
				case started <- m:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	// Wait closes the pipe: only once every line is read (EOF at exit), or
	// the last lines, such as why it would not start, are lost.
	go func() { <-readDone; p.exitErr = cmd.Wait(); close(p.done) }()
	fixed := !o.AddressesFromEnv && o.Listen != "" && o.Admin != "" && !strings.HasSuffix(o.Listen, ":0")
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case m := <-started:
			p.Listen, _ = m["listen"].(string)
			p.Admin, _ = m["admin"].(string)
			return p, nil
		case <-poll.C:
			if fixed && dials(listen) {
				p.Listen, p.Admin = listen, admin
				return p, nil
			}
		case <-p.done:
			return nil, fmt.Errorf("relay exited at start (%v):\n%s", p.exitErr, p.Logs())
		case <-deadline.C:
			p.Kill()
			return nil, fmt.Errorf("relay did not start in %v:\n%s", timeout, p.Logs())
		}
	}
}

func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Pid is the relay's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the relay.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed when the relay has exited; ExitErr then says how.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is the relay's exit (nil for status 0); call it after Done.
func (p *Process) ExitErr() error {
	<-p.done
	return p.exitErr
}

// Kill ends the relay with SIGKILL and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM (the relay drains) and waits up to grace for it to
// exit, then kills it.
func (p *Process) Stop(grace time.Duration) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Logs returns what the relay logged so far, one line per log record.
func (p *Process) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return strings.Join(p.lines, "\n") + "\n"
}

// WaitLog waits up to timeout for a log line whose msg is msg.
func (p *Process) WaitLog(msg string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.hasLog(msg) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q log line", msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *Process) hasLog(msg string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, line := range p.lines {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			return true
		}
	}
	return false
}
