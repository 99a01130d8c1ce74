package agent

import (
	"math/rand/v2"
	"time"
)

// Backoff returns the delay before reconnect attempt n (0-based): uniformly
// random in [0, min(max, base·2ⁿ)), "full jitter", so a fleet cut off at
// once does not come back at once.
func Backoff(base, max time.Duration, n int) time.Duration {
	ceil := max
	if n < 30 && base<<n < max && base<<n > 0 {
		ceil = base << n
	}
	return rand.N(ceil)
}
