package awsstandin

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS stands in for Route 53 answering the agents' name: a UDP DNS server
// on 127.0.0.1 that answers A queries for one name, TTL 60, and NXDOMAIN
// for anything else. Two modes:
//
//   - multi-address (StartDNS, SetAnswers): Route 53 multivalue answer
//     records ("Multivalue answer routing"): every healthy address in each
//     answer, here in the configured order; when every one is unhealthy,
//     all of them (the API reference, ResourceRecordSet MultiValueAnswer:
//     "When all records are unhealthy, Route 53 responds to DNS queries with
//     up to eight unhealthy records");
//   - weighted (SetWeighted, SetHealthy): what constructs/agentdns deploys,
//     Route 53 weighted records with health checks: one address per answer,
//     chosen at random by weight among the healthy ones; weight-0 records
//     only when every record with a weight is unhealthy; when all are
//     unhealthy, Route 53 fails open among the non-zero weights.
//
// An address's health comes from the health source (SetHealthSource: the
// Route 53 health-check stand-in) when the source checks it, as Route 53
// reads a record's health check's current status; otherwise from SetHealthy
// or the record (multi-address records are healthy unless marked), as a
// record without a health check is always healthy.
type DNS struct {
	// Addr is the UDP host:port.
	Addr string

	name     string
	conn     net.PacketConn
	mu       sync.Mutex
	answers  []netip.Addr
	weighted []WeightedRecord // nil: multi-address mode
	source   HealthSource
	queries  atomic.Int64
}

// HealthSource reports an address's health-check status; checked is false
// when it has no check for the address.
type HealthSource interface {
	Status(addr netip.Addr) (healthy, checked bool)
}

// WeightedRecord is one Route 53 weighted A record and its health.
type WeightedRecord struct {
	Addr netip.Addr
	// Weight is 0..255; 0 is a standby.
	Weight int
	// Healthy is the record's health check status.
	Healthy bool
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

// SetAnswers replaces the addresses answered (an unhealthy IP leaves the
// set) and selects multi-address mode.
func (d *DNS) SetAnswers(addrs ...netip.Addr) {
	d.mu.Lock()
	d.answers, d.weighted = addrs, nil
	d.mu.Unlock()
}

// SetWeighted switches to weighted mode with these records (health as
// given); SetAnswers switches back to multi-address mode.
func (d *DNS) SetWeighted(records ...WeightedRecord) {
	d.mu.Lock()
	d.weighted = append([]WeightedRecord{}, records...)
	d.mu.Unlock()
}

// SetHealthSource makes src the health of the addresses it checks.
func (d *DNS) SetHealthSource(src HealthSource) {
	d.mu.Lock()
	d.source = src
	d.mu.Unlock()
}

// SetHealthy sets a weighted record's health, as Route 53's checkers would
// once the relay behind it stops answering; it reports whether addr is a
// record. A health source that checks addr overrides it.
func (d *DNS) SetHealthy(addr netip.Addr, healthy bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.weighted {
		if d.weighted[i].Addr == addr {
			d.weighted[i].Healthy = healthy
			return true
		}
	}
	return false
}

// healthy is addr's health (d.mu held): the source's status if it checks
// addr, else fallback.
func (d *DNS) healthy(addr netip.Addr, fallback bool) bool {
	if d.source != nil {
		if h, checked := d.source.Status(addr); checked {
			return h
		}
	}
	return fallback
}

// answer returns the addresses for one query (d.mu held).
func (d *DNS) answer() []netip.Addr {
	if d.weighted == nil {
		var up []netip.Addr
		for _, a := range d.answers {
			if d.healthy(a, true) {
				up = append(up, a)
			}
		}
		if len(up) == 0 {
			return d.answers
		}
		return up
	}
	records := append([]WeightedRecord(nil), d.weighted...)
	for i := range records {
		records[i].Healthy = d.healthy(records[i].Addr, records[i].Healthy)
	}
	if a, ok := pickWeighted(records); ok {
		return []netip.Addr{a}
	}
	return nil
}

// pickWeighted chooses one record as Route 53 does for weighted records
// with health checks (see constructs/agentdns).
func pickWeighted(records []WeightedRecord) (netip.Addr, bool) {
	var candidates []WeightedRecord
	for _, r := range records {
		if r.Healthy && r.Weight > 0 {
			candidates = append(candidates, r)
		}
	}
	if len(candidates) == 0 { // healthy standbys, chosen with equal probability
		for _, r := range records {
			if r.Healthy && r.Weight == 0 {
				candidates = append(candidates, WeightedRecord{Addr: r.Addr, Weight: 1})
			}
		}
	}
	if len(candidates) == 0 { // fail open, non-zero weights only
		for _, r := range records {
			if r.Weight > 0 {
				candidates = append(candidates, r)
			}
		}
	}
	total := 0
	for _, r := range candidates {
		total += r.Weight
	}
	if total == 0 {
		return netip.Addr{}, false
	}
	n := rand.IntN(total)
	for _, r := range candidates {
		if n < r.Weight {
			return r.Addr, true
		}
		n -= r.Weight
	}
	return netip.Addr{}, false
}

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
			for _, a := range d.answer() {
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
