package agent

import (
	"time"

	"github.com/agentgate/agentgate/contract/backoff"
)

// Backoff returns the delay before reconnect attempt n (0-based): full
// jitter above a floor, floor + a uniformly random delay in
// [0, min(max−floor, base·2ⁿ)), with floor = min(DefaultBackoffFloor, base).
// The floor keeps a fleet cut off at once (a relay task killed, a zone
// lost) from all retrying within milliseconds; the jittered window above
// it, doubling per failed attempt, spreads it. The rule is
// backoff.Floored, which the control-plane Lambdas' AWS SDK retryer shares
// (with no floor). A running agent uses Config.BackoffFloor instead of
// the default floor.
//
// Edge cases, exactly:
//   - base ≤ 0 counts as DefaultBackoffBase and max ≤ 0 as
//     DefaultBackoffMax: a caller that passes a zero value gets the
//     agent's defaults, as Config does, never a 0 delay that would spin.
//   - n < 0 counts as 0.
//   - base·2ⁿ above max−floor, or beyond time.Duration (any n ≥ 63), gives
//     the whole window: the delay is below max.
//   - The window is half-open: the delay is never floor+window itself.
//   - floor ≥ max (base or DefaultBackoffFloor at or above max): the
//     delay is max, constant.
func Backoff(base, max time.Duration, n int) time.Duration {
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if max <= 0 {
		max = DefaultBackoffMax
	}
	return backoff.Floored(nil, min(DefaultBackoffFloor, base), base, max, n)
}

// backoff is the running agent's delay before attempt n, with its
// configured floor.
func (a *Agent) backoff(n int) time.Duration {
	return backoff.Floored(a.rnd, a.cfg.BackoffFloor, a.cfg.BackoffBase, a.cfg.BackoffMax, n)
}

// reconnectDelay is what the agent waits before connection attempt n
// (autopaho counts from 0 again after every connection that came up): the
// first attempt of the process goes at once, the first after a lost
// connection waits its floor plus up to ReconnectSpread
// (backoff.FirstReconnect), every later one the backoff.
func (a *Agent) reconnectDelay(n int, processStart bool) time.Duration {
	switch {
	case n <= 0 && processStart:
		return 0
	case n <= 0:
		return backoff.FirstReconnect(a.rnd, a.cfg.BackoffFloor, a.cfg.ReconnectSpread, a.cfg.BackoffMax)
	}
	return a.backoff(n)
}
