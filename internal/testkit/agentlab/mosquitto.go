package agentlab

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// RequireMosquittoEnv, set to 1, turns a missing mosquitto from a skip into
// a failure (CI installs it and sets this so it cannot skip silently).
const RequireMosquittoEnv = "AGENTGATE_REQUIRE_MOSQUITTO"

// MosquittoPath finds Debian's mosquitto binary ("" if absent).
func MosquittoPath() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Mosquitto is a running mosquitto with one TLS listener that requires a
// client certificate from the lab CA: IoT Core's certificate path.
type Mosquitto struct {
	// Addr is the TLS listener.
	Addr string
	cmd  *exec.Cmd
	logs *syncbuf.Buffer
	done chan struct{}
}

// StartMosquitto writes a config, certificate and key for IoTHost into a
// new temporary directory (readable by the mosquitto user it drops to when
// run as root; a test's TempDir sits below a 0700 directory) and starts
// the broker. Debian's mosquitto 2.0.11 is used for TLS only: its WebSocket
// listener binds and then exits ("Unable to start any listening sockets"),
// so the WebSocket path runs on mochi-mqtt.
func (l *Lab) StartMosquitto(bin string) (*Mosquitto, error) {
	dir, err := os.MkdirTemp("", "agentlab-mosquitto-")
	if err != nil {
		return nil, err
	}
	l.closers = append(l.closers, func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	cert, err := l.CA.Leaf(IoTHost)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := testpki.PEM(cert)
	if err != nil {
		return nil, err
	}
	// Test keys only: world-readable so the dropped-privilege broker can read them.
	files := map[string][]byte{"ca.pem": l.CA.CertPEM(), "server.crt": certPEM, "server.key": keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	// The port is picked by binding and closing; another process can take
	// it in between, so a start that fails to bind is retried on a new one.
	var lastErr error
	for try := 0; try < 5; try++ {
		m, retry, err := l.startMosquittoOnce(bin, dir)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if !retry {
			break
		}
	}
	return nil, lastErr
}

func (l *Lab) startMosquittoOnce(bin, dir string) (_ *Mosquitto, retry bool, _ error) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, false, err
	}
	addr := free.Addr().String()
	free.Close()
	_, port, _ := net.SplitHostPort(addr)
	// max_queued_messages 0: no limit on the QoS 1 messages queued for a
	// client (mosquitto.conf(5); the default, 1000, drops the rest without
	// telling the publisher), so a test publishing through a switch of
	// relays cannot outrun the broker (compare SessionStore for mochi).
	conf := fmt.Sprintf(`per_listener_settings false
allow_anonymous true
persistence false
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
log_type notice
listener %s 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
`, port, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, false, err
	}
	m := &Mosquitto{Addr: addr, cmd: exec.Command(bin, "-c", confPath), logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	m.cmd.SysProcAttr = dieWithTheTest()
	if err := m.cmd.Start(); err != nil {
		return nil, false, err
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	// Ready means a full TLS handshake with a client certificate: it
	// binds its port before it loads the certificates.
	probe, err := l.CA.ClientLeaf("readiness-probe")
	if err != nil {
		m.Stop()
		return nil, false, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr,
			&tls.Config{Certificates: []tls.Certificate{probe}, RootCAs: l.CA.Pool, ServerName: IoTHost})
		if err == nil {
			c.Close()
			l.closers = append(l.closers, m.Stop)
			return m, false, nil
		}
		select {
		case <-m.done:
			logs := m.logs.String()
			return nil, strings.Contains(logs, "Address already in use"), fmt.Errorf("mosquitto exited: %s", logs)
		default:
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, false, fmt.Errorf("mosquitto not listening on %s: %s", addr, m.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the broker.
func (m *Mosquitto) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// Logs returns what mosquitto logged.
func (m *Mosquitto) Logs() string { return m.logs.String() }
