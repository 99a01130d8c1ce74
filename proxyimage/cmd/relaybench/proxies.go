//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/relayproc"
)

// idleTimeout is the same in all three proxies.
const idleTimeout = 360 * time.Second

// nginxStreamModule is Debian's libnginx-mod-stream module.
const nginxStreamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"

// proxy is a running proxy under test (or the direct path, which has none).
type proxy struct {
	name  string
	addr  string
	admin string // the relay's admin address: Go memory metrics, pprof
	pid   int    // 0 for direct
	stop  func()
}

// pids returns the proxy's processes (nginx: master and worker).
func (p *proxy) pids() []int {
	if p.pid == 0 {
		return nil
	}
	return procTree(p.pid)
}

// startProxy starts kind in front of upstream up, pinned to the proxy core,
// configured for SNI passthrough of benchName only (every other name is
// refused) with the same idle timeout, holding up to maxConn connections.
func startProxy(ctx context.Context, kind, up, tmp string, maxConn int) (*proxy, error) {
	switch kind {
	case "direct":
		return &proxy{name: kind, addr: up, stop: func() {}}, nil
	case "plain":
		c, err := spawnSelfOn(ctx, proxyCPU, "-role", "plain", "-upstream", up)
		if err != nil {
			return nil, err
		}
		f, err := c.readyLine(30 * time.Second)
		if err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: f[1], pid: c.cmd.Process.Pid, stop: c.stop}, nil
	case "relay", "relay-base", "relay-buffered", "relay-splice":
		bin, err := relayproc.Binary()
		if kind == "relay-base" {
			bin, err = *baseRelay, nil
			if bin == "" {
				err = fmt.Errorf("relay-base needs -base-relay")
			}
		}
		if err != nil {
			return nil, err
		}
		env := append(os.Environ(), "GOMAXPROCS=1")
		copyMode := "auto"
		switch kind {
		case "relay-buffered":
			copyMode = "buffered"
		case "relay-splice":
			copyMode = "splice"
		}
		if *pprofOn {
			env = append(env, "RELAY_DEBUG_PPROF=1", "GODEBUG=memprofilerate=512")
		}
		var wrap []string
		if haveTaskset {
			wrap = []string{"taskset", "-c", proxyCPU} // taskset execs the relay: the pid is the relay's
		}
		// Fixed ports: --log-level warn hides the start line, so the
		// harness waits until the listener accepts.
		r, err := relayproc.Start(ctx, relayproc.Options{Bin: bin, Listen: freePort(), Admin: freePort(), Env: env, Wrap: wrap, Stderr: os.Stderr,
			Args: []string{"--route", benchName + "=" + up, "--max-conns", strconv.Itoa(maxConn),
				// Every benchmark connection comes from 127.0.0.1: no per-source limits.
				"--idle-timeout", idleTimeout.String(), "--source-rate", "0", "--max-conns-per-source", "0", "--log-level", "warn",
				"--unready-delay", "0s", "--drain-timeout", "5s", "--copy-mode", copyMode}})
		if err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: r.Listen, admin: r.Admin, pid: r.Pid(), stop: func() { r.Stop(10 * time.Second) }}, nil
	case "haproxy":
		path, err := exec.LookPath("haproxy")
		if err != nil {
			return nil, fmt.Errorf("haproxy not installed (scripts/bench.sh installs it)")
		}
		addr := freePort()
		cf := filepath.Join(tmp, "haproxy-"+strconv.Itoa(os.Getpid())+"-"+addrPortOnly(addr)+".cfg")
		if err := os.WriteFile(cf, []byte(haproxyConfig(addr, up, maxConn)), 0o600); err != nil {
			return nil, err
		}
		c, err := spawnListening(ctx, addr, path, []string{"-db", "-f", cf})
		if err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: addr, pid: c.cmd.Process.Pid, stop: c.kill}, nil
	case "nginx":
		path, err := exec.LookPath("nginx")
		if err != nil {
			return nil, fmt.Errorf("nginx not installed (scripts/bench.sh installs it)")
		}
		if _, err := os.Stat(nginxStreamModule); err != nil {
			return nil, fmt.Errorf("nginx stream module missing (apt-get install libnginx-mod-stream): %w", err)
		}
		addr := freePort()
		dir := filepath.Join(tmp, "nginx-"+addrPortOnly(addr))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		cf := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(cf, []byte(nginxConfig(addr, up, dir, maxConn)), 0o600); err != nil {
			return nil, err
		}
		c, err := spawnListening(ctx, addr, path, []string{"-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", cf})
		if err != nil {
			return nil, err
		}
		return &proxy{name: kind, addr: addr, pid: c.cmd.Process.Pid, stop: c.kill}, nil
	}
	return nil, fmt.Errorf("unknown proxy %q", kind)
}

func addrPortOnly(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[i+1:]
		}
	}
	return addr
}

// haproxyConfig: one thread, SNI passthrough of benchName only; any other
// name has no backend and is closed. Timeouts match the relay's.
func haproxyConfig(addr, up string, maxConn int) string {
	splice := ""
	if *haproxySplice {
		splice = "  option splice-auto\n"
	}
	return fmt.Sprintf(`global
  maxconn %[1]d
  nbthread 1
defaults
  mode tcp
  timeout connect 5s
  timeout client %[2]ds
  timeout server %[2]ds
  timeout client-fin %[2]ds
  timeout server-fin %[2]ds
%[6]sfrontend fe
  bind %[3]s
  tcp-request inspect-delay 5s
  tcp-request content reject unless { req_ssl_hello_type 1 }
  use_backend be if { req_ssl_sni -i %[4]s }
backend be
  server up %[5]s maxconn %[1]d
`, maxConn, int(idleTimeout.Seconds()), addr, benchName, up, splice)
}

// nginxConfig: one worker, ssl_preread SNI passthrough of benchName only;
// any other name maps to an address nothing listens on, so the connection
// is refused. Half-close is forwarded as the relay and HAProxy do.
func nginxConfig(addr, up, dir string, maxConn int) string {
	return fmt.Sprintf(`load_module %[1]s;
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections %[3]d; }
stream {
  map $ssl_preread_server_name $agentgate_upstream {
    %[4]s %[5]s;
    default 127.0.0.1:1;
  }
  server {
    listen %[6]s;
    ssl_preread on;
    preread_timeout 5s;
    proxy_connect_timeout 5s;
    proxy_timeout %[7]ds;
    proxy_half_close on;
    proxy_pass $agentgate_upstream;
  }
}
`, nginxStreamModule, dir, 2*maxConn+16, benchName, up, addr, int(idleTimeout.Seconds()))
}

// spawnListening starts a proxy process on the proxy's core and waits until
// it accepts connections on addr; a proxy that never listens is killed.
func spawnListening(ctx context.Context, addr, bin string, args []string, env ...string) (*child, error) {
	c, err := spawn(ctx, proxyCPU, bin, args, env...)
	if err != nil {
		return nil, err
	}
	if err := waitDial(addr); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// behindProxies starts role, an upstream every path forwards to, waits for
// its address and starts each path of pl in front of it with at most
// maxConn connections (a path that does not start is reported on stderr
// under phase and left out). stop ends the proxies and the upstream.
func behindProxies(ctx context.Context, role, phase string, pl []string, tmp string, maxConn int) (up *child, ps []*proxy, stop func(), err error) {
	up, err = self(ctx, "-role", role)
	if err != nil {
		return nil, nil, nil, err
	}
	stop = func() {
		for _, p := range ps {
			p.stop()
		}
		up.stop()
	}
	f, err := up.readyLine(30 * time.Second)
	if err != nil {
		up.stop()
		return nil, nil, nil, err
	}
	for _, kind := range pl {
		p, err := startProxy(ctx, kind, f[1], tmp, maxConn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s %s: %v\n", phase, kind, err)
			continue
		}
		ps = append(ps, p)
	}
	return up, ps, stop, nil
}
