//go:build linux

package netpath

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// TestDialsEveryAddressInOrder: the relay name's addresses are tried in the
// order DNS gives them; the first that accepts wins, whatever host the
// caller asked for (it only names the TLS server).
func TestDialsEveryAddressInOrder(t *testing.T) {
	live := listen(t, "127.0.0.3:0")
	_, port, _ := net.SplitHostPort(live.Addr().String())
	dns, err := awsstandin.StartDNS("agents.example.test", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	var tried []string
	d := &Dialer{RelayName: "agents.example.test", RelayPort: port, Resolver: dns.Resolver(),
		OnDial: func(addr string, err error) { tried = append(tried, addr) }}
	c, err := d.DialContext(context.Background(), "tcp", "abc-ats.iot.eu-west-1.amazonaws.com:443")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if strings.Join(tried, " ") != "127.0.0.2:"+port+" 127.0.0.3:"+port {
		t.Fatalf("tried %v", tried)
	}
	if c.RemoteAddr().String() != "127.0.0.3:"+port {
		t.Fatalf("connected to %s", c.RemoteAddr())
	}
}

func TestUnreachableNamesEveryAddress(t *testing.T) {
	dns, err := awsstandin.StartDNS("agents.example.test", netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.4"))
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	d := &Dialer{RelayName: "agents.example.test", RelayPort: "1", Resolver: dns.Resolver()}
	_, err = d.DialContext(context.Background(), "tcp", "h:443")
	if !errors.Is(err, agenterr.ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.2:1: connect: connection refused") ||
		!strings.Contains(err.Error(), "127.0.0.4:1") {
		t.Fatalf("%v", err)
	}
	dns.SetAnswers()
	if _, err := d.DialContext(context.Background(), "tcp", "h:443"); !errors.Is(err, agenterr.ErrUnreachable) || !strings.Contains(err.Error(), "no addresses") && !strings.Contains(err.Error(), "resolving") {
		t.Fatalf("empty answer: %v", err)
	}
	if _, err := d.DialContext(context.Background(), "tcp", "no-port"); err == nil {
		t.Fatal("address without port accepted")
	}
}

func TestResolveWithoutRelayAndIPLiterals(t *testing.T) {
	d := &Dialer{}
	got, err := d.Resolve(context.Background(), "192.0.2.7", "443")
	if err != nil || len(got) != 1 || got[0] != "192.0.2.7:443" {
		t.Fatalf("%v %v", got, err)
	}
	d = &Dialer{RelayName: "198.51.100.1", RelayPort: "8443"}
	got, err = d.Resolve(context.Background(), "abc-ats.iot.eu-west-1.amazonaws.com", "443")
	if err != nil || len(got) != 1 || got[0] != "198.51.100.1:8443" {
		t.Fatalf("%v %v", got, err)
	}
}
