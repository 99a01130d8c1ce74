package agent

import (
	"time"

	"github.com/agentgate/agentgate/contract/backoff"
)

// Backoff returns the delay before reconnect attempt n (0-based): uniformly
// random in [0, min(max, base·2ⁿ)), "full jitter", so a fleet cut off at
// once does not come back at once. The rule is backoff.FullJitter, which the
// control-plane Lambdas' AWS SDK retryer shares.
func Backoff(base, max time.Duration, n int) time.Duration {
	return backoff.FullJitter(base, max, n)
}
