package awsstandin

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TargetHealthCheck is a target group's HTTP health check settings
// (Elastic Load Balancing, "Health checks for Network Load Balancer target
// groups" → "Health check settings").
type TargetHealthCheck struct {
	// Interval is HealthCheckIntervalSeconds: time between checks of one target.
	Interval time.Duration
	// Timeout is HealthCheckTimeoutSeconds: no response within it fails the check.
	Timeout time.Duration
	// HealthyThreshold is HealthyThresholdCount: consecutive passes that
	// put an unhealthy target back in service (2..10).
	HealthyThreshold int
	// UnhealthyThreshold is UnhealthyThresholdCount: consecutive failures
	// that take a target out of service (2..10).
	UnhealthyThreshold int
	// Path is HealthCheckPath.
	Path string
	// Matcher is the healthy HTTP codes: "200", "200-399", "200,202".
	Matcher string
}

// TargetGroup is what the stand-in honours of a target group's settings.
type TargetGroup struct {
	// HealthCheck is the target health check.
	HealthCheck TargetHealthCheck
	// UnhealthyConnectionTermination is
	// target_health_state.unhealthy.connection_termination.enabled (the
	// load balancer's default is true; constructs/edge sets false): a
	// target that turns unhealthy has its connections reset at once, unless
	// its zone fails open ("Health checks for Network Load Balancer target
	// groups").
	UnhealthyConnectionTermination bool
	// UnhealthyDrainingInterval is
	// target_health_state.unhealthy.draining_interval_seconds, which the
	// load balancer takes only with UnhealthyConnectionTermination off
	// (Elastic Load Balancing API reference, TargetGroupAttribute). A
	// target that fails its checks is "unhealthy.draining" this long: no
	// new connections, open ones kept; passing the checks meanwhile makes
	// it healthy again; otherwise it becomes "unhealthy" and its
	// connections are reset, unless its zone fails open ("Edit target
	// group attributes for your Network Load Balancer" → "Unhealthy
	// draining interval"; the reset at the end is in AWS's announcement of
	// the state, "it will flip the target status to unhealthy and
	// connections will be terminated"). With termination off and an
	// interval of 0 the guide's "established connections are kept active"
	// and that announcement disagree; the stand-in resets at once
	// (unverified; constructs/edge never configures it).
	UnhealthyDrainingInterval time.Duration
}

func (g TargetGroup) validate() (func(int) bool, error) {
	switch {
	case g.UnhealthyDrainingInterval < 0:
		return nil, fmt.Errorf("nlb: unhealthy draining interval %v must not be negative", g.UnhealthyDrainingInterval)
	case g.UnhealthyDrainingInterval > 0 && g.UnhealthyConnectionTermination:
		return nil, errors.New("nlb: an unhealthy draining interval needs connection termination for unhealthy targets off")
	}
	return g.HealthCheck.validate()
}

func (c TargetHealthCheck) validate() (func(int) bool, error) {
	switch {
	case c.Interval <= 0 || c.Timeout <= 0:
		return nil, fmt.Errorf("nlb: health check interval %v and timeout %v must be positive", c.Interval, c.Timeout)
	case c.HealthyThreshold < 2 || c.HealthyThreshold > 10 || c.UnhealthyThreshold < 2 || c.UnhealthyThreshold > 10:
		return nil, fmt.Errorf("nlb: health check thresholds %d/%d must be 2..10", c.HealthyThreshold, c.UnhealthyThreshold)
	case !strings.HasPrefix(c.Path, "/"):
		return nil, fmt.Errorf("nlb: health check path %q must start with /", c.Path)
	}
	return parseMatcher(c.Matcher)
}

// parseMatcher reads a target group Matcher's HttpCode: single codes and
// ranges, comma-separated.
func parseMatcher(s string) (func(int) bool, error) {
	type span struct{ lo, hi int }
	var spans []span
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 200 || b > 599 || a > b {
			return nil, fmt.Errorf("nlb: health check matcher %q: want codes or ranges such as 200 or 200-399", s)
		}
		spans = append(spans, span{a, b})
	}
	return func(code int) bool {
		for _, sp := range spans {
			if code >= sp.lo && code <= sp.hi {
				return true
			}
		}
		return false
	}, nil
}

// health is one target's state machine. A registered target is "initial"
// until it passes one check ("Troubleshoot your Network Load Balancer": a
// target "is not in service until it passes one health check") or fails
// UnhealthyThreshold in a row; afterwards it changes state only after the
// threshold's count of consecutive results the other way. With a draining
// interval a failing target is "unhealthy.draining" first and becomes
// "unhealthy" when the interval ends (drainingElapsed), unless enough
// passes make it healthy before.
type health struct {
	state         TargetState
	passes, fails int
}

// record applies one check result and reports whether the state changed.
// drain says whether a target that fails goes to unhealthy.draining.
func (h *health) record(pass bool, c TargetHealthCheck, drain bool) bool {
	if pass {
		h.fails = 0
		h.passes++
	} else {
		h.passes = 0
		h.fails++
	}
	prev := h.state
	out := h.state == TargetUnhealthy || h.state == TargetUnhealthyDraining
	switch {
	case h.state == TargetInitial && pass:
		h.state = TargetHealthy
	case !out && h.fails >= c.UnhealthyThreshold && drain:
		h.state = TargetUnhealthyDraining
	case !out && h.fails >= c.UnhealthyThreshold:
		h.state = TargetUnhealthy
	case out && h.passes >= c.HealthyThreshold:
		h.state = TargetHealthy
	}
	return h.state != prev
}

// drainingElapsed ends an unhealthy.draining state; it reports whether the
// state changed.
func (h *health) drainingElapsed() bool {
	if h.state != TargetUnhealthyDraining {
		return false
	}
	h.state = TargetUnhealthy
	return true
}

// healthChecks checks t every Interval, starting at once, until it is
// deregistered or the load balancer closes.
func (n *NLB) healthChecks(t *nlbTarget) {
	defer n.wg.Done()
	tick := time.NewTicker(n.tg.HealthCheck.Interval)
	defer tick.Stop()
	for {
		n.mu.Lock()
		stops := t.stops
		n.mu.Unlock()
		pass := n.checkOnce(t) == nil
		n.mu.Lock()
		select {
		case <-t.quit:
			n.mu.Unlock()
			return
		default:
		}
		if pass && t.stopped && t.stops == stops {
			// It answers again: new connections may go to it. A check
			// that was already under way when it stopped says nothing.
			t.stopped = false
			n.sync(t.zone)
		}
		if t.record(pass, n.tg.HealthCheck, n.tg.UnhealthyDrainingInterval > 0) {
			switch t.state {
			case TargetUnhealthy:
				n.terminate(t)
			case TargetUnhealthyDraining:
				n.startDraining(t)
			}
			n.notify()
		}
		n.mu.Unlock()
		select {
		case <-t.quit:
			return
		case <-tick.C:
		}
	}
}

// startDraining arms the end of t's unhealthy.draining state (n.mu held).
// A timer armed for an earlier stay in that state no longer counts.
func (n *NLB) startDraining(t *nlbTarget) {
	t.stopDraining()
	t.drainGen++
	gen := t.drainGen
	t.drainTimer = time.AfterFunc(n.tg.UnhealthyDrainingInterval, func() { n.drainingElapsed(t, gen) })
}

// drainingElapsed moves t from unhealthy.draining to unhealthy and resets
// its connections, if t is still registered and still in the stay that
// armed gen.
func (n *NLB) drainingElapsed(t *nlbTarget, gen int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.find(t.Addr) != t || t.drainGen != gen || !t.health.drainingElapsed() {
		return
	}
	n.terminate(t)
	n.notify()
}

// terminate resets the connections of a target that just became
// unhealthy, unless its zone now has no healthy target and fails open
// (n.mu held).
func (n *NLB) terminate(t *nlbTarget) {
	for _, other := range t.zone.targets {
		if other.state == TargetHealthy {
			for f := range t.flows {
				f.reset()
			}
			return
		}
	}
}

// checkOnce is one health check: a new connection to the health port, the
// PROXY v2 LOCAL header, GET Path with the Host header of the zone's
// address and listener port, and the status matched, all within Timeout.
func (n *NLB) checkOnce(t *nlbTarget) error {
	check := n.tg.HealthCheck
	deadline := time.Now().Add(check.Timeout)
	c, err := net.DialTimeout("tcp", t.HealthAddr, check.Timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", check.Path, t.zone.addr)
	if _, err := c.Write(append(ProxyV2LocalHeader(), req...)); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(c, 64<<10)), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if !n.ok(resp.StatusCode) {
		return errors.New("nlb: health check answered " + resp.Status)
	}
	return nil
}
