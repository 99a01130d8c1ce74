//go:build linux

package relay

import (
	"bytes"
	"testing"

	"github.com/agentgate/agentgate/proxyimage/clienthello"
	"github.com/agentgate/agentgate/proxyimage/internal/hellogen"
)

// FuzzConnectTunnel checks the CONNECT inner-name rule on arbitrary CONNECT
// hosts and tunnelled bytes: a tunnel is only ever let through to the
// upstream configured for the CONNECT host, and only when the tunnelled
// ClientHello names exactly that host, without ECH, in name bytes only.
func FuzzConnectTunnel(f *testing.F) {
	record := func(exts ...hellogen.Extension) []byte { return hellogen.Record(hellogen.Build(exts...)) }
	f.Add("a.iot.test", record(hellogen.SNI("a.iot.test")))
	f.Add("A.IOT.TEST.", record(hellogen.SNI("a.iot.test")))
	f.Add("a.iot.test", record(hellogen.SNI("b.iot.test")))
	f.Add("a.iot.test", record(hellogen.SNI("A.Iot.Test.")))
	f.Add("a.iot.test", record(hellogen.SNI("a.\u0130ot.test")))
	f.Add("\u212a.iot.test", record(hellogen.SNI("k.iot.test")))
	f.Add("k.iot.test", record(hellogen.SNI("\u212a.iot.test")))
	f.Add("a.iot.test", record(hellogen.SNI("a.iot.test"), hellogen.ECH()))
	f.Add("a.iot.test", record())
	f.Add("127.0.0.1", record(hellogen.SNI("127.0.0.1")))
	s := &Server{routes: routeTable{upstream: map[string]string{
		"a.iot.test": "10.0.0.1:443",
		"b.iot.test": "10.0.0.2:443",
		"k.iot.test": "10.0.0.3:443",
	}}}
	f.Fuzz(func(t *testing.T, connectHost string, tunnelled []byte) {
		h, err := clienthello.Read(bytes.NewReader(tunnelled))
		if err != nil {
			return // refused on the TLS path's read errors
		}
		name := clienthello.NormalizeName(connectHost)
		upstream, reason := s.tunnelTarget(name, h)
		if reason != "" {
			if upstream != "" {
				t.Fatalf("refused (%s) with an upstream %q", reason, upstream)
			}
			return
		}
		if h.ECH || h.ServerName != name || !clienthello.ValidNameBytes(name) {
			t.Fatalf("CONNECT %q let through a hello for %q (ECH %v)", connectHost, h.ServerName, h.ECH)
		}
		if want, ok := s.routes.upstream[name]; !ok || upstream != want {
			t.Fatalf("CONNECT %q: upstream %q, want %q", connectHost, upstream, want)
		}
	})
}
