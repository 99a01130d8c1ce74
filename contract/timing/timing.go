// Package timing holds the one timeout rule every hop of an agent connection
// must obey, so deploy-time code (the NLB, the relay task definition) and
// run-time code (the relay, the reference agent) agree:
//
//	MQTT keep-alive ≤ 230 s (the IoT data VPC endpoint's cap)
//	1.5 × keep-alive < relay idle timeout < NLB TCP idle timeout ≤ 6000 s
//
// A keep-alive ping resets each idle timer, and MQTT allows a broker 1.5 ×
// keep-alive before it gives up on a client, so an idle timer below that would
// cut healthy, quiet agents; the NLB must outlast the relay so the relay, which
// logs and counts, is the one that closes.
package timing

import (
	"fmt"
	"time"
)

const (
	// MaxMQTTKeepAlive is the longest keep-alive the IoT data-plane VPC endpoint accepts.
	MaxMQTTKeepAlive = 230 * time.Second
	// DefaultMQTTKeepAlive is what the reference agent uses.
	DefaultMQTTKeepAlive = 60 * time.Second
	// DefaultRelayIdleTimeout covers the longest allowed keep-alive × 1.5 (345 s) with margin.
	DefaultRelayIdleTimeout = 360 * time.Second
	// DefaultNLBIdleTimeout is above the relay's so the relay closes first.
	DefaultNLBIdleTimeout = 400 * time.Second
	// MinNLBIdleTimeout and MaxNLBIdleTimeout bound the NLB TCP idle timeout setting.
	MinNLBIdleTimeout = 60 * time.Second
	// MaxNLBIdleTimeout is the NLB's upper bound for the TCP idle timeout.
	MaxNLBIdleTimeout = 6000 * time.Second
)

// CheckRule returns an error naming the first hop that breaks the rule.
func CheckRule(keepAlive, relayIdle, nlbIdle time.Duration) error {
	switch {
	case keepAlive <= 0:
		return fmt.Errorf("mqtt keep-alive %s must be positive", keepAlive)
	case keepAlive > MaxMQTTKeepAlive:
		return fmt.Errorf("mqtt keep-alive %s exceeds the IoT VPC endpoint cap of %s", keepAlive, MaxMQTTKeepAlive)
	case relayIdle*2 <= keepAlive*3:
		return fmt.Errorf("relay idle timeout %s must exceed 1.5 × mqtt keep-alive (%s)", relayIdle, keepAlive*3/2)
	case nlbIdle <= relayIdle:
		return fmt.Errorf("nlb idle timeout %s must exceed the relay idle timeout %s", nlbIdle, relayIdle)
	case nlbIdle < MinNLBIdleTimeout || nlbIdle > MaxNLBIdleTimeout:
		return fmt.Errorf("nlb idle timeout %s is outside %s..%s", nlbIdle, MinNLBIdleTimeout, MaxNLBIdleTimeout)
	case nlbIdle%time.Second != 0:
		return fmt.Errorf("nlb idle timeout %s must be whole seconds", nlbIdle)
	}
	return nil
}
