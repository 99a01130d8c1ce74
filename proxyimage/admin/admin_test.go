//go:build linux

package admin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentgate/agentgate/proxyimage/admin"
	"github.com/agentgate/agentgate/proxyimage/relay"
)

func TestAdminEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	relay.RegisterBuildInfo(reg, "1.2.3", "abc", "go1.26")
	var ready atomic.Bool
	srv := httptest.NewServer(admin.Handler(reg, ready.Load))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz while unready: %d", code)
	}
	ready.Store(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz while ready: %d", code)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `agentgate_relay_build_info{goversion="go1.26",revision="abc",version="1.2.3"} 1`) {
		t.Errorf("/metrics %d:\n%s", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("unexpected endpoint answered %d", code)
	}
	resp, err := http.Post(srv.URL+"/readyz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz: %d", resp.StatusCode)
	}
}
