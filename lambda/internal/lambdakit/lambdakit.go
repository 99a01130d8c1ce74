// Package lambdakit is the run-time kit the control-plane Lambdas share: AWS
// client options tuned for fan-out under IoT throttling, retained QoS 1
// publishing to exact topics, discovery of the account's iot-data endpoint,
// and CloudWatch Embedded Metric Format (EMF) counters. It never imports CDK
// or jsii: it is linked into Lambda binaries.
package lambdakit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/topics"
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
// fan-out: full-jitter exponential backoff from BaseBackoff (the SDK's own
// starts at up to 2 s after a throttle, which leaves a fan-out far below the
// account's publish rate), HTTP 429
// retried whatever the error code, and no client-side retry quota (the
// default token bucket runs dry after ~100 throttles and then fails calls
// without trying; SQS redelivery is our outer bound instead).
func (p RetryPolicy) Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = p.MaxAttempts
		o.MaxBackoff = p.MaxBackoff
		o.RateLimiter = ratelimit.None
		o.Backoff = fullJitter{base: p.BaseBackoff, max: p.MaxBackoff}
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

// ResolveDataEndpoint returns the iot-data base URL: "https://" + the
// configured host when env is non-empty, otherwise the account's
// iot:Data-ATS endpoint from iot:DescribeEndpoint.
func ResolveDataEndpoint(ctx context.Context, env string, client *iot.Client) (string, error) {
	host := strings.TrimSpace(env)
	if host == "" {
		out, err := client.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
		if err != nil {
			return "", fmt.Errorf("discover iot-data endpoint (iot:DescribeEndpoint iot:Data-ATS): %w", err)
		}
		host = aws.ToString(out.EndpointAddress)
	}
	if host == "" {
		return "", fmt.Errorf("iot-data endpoint is empty")
	}
	if strings.Contains(host, "://") {
		return host, nil
	}
	return "https://" + host, nil
}

// PublishRetained publishes payload as a retained QoS 1 message on topic.
// The caller addresses exact topics only (package topics): a retained
// message reaches only subscriptions equal to its topic.
func PublishRetained(ctx context.Context, data *iotdataplane.Client, topic string, payload []byte) error {
	if len(payload) == 0 {
		return fmt.Errorf("refusing to publish an empty retained payload on %s: it would delete the retained message", topic)
	}
	if len(payload) > topics.MaxMessageBytes {
		return fmt.Errorf("payload for %s is %d bytes; IoT Core accepts at most %d", topic, len(payload), topics.MaxMessageBytes)
	}
	_, err := data.Publish(ctx, &iotdataplane.PublishInput{
		Topic:       aws.String(topic),
		Qos:         1,
		Retain:      true,
		Payload:     payload,
		ContentType: aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("publish retained %s: %w", topic, err)
	}
	return nil
}

// Metrics writes CloudWatch Embedded Metric Format lines: each Count call is
// one JSON line on W, which CloudWatch Logs turns into a metric data point.
type Metrics struct {
	// W receives the EMF lines; os.Stdout in Lambda.
	W io.Writer
	// Namespace is the CloudWatch namespace, e.g. "agentgate/ControlPlane".
	Namespace string
	// Service is added as the "Service" dimension, e.g. "configpublisher".
	Service string
	// Now returns the timestamp; default time.Now.
	Now func() time.Time

	mu sync.Mutex
}

// NewMetrics returns EMF metrics on stdout.
func NewMetrics(namespace, service string) *Metrics {
	return &Metrics{W: os.Stdout, Namespace: namespace, Service: service}
}

// Count records n of the counter name, with the Service dimension and the
// extra dimensions dims (keep their values bounded: reasons, not IDs).
func (m *Metrics) Count(name string, n int, dims map[string]string) {
	if m == nil || m.W == nil {
		return
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	keys := []string{"Service"}
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys[1:])
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  m.Namespace,
				"Dimensions": [][]string{keys},
				"Metrics":    []any{map[string]string{"Name": name, "Unit": "Count"}},
			}},
		},
		"Service": m.Service,
		name:      n,
	}
	for k, v := range dims {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.W.Write(append(b, '\n'))
}

// fullJitter is "full jitter" exponential backoff: a uniform delay in
// [0, min(max, base·2^(attempt-1))).
type fullJitter struct{ base, max time.Duration }

// BackoffDelay implements retry.BackoffDelayer.
func (j fullJitter) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	base := j.base
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	ceiling := j.max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 30 {
		if d := base << (attempt - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), nil
}
