package lambdakit

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/agentgate/agentgate/contract/backoff"
)

// RetryPolicy bounds the SDK's retries.
type RetryPolicy struct {
	// MaxAttempts is the total number of tries per call, including the first.
	MaxAttempts int
	// BaseBackoff is the first retry's backoff ceiling; it doubles per attempt.
	BaseBackoff time.Duration
	// MaxBackoff caps one jittered backoff delay.
	MaxBackoff time.Duration
	// AttemptTimeout bounds one HTTP attempt (a hung connection is retried).
	AttemptTimeout time.Duration
}

// DefaultRetryPolicy is what the Lambdas use: 8 tries with full-jitter
// exponential backoff from 100 ms capped at 4 s (at most ~10 s of waiting
// per call), and 5 s per attempt.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 4 * time.Second, AttemptTimeout: 5 * time.Second}

// Retryer returns the SDK's standard retryer customised for throttled
// fan-out: full-jitter exponential backoff from BaseBackoff, the rule
// backoff.FullJitter the agent shares (the SDK's own starts at up to 2 s after a
// throttle, which leaves a fan-out far below the account's publish rate),
// HTTP 429 retried whatever the error code, and no client-side retry quota (the
// default token bucket runs dry after ~100 throttles and then fails calls
// without trying; SQS redelivery is our outer bound instead).
func (p RetryPolicy) Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = p.MaxAttempts
		o.MaxBackoff = p.MaxBackoff
		o.RateLimiter = ratelimit.None
		o.Backoff = sdkBackoff{base: p.BaseBackoff, max: p.MaxBackoff}
		o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{http.StatusTooManyRequests: {}}})
	})
}

// HTTPClient returns an HTTP client whose attempts time out after AttemptTimeout.
func (p RetryPolicy) HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTimeout(p.AttemptTimeout).WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = 64
	})
}

// Apply sets the retryer and HTTP client on an aws.Config.
func (p RetryPolicy) Apply(cfg *aws.Config) {
	cfg.Retryer = p.Retryer
	cfg.HTTPClient = p.HTTPClient()
}

// defaultBaseBackoff is the first retry's ceiling when a policy leaves
// BaseBackoff unset.
const defaultBaseBackoff = 100 * time.Millisecond

// sdkBackoff adapts backoff.FullJitter, the rule the agent also uses, to the
// SDK's retry.BackoffDelayer, whose attempts count from 1.
type sdkBackoff struct{ base, max time.Duration }

// BackoffDelay implements retry.BackoffDelayer.
func (b sdkBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	base := b.base
	if base <= 0 {
		base = defaultBaseBackoff
	}
	return backoff.FullJitter(base, b.max, attempt-1), nil
}
