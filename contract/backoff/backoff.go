// Package backoff holds the one retry-delay rule every agentgate client that
// waits before trying again follows: the reference agent's reconnects and
// the control-plane Lambdas' AWS SDK retryer. It imports only the standard
// library, so run-time code links it freely. It is its own package, not part
// of package timing, because the relay image is built from exactly the
// packages the relay imports (relayfleet.ImageSources, which include timing):
// a rule the relay does not use must not rebuild and redeploy it.
package backoff

import (
	"math/rand/v2"
	"time"
)

// FullJitter is "full jitter" exponential backoff, a uniformly random delay in
// [0, min(max, base·2ⁿ)) before retry n (0-based). Spreading the delay over
// the whole window, not around its ceiling, is what stops a fleet that failed
// together from retrying together ("Exponential Backoff And Jitter", AWS
// Architecture Blog; the AWS SDKs' standard retry mode also uses full jitter,
// "Retry behavior", AWS SDKs and Tools Reference Guide).
//
// A negative n counts as 0; base·2ⁿ beyond max (or beyond time.Duration)
// is max; an empty window (base or max not positive) gives 0.
func FullJitter(base, max time.Duration, n int) time.Duration {
	if base <= 0 || max <= 0 {
		return 0
	}
	ceil := max
	if n < 0 {
		n = 0
	}
	if n < 63 {
		if d := base << n; d>>n == base && d > 0 && d < max {
			ceil = d
		}
	}
	return rand.N(ceil)
}
