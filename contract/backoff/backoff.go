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

// Source is where a delay's randomness comes from; *math/rand/v2.Rand
// satisfies it, so a test can pass a seeded one and get the same delays
// every run. nil means math/rand/v2's global source.
type Source interface {
	// Int64N returns a uniform value in [0, n) for n > 0.
	Int64N(n int64) int64
}

// FullJitter is "full jitter" exponential backoff, a uniformly random delay in
// [0, min(max, base·2ⁿ)) before retry n (0-based). Spreading the delay over
// the whole window, not around its ceiling, is what stops a fleet that failed
// together from retrying together ("Exponential Backoff And Jitter", AWS
// Architecture Blog; the AWS SDKs' standard retry mode also uses full jitter,
// "Retry behavior", AWS SDKs and Tools Reference Guide). It is Floored with
// no floor and the global source.
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
	return Floored(nil, 0, base, max, n)
}

// Floored is full jitter above a floor: floor plus a uniformly random delay
// in [0, min(max−floor, base·2ⁿ)), so every delay lies in [floor, max) and
// even the first retry is spread over base. The floor is what keeps a fleet
// cut off at once (a relay task killed, a zone lost) from sending its first
// wave of reconnects within milliseconds; the window above it, doubling with
// every failed attempt, is what spreads it.
//
// Edge cases, exactly:
//   - floor < 0 counts as 0.
//   - base ≤ 0, or max ≤ floor, is an empty window: the delay is floor
//     (clamped to max when max > 0 and below floor; 0 when max ≤ 0).
//   - n < 0 counts as 0; base·2ⁿ beyond time.Duration (any n ≥ 63, or an
//     overflowing product) counts as above the window, which is then
//     max−floor.
//   - src nil uses math/rand/v2's global source.
func Floored(src Source, floor, base, max time.Duration, n int) time.Duration {
	floor = min(floor, max)
	if floor < 0 {
		floor = 0
	}
	window := max - floor
	if base <= 0 || window <= 0 {
		return floor
	}
	if n < 0 {
		n = 0
	}
	if n < 63 {
		if d := base << n; d>>n == base && d > 0 && d < window {
			window = d
		}
	}
	if src == nil {
		return floor + rand.N(window)
	}
	return floor + time.Duration(src.Int64N(int64(window)))
}

// DefaultReconnectSpread is the reference agent's spread of its first
// reconnect after an established connection is lost (agent.Config
// ReconnectSpread, --reconnect-spread). A relay task killed outright
// (SIGKILL, a crash: no drain) cuts up to its --max-conns agents at the same
// instant; each waits its floor plus a uniform delay in [0, spread), so they
// reconnect at about conns / spread per second. 18 s keeps the relay's
// default 3,000 connections per task (relayspec.DefaultMaxConnsPerTask)
// within AWS IoT Core's default 500 subscriptions/s per account when every
// reconnect is counted at its worst: a new session of an agent with
// self-update on subscribes three topic filters (config, down/#, its release
// channel), so 500 / 3 ≈ 166.7 reconnects/s and 3000 / 166.7 = 18 s
// (internal/deploy/capacity.AgentReconnect; the capacity tests
// pin that this default and that arithmetic agree). The price is latency
// after every lost connection: the first reconnect comes after floor + 9 s
// on average (up to floor + 18 s) instead of floor + 0.5 s (up to floor +
// 1 s).
const DefaultReconnectSpread = 18 * time.Second

// FirstReconnect is the delay before the first reconnect attempt after an
// established connection was lost: floor plus a uniformly random delay in
// [0, min(max−floor, spread)), Floored's attempt 0 with spread as its
// window. Later attempts follow Floored with the caller's base, so an agent
// whose first reconnect fails (a throttled broker) goes back to the
// ordinary exponential windows. Edge cases are Floored's (spread ≤ 0 is an
// empty window: the delay is floor).
func FirstReconnect(src Source, floor, spread, max time.Duration) time.Duration {
	return Floored(src, floor, spread, max, 0)
}
