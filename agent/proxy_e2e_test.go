//go:build linux

package agent_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/connectproxy"
)

func labProxy(t *testing.T, l *agentlab.Lab, opts connectproxy.Options) *connectproxy.Proxy {
	t.Helper()
	opts.Resolver = l.DNS.Resolver()
	p, err := connectproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func withProxy(t *testing.T, cfg agent.Config, url string) agent.Config {
	t.Helper()
	p, err := netpath.NewProxy(url, "")
	if err != nil {
		t.Fatal(err)
	}
	d := *cfg.Dialer
	d.Proxy = p
	cfg.Dialer = &d
	return cfg
}

// TestAgentThroughTheProxy: on both transports the agent reaches IoT
// through a proxy with Basic authentication (credentials provider and MQTT
// alike, each a CONNECT to the relay's name) and applies the retained
// configuration; the release download client takes the same way.
func TestAgentThroughTheProxy(t *testing.T) {
	l := startLab(t, agentlab.Options{ArtifactsBucket: "agentgate-artifacts-test"})
	px := labProxy(t, l, connectproxy.Options{User: "agent", Password: "pw"})
	target := agentlab.RelayName + ":" + l.RelayPort
	for i, transport := range []agent.Transport{agent.TransportWebSocket, agent.TransportCertificate} {
		t.Run(string(transport), func(t *testing.T) {
			env := publishConfig(t, l, 1764406800000+int64(i), `{"via":"proxy"}`)
			rec := newRecorder()
			cfg := withProxy(t, labConfig(l, rec, ""), px.URL("agent:pw"))
			cfg.Transport = transport
			a, stop := runAgent(t, cfg)
			rec.wait(t, "the configuration", func() bool { return len(rec.applied) > 0 })
			evs, applied, _ := rec.snapshot()
			if applied[0].SHA256 != env.SHA256 {
				t.Fatalf("applied %+v, want %+v", applied[0], env)
			}
			if !hasEvent(evs, agent.StepTCP, target+" via proxy "+px.Addr) {
				t.Fatalf("no tcp event through the proxy:\n%s", formatEvents(evs))
			}
			if i == 0 {
				// S3 downloads of releases: the artifacts front refuses an
				// unsigned GET, which proves the request went through the
				// proxy and the relay with TLS verified.
				before := len(px.Requests())
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+l.ArtifactsHost+"/releases/none", nil)
				resp, err := a.HTTPClient().Do(req)
				if err != nil {
					t.Fatalf("release client: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || len(px.Requests()) != before+1 {
					t.Fatalf("release client: HTTP %d, proxy requests %d → %d", resp.StatusCode, before, len(px.Requests()))
				}
			}
			stop()
			for _, r := range px.Requests() {
				if r.Target != target || r.Status != 200 {
					t.Fatalf("proxy saw %+v", r)
				}
			}
		})
	}
}

// TestAgentReportsProxyFailures: an agent behind a proxy that wants other
// credentials, denies the tunnel or intercepts TLS reports that, with the
// matching sentinel, in its connection events.
func TestAgentReportsProxyFailures(t *testing.T) {
	l := startLab(t, agentlab.Options{ArtifactsBucket: "agentgate-artifacts-test"})
	for _, tc := range []struct {
		name     string
		opts     connectproxy.Options
		userinfo string
		want     error
		text     string
	}{
		{"wrong credentials", connectproxy.Options{User: "agent", Password: "pw"}, "agent:nope", agenterr.ErrProxyAuth, "refused the credentials"},
		{"denied", connectproxy.Options{Mode: connectproxy.Deny}, "", agenterr.ErrProxyDenied, "403 Forbidden"},
		{"intercepting", connectproxy.Options{Mode: connectproxy.Intercept}, "", agenterr.ErrProxyIntercepts, "intercepts TLS"},
	} {
		for _, transport := range []agent.Transport{agent.TransportWebSocket, agent.TransportCertificate} {
			t.Run(tc.name+"/"+string(transport), func(t *testing.T) {
				px := labProxy(t, l, tc.opts)
				rec := newRecorder()
				cfg := withProxy(t, labConfig(l, rec, ""), px.URL(tc.userinfo))
				cfg.Transport = transport
				a, stop := runAgent(t, cfg)
				var got error
				rec.wait(t, "a "+tc.want.Error()+" event", func() bool {
					for _, e := range rec.events {
						if errors.Is(e.Err, tc.want) {
							got = e.Err
							return true
						}
					}
					return false
				})
				if !strings.Contains(got.Error(), tc.text) || !strings.Contains(got.Error(), px.Addr) {
					t.Fatalf("%v", got)
				}
				// The release download client reports the same.
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+l.ArtifactsHost+"/releases/none", nil)
				resp, err := a.HTTPClient().Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
					t.Fatalf("release client: %v", err)
				}
				stop()
			})
		}
	}
}
