package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

// events collects an agent's reports and wakes a waiter on each.
type events struct {
	mu      sync.Mutex
	list    []agent.Event
	changed chan struct{}
}

func (e *events) add(ev agent.Event) {
	e.mu.Lock()
	e.list = append(e.list, ev)
	e.mu.Unlock()
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// wait blocks until cond holds over the events so far (60 s: a deadlock
// guard, not a performance threshold).
func (e *events) wait(t *testing.T, what string, cond func([]agent.Event) bool) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		e.mu.Lock()
		ok := cond(e.list)
		e.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-e.changed:
		case <-deadline:
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func count(evs []agent.Event, step string, failed bool) int {
	n := 0
	for _, ev := range evs {
		if ev.Step == step && (ev.Err != nil) == failed {
			n++
		}
	}
	return n
}

// credentialsStatus asks the lab's credentials provider for the agent's
// role credentials with its certificate, as the agent's SigV4 path does.
func credentialsStatus(t *testing.T, l *agentlab.Lab) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{l.AgentCert}, RootCAs: l.CA.Pool, ServerName: agentlab.CredsHost}}}
	req, _ := http.NewRequest(http.MethodGet, "https://"+l.Creds.Addr+"/role-aliases/"+agentlab.RoleAlias+"/credentials", nil)
	req.Header.Set("x-amzn-iot-thingname", agentlab.ThingName)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode
}

// Revoking a connected agent through the real relay: agentgate-admin agent
// revoke sets its certificate REVOKED and cuts its connection
// (DeleteConnection, here wired to the lab's broker); the agent's
// reconnects with the certificate are refused at the IoT gateway and its
// credentials request at the credentials provider, both of which learn the
// certificate's status from the IoT registry stand-in.
func TestRevokedAgentIsCutOffEndToEnd(t *testing.T) {
	s := startIoT(t)
	l, err := agentlab.Start(t.TempDir(), agentlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	leaf, err := x509.ParseCertificate(l.AgentCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	id := awsstandin.CertificateID(leaf)
	s.aws.Enrol(agentlab.ThingName, agentlab.CustomerID, id, agentlab.RoleAlias)
	l.Creds.SetCertificateCheck(s.aws.RegistryCheck())
	l.Gateway.SetCertificateCheck(s.aws.RegistryCheck())
	s.aws.OnDeleteConnection(func(clientID string) bool {
		cl, ok := l.Broker.Clients.Get(clientID)
		if !ok || cl.Closed() {
			return false
		}
		_ = l.Broker.DisconnectClient(cl, packets.ErrAdministrativeAction)
		return true
	})
	if code := credentialsStatus(t, l); code != http.StatusOK {
		t.Fatalf("credentials before revoke: %d", code)
	}

	ev := &events{changed: make(chan struct{}, 1)}
	a, err := agent.New(agent.Config{
		CustomerID: agentlab.CustomerID, ThingName: agentlab.ThingName,
		IoTEndpoint: agentlab.IoTHost, Transport: agent.TransportCertificate,
		Certificate: l.AgentCert, RootCAs: l.CA.Pool,
		Dialer:    &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: l.RelayPort, Resolver: l.DNS.Resolver(), Timeout: 2 * time.Second},
		KeepAlive: 30 * time.Second, BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		ConnectTimeout: 10 * time.Second,
		OnEvent:        ev.add,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	ev.wait(t, "the agent's subscription", func(evs []agent.Event) bool { return count(evs, agent.StepSubscribe, false) > 0 })
	if l.Gateway.CertificateConnections() != 1 {
		t.Fatalf("certificate connections %d", l.Gateway.CertificateConnections())
	}

	code, out, errOut := s.run(t, nil, "agent", "revoke", agentlab.CustomerID, agentlab.ThingName)
	if code != 0 || !strings.Contains(out, "cut") {
		t.Fatalf("revoke: %d %s%s", code, out, errOut)
	}
	ev.wait(t, "the cut connection", func(evs []agent.Event) bool {
		return count(evs, agent.StepDisconnect, false)+count(evs, agent.StepDisconnect, true) > 0
	})
	refused := l.Gateway.Refused()
	ev.wait(t, "two refused reconnects", func(evs []agent.Event) bool { return l.Gateway.Refused() >= refused+2 })
	if n := l.Gateway.CertificateConnections(); n != 1 {
		t.Errorf("the revoked certificate connected %d times, want only the first", n)
	}
	if cl, ok := l.Broker.Clients.Get(agentlab.ThingName); ok && !cl.Closed() {
		t.Error("the revoked agent is still connected to the broker")
	}
	if code := credentialsStatus(t, l); code != http.StatusForbidden {
		t.Errorf("credentials after revoke: %d, want 403", code)
	}
}
