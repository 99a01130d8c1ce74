package awsstandin

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS stands in for Route 53 answering the agents' name: a UDP DNS server
// on 127.0.0.1 that answers A queries for one name with a settable list of
// addresses (the healthy static IPs), in order, TTL 60, and NXDOMAIN for
// anything else.
type DNS struct {
	// Addr is the UDP host:port.
	Addr string

	name    string
	conn    net.PacketConn
	mu      sync.Mutex
	answers []netip.Addr
	queries atomic.Int64
}

// StartDNS serves name → addrs.
func StartDNS(name string, addrs ...netip.Addr) (*DNS, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &DNS{Addr: pc.LocalAddr().String(), name: strings.TrimSuffix(strings.ToLower(name), ".") + ".", conn: pc, answers: addrs}
	go d.serve()
	return d, nil
}

// Close stops the server.
func (d *DNS) Close() { d.conn.Close() }

// SetAnswers replaces the addresses answered (an unhealthy IP leaves the set).
func (d *DNS) SetAnswers(addrs ...netip.Addr) { d.mu.Lock(); d.answers = addrs; d.mu.Unlock() }

// Queries counts the questions answered.
func (d *DNS) Queries() int64 { return d.queries.Load() }

// Resolver returns a pure-Go resolver that asks only this server.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var nd net.Dialer
		return nd.DialContext(ctx, "udp", d.Addr)
	}}
}

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		d.queries.Add(1)
		resp := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired})
		resp.EnableCompression()
		known := strings.EqualFold(q.Name.String(), d.name)
		if !known {
			resp = dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeNameError})
		}
		resp.StartQuestions()
		resp.Question(q)
		resp.StartAnswers()
		if known && q.Type == dnsmessage.TypeA {
			d.mu.Lock()
			for _, a := range d.answers {
				if a.Is4() {
					resp.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: a.As4()})
				}
			}
			d.mu.Unlock()
		}
		out, err := resp.Finish()
		if err != nil {
			continue
		}
		d.conn.WriteTo(out, from)
	}
}
