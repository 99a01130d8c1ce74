package config_test

import (
	"errors"
	"flag"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/relayspec"
	"github.com/agentgate/agentgate/contract/timing"
	"github.com/agentgate/agentgate/proxyimage/config"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const route = "abc-ats.iot.eu-west-1.amazonaws.com=10.0.0.1:443"

func TestDefaults(t *testing.T) {
	c, err := config.Parse([]string{"--route", route}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8443" || c.Admin != ":9901" || c.IdleTimeout != timing.DefaultRelayIdleTimeout ||
		c.ProxyProtocol != config.ProxyOff || c.HTTPConnect || c.CopyMode != config.CopyAuto ||
		c.LogLevel != slog.LevelInfo || c.HealthSNI != "healthcheck.agentgate.invalid" ||
		c.MaxConns != config.DefaultMaxConns || c.MaxConnsPerSource != config.DefaultMaxConns/relayspec.MaxConnsPerSourceShare {
		t.Errorf("defaults: %+v", c)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("default idle timeout should satisfy the timing rule: %v", c.Warnings)
	}
}

// TestMaxConnsPerSourceFollowsMaxConns: unset, the per-source cap is the
// same share of --max-conns a deployment's default is; set, it is taken
// as given from 0 (off) to --max-conns.
func TestMaxConnsPerSourceFollowsMaxConns(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{[]string{"--max-conns", "3000"}, nil, relayspec.DefaultMaxConnsPerSource(3000)},
		{nil, map[string]string{"RELAY_MAX_CONNS": "2"}, 1},
		{[]string{"--max-conns", "3000", "--max-conns-per-source", "3000"}, nil, 3000},
		{[]string{"--max-conns-per-source", "1"}, nil, 1},
		{nil, map[string]string{relayspec.EnvName(relayspec.FlagMaxConnsPerSource): "0"}, 0},
	} {
		c, err := config.Parse(append([]string{"--route", route}, tc.args...), env(tc.env))
		if err != nil {
			t.Errorf("%v %v: %v", tc.args, tc.env, err)
			continue
		}
		if c.MaxConnsPerSource != tc.want {
			t.Errorf("%v %v: per-source cap %d, want %d", tc.args, tc.env, c.MaxConnsPerSource, tc.want)
		}
	}
	if relayspec.DefaultMaxConnsPerSource(3000) != 1000 {
		t.Errorf("the fleet's default per-source cap is %d, want 1000 (a third of 3000)", relayspec.DefaultMaxConnsPerSource(3000))
	}
}

func TestCopyModes(t *testing.T) {
	for _, m := range []config.CopyMode{config.CopyAuto, config.CopyBuffered, config.CopySplice} {
		c, err := config.Parse([]string{"--route", route, "--copy-mode", string(m)}, env(nil))
		if err != nil || c.CopyMode != m {
			t.Errorf("--copy-mode %s: %v %+v", m, err, c)
		}
	}
}

func TestFlagsAndEnv(t *testing.T) {
	c, err := config.Parse([]string{
		"--route", "A.Example.COM.=a.internal:443", "--route=b.example.com=[::1]:8443",
		"--proxy-protocol", "required", "--trusted-cidr", "10.0.0.0/8",
		"--idle-timeout", "400s", "--http-connect",
	}, env(map[string]string{
		"RELAY_TRUSTED_CIDR":  "192.168.0.0/16", // command line wins
		"RELAY_MAX_CONNS":     "123",
		"RELAY_DRAIN_TIMEOUT": "90s",
		"RELAY_LOG_LEVEL":     "debug",
		"RELAY_SOURCE_RATE":   "0",
		relayspec.EnvName(relayspec.FlagMaxConnsPerSource): "0",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Routes[0] != (config.Route{SNI: "a.example.com", Upstream: "a.internal:443"}) || c.Routes[1].Upstream != "[::1]:8443" {
		t.Errorf("routes %+v", c.Routes)
	}
	if len(c.TrustedCIDRs) != 1 || c.TrustedCIDRs[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("cidrs %v", c.TrustedCIDRs)
	}
	if c.MaxConns != 123 || c.DrainTimeout != 90*time.Second || c.LogLevel != slog.LevelDebug || c.SourceRate != 0 || !c.HTTPConnect || c.MaxConnsPerSource != 0 {
		t.Errorf("env not applied: %+v", c)
	}
	if len(c.Warnings) == 0 {
		t.Error("400s idle timeout is not below the NLB's 400s: want a warning")
	}
	// Repeatables from the environment are comma-separated.
	c, err = config.Parse(nil, env(map[string]string{"RELAY_ROUTE": "a.example.com=h:1, b.example.com=h:2 ,"}))
	if err != nil || len(c.Routes) != 2 {
		t.Fatalf("env routes: %v %v", c, err)
	}
}

func TestHelp(t *testing.T) {
	if _, err := config.Parse([]string{"-h"}, env(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
}

func TestRejects(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string // substring of the error, naming the flag and value
	}{
		{[]string{"--route", "foo"}, nil, `--route "foo": want SNI=HOST:PORT`},
		{nil, nil, "--route: at least one"},
		{[]string{"--route", "=h:1"}, nil, `--route "=h:1"`},
		{[]string{"--route", "a.com=h"}, nil, `--route "a.com=h": want SNI=HOST:PORT: upstream "h" is not HOST:PORT`},
		{[]string{"--route", "a.com=h:0"}, nil, `port "0"`},
		{[]string{"--route", "a.com=h:65536"}, nil, `port "65536"`},
		{[]string{"--route", "a.com=h:+443"}, nil, `port "+443"`},
		{[]string{"--route", "*.a.com=h:1"}, nil, "no wildcards"},
		{[]string{"--route", "10.0.0.1=h:1"}, nil, "IP literal"},
		{[]string{"--route", "a..com=h:1"}, nil, "bad DNS label"},
		{[]string{"--route", "a.com=h:1", "--route", "A.COM.=h:2"}, nil, "duplicate server name a.com"},
		{[]string{"--route", "a.com=ht tp://x:1"}, nil, "is not HOST:PORT"},
		{[]string{"--route", "a.com=h_x:1"}, nil, "upstream host"},
		{[]string{"--route", "a.com=h:1\nb.com=h:2"}, nil, `--route`},
		// Unicode case folding would make these k.example.com and i.example.com.
		{[]string{"--route", "\u212a.example.com=h:1"}, nil, `"\u212a.example.com": byte 0xe2 not allowed`},
		{[]string{"--route", "\u0130.example.com=h:1"}, nil, `byte 0xc4 not allowed`},
		{[]string{"--route", "a.com=\u212a.example.com:443"}, nil, "upstream host"},
		{[]string{"--route", route, "--health-sni", "health.\u212a.invalid"}, nil, "--health-sni"},
		{[]string{"--route", "a.com=h:1", "--route", strings.Repeat("a", 300) + "=h:1"}, nil, "1..253"},
		{[]string{"--route", route, "--health-sni", "abc-ats.iot.eu-west-1.amazonaws.com"}, nil, "is also a --route name"},
		{[]string{"--route", route, "--proxy-protocol", "maybe"}, nil, `--proxy-protocol "maybe": want off, optional or required`},
		{[]string{"--route", route, "--proxy-protocol", "required"}, nil, "needs at least one --trusted-cidr"},
		{[]string{"--route", route, "--trusted-cidr", "10.0.0.0/33"}, nil, `--trusted-cidr "10.0.0.0/33"`},
		{[]string{"--route", route, "--idle-timeout", "90"}, nil, `--idle-timeout "90": want a Go duration`},
		{[]string{"--route", route, "--idle-timeout", "-5s"}, nil, "out of range"},
		{[]string{"--route", route, "--idle-timeout", "999999h"}, nil, "out of range"},
		{[]string{"--route", route, "--peek-timeout", "0s"}, nil, "out of range"},
		{[]string{"--route", route, "--unready-delay", "200s"}, nil, "must be shorter than --drain-timeout"},
		{[]string{"--route", route, "--max-conns", "-1"}, nil, `--max-conns "-1"`},
		{[]string{"--route", route, "--max-conns", "1e3"}, nil, `--max-conns "1e3"`},
		{[]string{"--route", route, "--max-conns", "99999999999999999999"}, nil, "--max-conns"},
		{[]string{"--route", route, "--source-rate", "NaN"}, nil, "--source-rate"},
		{[]string{"--route", route, "--source-rate", "-1"}, nil, "--source-rate"},
		{[]string{"--route", route, "--source-burst", "0"}, nil, "--source-burst"},
		{[]string{"--route", route, "--max-conns-per-source", "-1"}, nil, `--max-conns-per-source "-1": want an integer in [1, --max-conns 9000], or 0 for no limit`},
		{[]string{"--route", route, "--max-conns", "100", "--max-conns-per-source", "101"}, nil, `--max-conns-per-source "101": want an integer in [1, --max-conns 100]`},
		{[]string{"--route", route, "--max-conns-per-source", ""}, nil, `--max-conns-per-source ""`},
		{[]string{"--route", route}, map[string]string{relayspec.EnvName(relayspec.FlagMaxConnsPerSource): "many"}, `RELAY_MAX_CONNS_PER_SOURCE "many"`},
		{[]string{"--route", route, "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--route", route, "--copy-mode", "zero"}, nil, `--copy-mode "zero": want auto, buffered or splice`},
		{[]string{"--route", route, "--listen", "8443"}, nil, `--listen "8443": want [HOST]:PORT`},
		{[]string{"--route", route, "--admin", ":99999"}, nil, "--admin"},
		{[]string{"--route", route, "--nope"}, nil, "flag provided but not defined"},
		{[]string{"--route", route, "stray"}, nil, `unexpected argument "stray"`},
		{[]string{"--route", route}, map[string]string{"RELAY_IDLE_TIMEOUT": "soon"}, `RELAY_IDLE_TIMEOUT "soon"`},
		{[]string{"--route", route}, map[string]string{"RELAY_HTTP_CONNECT": "yes please"}, `RELAY_HTTP_CONNECT "yes please"`},
		{nil, map[string]string{"RELAY_ROUTE": "a.com=h:1,\x00evil"}, `RELAY_ROUTE`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := config.Parse(tc.args, env(tc.env))
			if err == nil {
				t.Fatalf("accepted; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}
