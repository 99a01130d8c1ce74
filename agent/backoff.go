package agent

import (
	"time"

	"github.com/agentgate/agentgate/contract/backoff"
)

// Backoff returns the delay before reconnect attempt n (0-based): uniformly
// random in [0, min(max, base·2ⁿ)), "full jitter", so a fleet cut off at
// once does not come back at once. The rule is backoff.FullJitter, which the
// control-plane Lambdas' AWS SDK retryer shares.
//
// Edge cases, exactly:
//   - base ≤ 0 counts as DefaultBackoffBase and max ≤ 0 as
//     DefaultBackoffMax. backoff.FullJitter answers 0 for such a window,
//     and a reconnect loop that waits 0 hammers the broker: a caller that
//     passes a zero value gets the agent's defaults instead, as Config does.
//   - n < 0 counts as 0.
//   - base·2ⁿ above max, or beyond time.Duration (any n ≥ 63), gives the
//     ceiling max; below it, the ceiling is base·2ⁿ for every n.
//   - base above max: the ceiling is max.
//   - The window is half-open: the delay is never the ceiling itself.
func Backoff(base, max time.Duration, n int) time.Duration {
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	return backoff.FullJitter(base, max, n)
}
