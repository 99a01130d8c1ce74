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
// Edge cases, exactly:
//   - base ≤ 0 or max ≤ 0 is an empty window: the delay is 0 (no panic).
//     A caller that retries in a loop must substitute its own defaults
//     first, as agent.Backoff and the Lambdas' retryer do; 0 would make the
//     loop spin.
//   - n < 0 counts as 0.
//   - The ceiling is min(max, base·2ⁿ) for every n; base·2ⁿ beyond
//     time.Duration (any n ≥ 63, or an overflowing product) counts as
//     above max, so the ceiling is max.
//   - base above max: the ceiling is max.
//   - The window is half-open, [0, ceiling): the delay is never the
//     ceiling itself (math/rand/v2 N).
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
