package main

import (
	"context"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/connectproxy"
)

func startProxy(t *testing.T, l *agentlab.Lab, opts connectproxy.Options) *connectproxy.Proxy {
	t.Helper()
	opts.Resolver = l.DNS.Resolver()
	p, err := connectproxy.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestSmokeThroughTheProxy: both transports reach IoT through a proxy
// that wants Basic credentials (from HTTPS_PROXY), with CONNECT to the
// relay's name, and receive the retained configuration.
func TestSmokeThroughTheProxy(t *testing.T) {
	l := startLab(t)
	publishConfig(t, l, 1764406800000, `{"interval":60}`)
	px := startProxy(t, l, connectproxy.Options{User: "agent", Password: "pa:ss"})
	target := agentlab.RelayName + ":" + l.RelayPort
	for _, tc := range []struct {
		transport string
		want      []string
	}{
		{"wss", []string{"ok load", "ok resolve", "ok tls-via-relay", "ok tcp", "ok credentials", "ok presign", "ok tcp",
			"ok tls+websocket", "ok mqtt-connect", "ok subscribe", "ok retained-config", "ok publish"}},
		{"mqtts", []string{"ok load", "ok resolve", "ok tls-via-relay", "ok tcp", "ok tls", "ok mqtt-connect", "ok subscribe",
			"ok retained-config", "ok publish"}},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			before := len(px.Requests())
			env := merge(labEnv(l), "HTTPS_PROXY", px.URL("agent:pa%3Ass"), "AGENTGATE_TRANSPORT", tc.transport)
			code, out, errOut := runCLI(t, context.Background(), env, "smoke", "--timeout", "20s")
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if got := stepLines(out); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("steps %v\nwant %v\n%s", got, tc.want, out)
			}
			for _, s := range []string{"proxy http://agent:xxxxx@" + px.Addr, target + " via proxy " + px.Addr, "version 1764406800000",
				target + ": resolved by the proxy " + px.Addr} {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q\n%s", s, out)
				}
			}
			if strings.Contains(out, "pa:ss") || strings.Contains(out, "pa%3Ass") {
				t.Errorf("the output shows the password\n%s", out)
			}
			reqs := px.Requests()[before:]
			if len(reqs) == 0 {
				t.Fatal("the proxy saw no CONNECT")
			}
			for _, r := range reqs {
				if r.Target != target || r.Status != 200 {
					t.Errorf("proxy saw %+v, want CONNECT %s answered 200", r, target)
				}
			}
		})
	}
}

// TestDoctor: through a working proxy every hop is ok and the static IPs
// are printed; each broken proxy fails at its hop with its own reason.
func TestDoctor(t *testing.T) {
	l := startLab(t)
	open := startProxy(t, l, connectproxy.Options{User: "agent", Password: "pw"})
	deny := startProxy(t, l, connectproxy.Options{Mode: connectproxy.Deny})
	intercept := startProxy(t, l, connectproxy.Options{Mode: connectproxy.Intercept})
	garbage := startProxy(t, l, connectproxy.Options{Mode: connectproxy.Garbage})
	ips := agentlab.RelayIPs[0].String() + ", " + agentlab.RelayIPs[1].String()

	t.Run("ok", func(t *testing.T) {
		env := merge(labEnv(l), "HTTPS_PROXY", open.URL("agent:pw"))
		code, out, errOut := runCLI(t, context.Background(), env, "doctor")
		t.Log("\n" + out)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		want := []string{"ok load", "ok dns", "ok proxy", "ok tls-via-relay", "ok tcp", "ok credentials", "ok presign", "ok tcp",
			"ok tls+websocket", "ok mqtt-connect"}
		if got := stepLines(out); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("steps %v\nwant %v\n%s", got, want, out)
		}
		for _, s := range []string{"allow: TCP " + l.RelayPort + " to " + agentlab.RelayName + ", the relay's static IPs " + ips,
			"CONNECT " + agentlab.RelayName + ":" + l.RelayPort + " established", "result: ok"} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q\n%s", s, out)
			}
		}
	})

	t.Run("ok certificate path", func(t *testing.T) {
		env := merge(labEnv(l), "HTTPS_PROXY", open.URL("agent:pw"), "AGENTGATE_TRANSPORT", "mqtts")
		delete(env, "AGENTGATE_CREDENTIALS_ENDPOINT")
		code, out, errOut := runCLI(t, context.Background(), env, "doctor", "--static-ips", ips)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		want := []string{"ok load", "ok dns", "ok proxy", "ok tls-via-relay", "ok tcp", "ok tls", "ok mqtt-connect"}
		if got := stepLines(out); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("steps %v\nwant %v\n%s", got, want, out)
		}
		if !strings.Contains(out, "alpn=x-amzn-mqtt-ca") {
			t.Errorf("no ALPN in\n%s", out)
		}
	})

	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		step   string
		reason string
	}{
		{"missing credentials", []string{"HTTPS_PROXY", open.URL("")}, nil, "proxy", "proxy authentication failed: the proxy " + open.Addr + " requires authentication"},
		{"wrong credentials", []string{"HTTPS_PROXY", open.URL("agent:nope")}, nil, "proxy", `refused the credentials of user "agent"`},
		{"denied", []string{"HTTPS_PROXY", deny.URL("")}, nil, "proxy", `proxy denied the tunnel: the proxy ` + deny.Addr + ` refused CONNECT ` + agentlab.RelayName + ":" + l.RelayPort + ` ("HTTP/1.1 403 Forbidden")`},
		{"intercepting", nil, []string{"--proxy", intercept.URL("")}, "tls-via-relay", "the proxy at " + intercept.Addr + " intercepts TLS: " + agentlab.IoTHost + " presented a certificate issued by"},
		{"not HTTP", []string{"https_proxy", garbage.URL("")}, nil, "proxy", "is " + garbage.Addr + " an HTTP proxy?"},
		{"static IPs differ", nil, []string{"--static-ips", "192.0.2.1, 192.0.2.2"}, "dns", "not among --static-ips"},
		{"bad static IPs", nil, []string{"--static-ips", "192.0.2.1,nope"}, "static-ips", `"nope" is not an IP address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, _ := runCLI(t, context.Background(), merge(labEnv(l), tc.env...), append([]string{"doctor"}, tc.args...)...)
			t.Log("\n" + out)
			lines := stepLines(out)
			if code != 1 || len(lines) == 0 || lines[len(lines)-1] != "FAIL "+tc.step {
				t.Fatalf("exit %d, steps %v, want the last to be FAIL %s\n%s", code, lines, tc.step, out)
			}
			if !strings.Contains(out, tc.reason) || !strings.Contains(out, "result: FAIL") {
				t.Fatalf("output lacks %q\n%s", tc.reason, out)
			}
		})
	}

	// Behind a proxy the relay's name need not resolve locally; the proxy
	// that cannot resolve it either answers 502, reported as a denial.
	t.Run("relay name only the proxy could resolve", func(t *testing.T) {
		env := merge(labEnv(l), "HTTPS_PROXY", open.URL("agent:pw"))
		code, out, _ := runCLI(t, context.Background(), env, "doctor", "--relay", "nowhere.agentgate.test")
		t.Log("\n" + out)
		lines := stepLines(out)
		if code != 1 || strings.Join(lines, ",") != "ok load,ok dns,FAIL proxy" {
			t.Fatalf("exit %d, steps %v\n%s", code, lines, out)
		}
		for _, s := range []string{"nowhere.agentgate.test does not resolve here", "not needed: the proxy resolves it",
			"(none known: pass --static-ips)", `could not open CONNECT nowhere.agentgate.test:` + l.RelayPort + ` ("HTTP/1.1 502 Bad Gateway"): check the relay's name`} {
			if !strings.Contains(out, s) {
				t.Errorf("output lacks %q\n%s", s, out)
			}
		}
	})

	// The proxy is bypassed by NO_PROXY (or --no-proxy), or ignored with
	// --proxy direct: the denying proxy is never asked.
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"NO_PROXY", []string{"HTTPS_PROXY", deny.URL(""), "NO_PROXY", "example.com, .agentgate.test"}, nil},
		{"--no-proxy", []string{"HTTPS_PROXY", deny.URL(""), "NO_PROXY", "example.com"}, []string{"--no-proxy", "agents.agentgate.test"}},
		{"--proxy direct", []string{"HTTPS_PROXY", deny.URL("")}, []string{"--proxy", "direct"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(deny.Requests())
			code, out, errOut := runCLI(t, context.Background(), merge(labEnv(l), tc.env...), append([]string{"doctor"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
			}
			if n := len(deny.Requests()) - before; n != 0 {
				t.Fatalf("the proxy was asked %d times\n%s", n, out)
			}
		})
	}
}

// TestProxyFlagErrors: a proxy URL that cannot work is refused before
// anything is dialled (exit 2), naming where it came from, without the
// password.
func TestProxyFlagErrors(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{"AGENTGATE_CUSTOMER": "acme-01", "AGENTGATE_THING": "dev-1", "AGENTGATE_IOT_ENDPOINT": "a-ats.iot.eu-west-1.amazonaws.com",
			"AGENTGATE_CERT": "c.pem", "AGENTGATE_KEY": "k.pem", "AGENTGATE_TRANSPORT": "mqtts"}
	}
	for _, tc := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--proxy", "socks5://u:secret@h:1080"}, `--proxy: proxy URL scheme "socks5" is not supported`},
		{nil, []string{"--proxy", "https://u:secret@h:3128"}, "--proxy: proxy URL scheme https (TLS to the proxy) is not supported"},
		{[]string{"HTTPS_PROXY", "http://u:secret@h:99999"}, nil, `HTTPS_PROXY: proxy URL port "99999"`},
		{[]string{"AGENTGATE_PROXY", "http://h:3128/path"}, nil, "--proxy: proxy URL has a path"},
	} {
		for _, cmd := range []string{"run", "smoke", "doctor"} {
			code, _, errOut := runCLI(t, context.Background(), merge(base(), tc.env...), append([]string{cmd}, tc.args...)...)
			if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "secret") {
				t.Errorf("%s %v %v: exit %d %q, want 2 and %q", cmd, tc.env, tc.args, code, errOut, tc.want)
			}
		}
	}
	code, _, errOut := runCLI(t, context.Background(), map[string]string{"HTTPS_PROXY": "ftp://h"}, "enroll", "--token", "t", "--claim-cert", "c", "--claim-key", "k", "--dir", "d", "--iot-endpoint", "h")
	if code != 2 || !strings.Contains(errOut, `HTTPS_PROXY: proxy URL scheme "ftp"`) {
		t.Errorf("enroll: exit %d %q", code, errOut)
	}
}
