//go:build linux

package relay

import (
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// sourceConns caps concurrent connections per source (sourceKey: an IPv4
// address or an IPv6 /64), so one address cannot hold every connection of
// a relay; the rate limiter alone only slows it down. An entry exists only
// while its source holds a connection, so the map never outgrows
// --max-conns.
type sourceConns struct {
	mu   sync.Mutex
	max  int // 0: no cap, nothing tracked
	open map[netip.Addr]int
}

func newSourceConns(max int) *sourceConns {
	return &sourceConns{max: max, open: make(map[netip.Addr]int)}
}

// acquire takes a slot for src; it reports false when src already holds max.
// Every true must be matched by one release.
func (c *sourceConns) acquire(src netip.Addr) bool {
	if c.max <= 0 {
		return true
	}
	k := sourceKey(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[k] >= c.max {
		return false
	}
	c.open[k]++
	return true
}

// release returns a slot taken by acquire.
func (c *sourceConns) release(src netip.Addr) {
	if c.max <= 0 {
		return
	}
	k := sourceKey(src)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[k] <= 1 {
		delete(c.open, k)
		return
	}
	c.open[k]--
}

// stats returns how many sources hold a connection and the most any one holds.
func (c *sourceConns) stats() (sources, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.open {
		most = max(most, n)
	}
	return len(c.open), most
}

// collectors are computed when scraped (a walk over at most --max-conns
// entries), so the accept path only counts.
func (c *sourceConns) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agentgate_relay_sources",
			Help: "Sources (IPv4 address or IPv6 /64) holding at least one connection; 0 when --max-conns-per-source is 0.",
		}, func() float64 { n, _ := c.stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "agentgate_relay_source_connections_max",
			Help: "Most connections any one source holds now, against --max-conns-per-source; 0 when that cap is 0.",
		}, func() float64 { _, m := c.stats(); return float64(m) }),
	}
}
