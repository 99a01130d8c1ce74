package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

// iotStandins runs the IoT and iot-data stand-ins behind the real SDK
// clients, with the rate limits raised and retry delays shortened so tests
// do not wait on wall time.
type iotStandins struct {
	aws *awsstandin.AWS
	// tokens is the DynamoDB stand-in holding the token table "tokens",
	// which agent revoke and delete use by default.
	tokens *awsstandin.DynamoDB
}

func startIoT(t *testing.T) *iotStandins {
	t.Helper()
	s := &iotStandins{aws: awsstandin.Start(), tokens: awsstandin.StartDynamoDB()}
	t.Cleanup(s.aws.Close)
	t.Cleanup(s.tokens.Close)
	s.tokens.CreateTable("tokens", tokenstore.KeyAttribute)
	prevCfg, prevQ, prevBase, prevMax, prevNow := awsConfig, apiQuotas, retryBase, retryMax, customerNow
	awsConfig = func(context.Context) (aws.Config, error) { return awsstandin.Config(), nil }
	fast := map[string]quota{}
	for _, api := range []string{"ListThings", "DescribeThing", "ListThingPrincipals", "DetachThingPrincipal", "DeleteThing",
		"CreateThingType", "DescribeThingType", "DeprecateThingType", "DeleteThingType", "ListThingTypes", "DescribeCertificate",
		"UpdateCertificate", "DeleteCertificate", "ListAttachedPolicies", "DetachPolicy", "DescribeEndpoint", "DeleteConnection", "Publish"} {
		fast[api] = quota{tps: 1e6}
	}
	apiQuotas, retryBase, retryMax = fast, time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() {
		awsConfig, apiQuotas, retryBase, retryMax, customerNow = prevCfg, prevQ, prevBase, prevMax, prevNow
		s.aws.SetIoTClock(nil)
	})
	return s
}

func (s *iotStandins) run(t *testing.T, extra map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"AWS_ENDPOINT_URL_IOT": s.aws.IoTURL, "AWS_ENDPOINT_URL_IOT_DATA_PLANE": s.aws.DataURL,
		"AWS_ENDPOINT_URL_DYNAMODB": s.tokens.URL, TableEnv: "tokens"}
	for k, v := range extra {
		vars[k] = v
	}
	env := &environment{stdout: &out, stderr: &errb, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	code := run(t.Context(), args, env)
	return code, out.String(), errb.String()
}

// The limiter spaces each API's calls 1/rate apart, per API, and an
// undocumented API runs at unverifiedTPS. The clock is a fake that only
// sleeping advances.
func TestLimiterSpacesCallsPerAPI(t *testing.T) {
	now := time.Unix(0, 0)
	var slept time.Duration
	l := newLimiter(map[string]quota{"ListThings": {tps: 5}, "DeleteThing": {tps: 100}})
	l.now = func() time.Time { return now }
	l.sleep = func(_ context.Context, d time.Duration) error { slept += d; now = now.Add(d); return nil }
	ctx := context.Background()
	for i := 0; i < 11; i++ {
		if err := l.wait(ctx, "ListThings"); err != nil {
			t.Fatal(err)
		}
	}
	if slept != 2*time.Second { // 10 gaps of 200 ms
		t.Errorf("11 ListThings at 5/s slept %v, want 2s", slept)
	}
	slept = 0
	if err := l.wait(ctx, "DeleteThing"); err != nil || slept != 0 {
		t.Errorf("first DeleteThing waited %v (%v): APIs must not share a bucket", slept, err)
	}
	slept = 0
	for i := 0; i < 3; i++ {
		_ = l.wait(ctx, "UpdateCertificate")
	}
	if want := 2 * time.Second / unverifiedTPS; slept != want {
		t.Errorf("undocumented API slept %v, want %v", slept, want)
	}
	now = now.Add(time.Hour) // idle time does not build up a burst
	slept = 0
	_ = l.wait(ctx, "ListThings")
	_ = l.wait(ctx, "ListThings")
	if slept != 200*time.Millisecond {
		t.Errorf("after idling, two calls slept %v, want 200ms", slept)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	l.sleep = sleepCtx
	l.now = time.Now
	l.next["ListThings"] = time.Now().Add(time.Hour)
	if err := l.wait(cctx, "ListThings"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
}

func TestRetryable(t *testing.T) {
	resp := func(status int) *smithyhttp.ResponseError {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("x")}
	}
	cases := []struct {
		err  error
		want bool
	}{
		{&smithy.GenericAPIError{Code: "ThrottlingException"}, true}, // IoT answers it with 400
		{&smithy.GenericAPIError{Code: "ServiceUnavailableException"}, true},
		{&smithy.GenericAPIError{Code: "ResourceNotFoundException"}, false},
		{&smithy.GenericAPIError{Code: "DeleteConflictException"}, false},
		{resp(429), true},
		{resp(503), true},
		{resp(400), false},
		{errors.New("dial tcp: refused"), false},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v", c.err, got)
		}
	}
	if certificateID("arn:aws:iot:eu-west-1:1:cert/abc") != "abc" || certificateID("arn:aws:iot:eu-west-1:1:thing/abc") != "" {
		t.Error("certificateID")
	}
}

type awsFault = awsstandin.Fault
