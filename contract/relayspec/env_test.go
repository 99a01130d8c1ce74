package relayspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/proxyimage/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// TestEnvIsWhatTheRelayParses: every variable Env renders is one the
// relay's own parser reads (the same name for the same flag), and the relay
// reads back the values that were rendered, in whole seconds and below.
func TestEnvIsWhatTheRelayParses(t *testing.T) {
	s := relayspec.DefaultSettings()
	s.Routes = []relayspec.Route{
		{SNI: "abc-ats.iot.eu-west-1.amazonaws.com", Upstream: "vpce-1.example.com:443"},
		{SNI: "abc.credentials.iot.eu-west-1.amazonaws.com", Upstream: "vpce-2.example.com:443"},
	}
	s.TrustedCIDRs = []string{"10.40.0.0/16", "10.41.0.0/16"}
	s.UnreadyDelay, s.DrainTimeout = 350*time.Millisecond, 1100*time.Millisecond
	s.MaxConnsPerSource = 77
	env := relayspec.Env(s)
	for name := range env {
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, relayspec.EnvPrefix), "_", "-"))
		if config.EnvName(flag) != name || relayspec.EnvName(flag) != name {
			t.Errorf("%s: the relay reads --%s from %s", name, flag, config.EnvName(flag))
		}
	}
	cfg, err := config.Parse(nil, lookup(env))
	if err != nil {
		t.Fatalf("the relay refuses %v: %v", env, err)
	}
	if cfg.Listen != ":8443" || cfg.Admin != ":9901" || cfg.HealthSNI != relayspec.DefaultHealthSNI || cfg.ProxyProtocol != config.ProxyRequired {
		t.Errorf("listen %q admin %q health %q proxy %q", cfg.Listen, cfg.Admin, cfg.HealthSNI, cfg.ProxyProtocol)
	}
	if len(cfg.Routes) != 2 || cfg.Routes[1].Upstream != "vpce-2.example.com:443" || len(cfg.TrustedCIDRs) != 2 {
		t.Errorf("routes %v trusted %v", cfg.Routes, cfg.TrustedCIDRs)
	}
	if cfg.IdleTimeout != 360*time.Second || cfg.UnreadyDelay != 350*time.Millisecond || cfg.DrainTimeout != 1100*time.Millisecond || cfg.MaxConns != relayspec.DefaultMaxConnsPerTask || cfg.MaxConnsPerSource != 77 {
		t.Errorf("idle %s unready %s drain %s max-conns %d per source %d", cfg.IdleTimeout, cfg.UnreadyDelay, cfg.DrainTimeout, cfg.MaxConns, cfg.MaxConnsPerSource)
	}
}

// TestDefaultSettingsCapEachSource: a deployed relay's settings carry the
// per-source cap the relay would pick for itself for the same --max-conns,
// and a valid one.
func TestDefaultSettingsCapEachSource(t *testing.T) {
	s := relayspec.DefaultSettings()
	if s.MaxConnsPerSource != relayspec.DefaultMaxConnsPerSource(s.MaxConns) || !relayspec.ValidMaxConnsPerSource(s.MaxConnsPerSource, s.MaxConns) {
		t.Errorf("default per-source cap %d for max-conns %d", s.MaxConnsPerSource, s.MaxConns)
	}
	for _, tc := range []struct{ perSource, maxConns int }{{0, 10}, {11, 10}, {-1, 10}} {
		if relayspec.ValidMaxConnsPerSource(tc.perSource, tc.maxConns) {
			t.Errorf("ValidMaxConnsPerSource(%d, %d) = true", tc.perSource, tc.maxConns)
		}
	}
	for maxConns, want := range map[int]int{1: 1, 2: 1, 3: 1, 3000: 1000, 9000: 3000, 200000: 66666} {
		if got := relayspec.DefaultMaxConnsPerSource(maxConns); got != want || !relayspec.ValidMaxConnsPerSource(got, maxConns) {
			t.Errorf("DefaultMaxConnsPerSource(%d) = %d, want %d", maxConns, got, want)
		}
	}
}

func TestDurationFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{
		110 * time.Second: "110s", 0: "0s", 350 * time.Millisecond: "350ms", 1100 * time.Millisecond: "1.1s", 90 * time.Minute: "5400s",
	} {
		if got := relayspec.Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// The relay keeps accepting while it reports unready for long enough that
// both checkers in front of it have taken it out: Route 53 after its
// failure threshold, the load balancer after its unhealthy threshold.
func TestUnreadyDelayCoversBothHealthCheckers(t *testing.T) {
	dns := relayspec.DNSHealthCheckIntervalSeconds * relayspec.DNSHealthCheckFailureThreshold
	nlb := relayspec.TargetHealthCheckIntervalSeconds * relayspec.TargetUnhealthyThresholdCount
	if relayspec.DefaultUnreadyDelaySeconds <= dns || relayspec.DefaultUnreadyDelaySeconds <= nlb {
		t.Errorf("unready delay %d s does not cover Route 53 (%d s) and the NLB (%d s)", relayspec.DefaultUnreadyDelaySeconds, dns, nlb)
	}
}
