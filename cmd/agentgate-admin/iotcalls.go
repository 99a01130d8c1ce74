package main

// How the customer and agent subjects call AWS IoT: real aws-sdk-go-v2
// clients (iot, iotdataplane) with the operator's credentials, every call
// through a client-side rate limiter set to the API's documented rate, and
// throttled calls retried with full-jitter backoff (contract/backoff).
//
// The rates: AWS IoT Core's per-API "API TPS" quotas are account-wide and
// shared with everything else calling the API in the account and region,
// so the limiter only keeps this tool from being the one that exceeds
// them; the retries absorb the rest. Figures with a quota code are the
// Service Quotas default values of the "AWS IoT Core" service (quota codes
// as listed there; the throttling table of
// https://docs.aws.amazon.com/general/latest/gr/iot-core.html is the page
// that documents them). The page itself could not be read for this change:
// every figure is unverified against it. APIs without a figure run at
// unverifiedTPS.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/internal/tokenstore"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/agentgate/agentgate/contract/backoff"
)

// quota is one API's client-side rate and where the figure comes from.
type quota struct {
	tps  float64
	code string // Service Quotas code; "" = no documented figure found (unverified)
}

// unverifiedTPS is the rate of APIs whose quota was not found: the lowest
// figure of the documented registry APIs (ListThings, ListThingPrincipals,
// ListThingTypes: 10).
const unverifiedTPS = 10

// apiQuotas holds the rate of every API this tool calls. Tests replace it.
var apiQuotas = map[string]quota{
	"ListThings":           {10, "L-57AAC135"},
	"DescribeThing":        {350, "L-0EF0F5EE"},
	"ListThingPrincipals":  {10, "L-FC3EF4D9"},
	"DetachThingPrincipal": {100, "L-B5EE4A16"},
	"DeleteThing":          {100, "L-889800F7"},
	"CreateThingType":      {15, "L-8650816F"},
	"DescribeThingType":    {100, "L-DDCF8E97"},
	"DeprecateThingType":   {15, "L-7F1DBFAE"},
	"DeleteThingType":      {15, "L-CFBDB489"},
	"ListThingTypes":       {10, "L-F9EBF527"},
	// No figure found (unverified): DescribeCertificate, UpdateCertificate,
	// DeleteCertificate, ListAttachedPolicies, DetachPolicy, DescribeEndpoint,
	// and the iot-data DeleteConnection and Publish.
}

// limiter spaces the calls of each API at least 1/rate apart (a token
// bucket with a burst of one), across every goroutine of the process.
type limiter struct {
	mu     sync.Mutex
	next   map[string]time.Time
	quotas map[string]quota
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
}

func newLimiter(q map[string]quota) *limiter {
	return &limiter{next: map[string]time.Time{}, quotas: q, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait blocks until api may be called again.
func (l *limiter) wait(ctx context.Context, api string) error {
	tps := float64(unverifiedTPS)
	if q, ok := l.quotas[api]; ok && q.tps > 0 {
		tps = q.tps
	}
	l.mu.Lock()
	now := l.now()
	at := l.next[api]
	if at.Before(now) {
		at = now
	}
	l.next[api] = at.Add(time.Duration(float64(time.Second) / tps))
	l.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return l.sleep(ctx, d)
	}
	return ctx.Err()
}

// Retry policy of throttled and failed-on-the-server calls.
var (
	retryBase        = 200 * time.Millisecond
	retryMax         = 20 * time.Second
	retryMaxAttempts = 8
)

// retryable reports whether err is throttling (ThrottlingException, HTTP
// 429; IoT documents ThrottlingException with status 400) or a 5xx.
func retryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ThrottlingException", "TooManyRequestsException", "ServiceUnavailableException", "InternalFailureException", "InternalServerException":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s == http.StatusTooManyRequests || s >= 500
	}
	return false
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// iotAdmin is the customer and agent subjects' view of AWS.
type iotAdmin struct {
	env     *environment
	cfg     aws.Config
	iot     *iot.Client
	lim     *limiter
	retries atomic.Int64

	dataOnce sync.Once
	data     *iotdataplane.Client
	dataErr  error

	// tokens is the token table (agent revoke and delete).
	tokens *tokenstore.Store
}

// newIoTAdmin builds the IoT client from the operator's configuration.
// AWS_ENDPOINT_URL_IOT and AWS_ENDPOINT_URL_IOT_DATA_PLANE override the
// endpoints (tests, local stand-ins). The SDK's own retries are off: call
// retries, after the limiter.
func newIoTAdmin(ctx context.Context, env *environment) (*iotAdmin, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	a := &iotAdmin{env: env, cfg: cfg, lim: newLimiter(apiQuotas)}
	a.iot = iot.NewFromConfig(cfg, func(o *iot.Options) {
		o.RetryMaxAttempts = 1
		if u, ok := env.getenv("AWS_ENDPOINT_URL_IOT"); ok && u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
	return a, nil
}

// dataPlane returns the iot-data client, its endpoint being the account's
// iot:Data-ATS endpoint (DescribeEndpoint) unless overridden.
func (a *iotAdmin) dataPlane(ctx context.Context) (*iotdataplane.Client, error) {
	a.dataOnce.Do(func() {
		u, _ := a.env.getenv("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
		if u == "" {
			out, err := call(ctx, a, "DescribeEndpoint", func(ctx context.Context) (*iot.DescribeEndpointOutput, error) {
				return a.iot.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
			})
			if err != nil {
				a.dataErr = fmt.Errorf("discover the iot-data endpoint (iot:DescribeEndpoint iot:Data-ATS): %w", err)
				return
			}
			u = "https://" + aws.ToString(out.EndpointAddress)
		}
		a.data = iotdataplane.NewFromConfig(a.cfg, func(o *iotdataplane.Options) {
			o.RetryMaxAttempts = 1
			o.BaseEndpoint = aws.String(u)
		})
	})
	return a.data, a.dataErr
}

// dynamo returns a DynamoDB client for the presence table
// (AWS_ENDPOINT_URL_DYNAMODB overrides its endpoint).
func (a *iotAdmin) dynamo() *dynamodb.Client {
	return dynamodb.NewFromConfig(a.cfg, func(o *dynamodb.Options) {
		if u, ok := a.env.getenv("AWS_ENDPOINT_URL_DYNAMODB"); ok && u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	})
}

// call runs f as api: after the limiter, retried with full jitter while
// it is throttled or fails on the server, at most retryMaxAttempts times.
func call[T any](ctx context.Context, a *iotAdmin, api string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 0; ; attempt++ {
		if err := a.lim.wait(ctx, api); err != nil {
			return zero, err
		}
		out, err := f(ctx)
		if err == nil {
			return out, nil
		}
		if !retryable(err) || attempt+1 >= retryMaxAttempts {
			return zero, fmt.Errorf("%s: %w", api, err)
		}
		a.retries.Add(1)
		if err := sleepCtx(ctx, backoff.FullJitter(retryBase, retryMax, attempt)); err != nil {
			return zero, err
		}
	}
}

// certificateID returns the certificate ID of a principal ARN
// (arn:…:cert/<id>), or "" for another kind of principal.
func certificateID(arn string) string {
	i := strings.LastIndex(arn, ":cert/")
	if i < 0 {
		return ""
	}
	return arn[i+len(":cert/"):]
}
