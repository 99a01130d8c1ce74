package lambdakit

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/lambdaenv"
)

// Runtime is what every publisher Lambda sets up once per cold start: a
// JSON logger, the AWS configuration with DefaultRetryPolicy, an IoT client
// and an iot-data client bound to the account's data endpoint.
type Runtime struct {
	Log  *slog.Logger
	AWS  aws.Config
	IoT  *iot.Client
	Data *iotdataplane.Client
}

// NewRuntime loads the configuration from the environment and resolves the
// iot-data endpoint (lambdaenv.IotDataEndpoint, else one DescribeEndpoint call).
func NewRuntime(ctx context.Context, opts ...func(*config.LoadOptions) error) (*Runtime, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	DefaultRetryPolicy.Apply(&cfg)
	iotc := iot.NewFromConfig(cfg)
	endpoint, err := ResolveDataEndpoint(ctx, os.Getenv(lambdaenv.IotDataEndpoint), iotc)
	if err != nil {
		return nil, fmt.Errorf("resolve iot-data endpoint: %w", err)
	}
	return &Runtime{
		Log:  slog.New(slog.NewJSONHandler(os.Stdout, nil)),
		AWS:  cfg,
		IoT:  iotc,
		Data: iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(endpoint) }),
	}, nil
}

// MustGetenv returns the named variables' values, or an error naming every
// one that is unset or empty.
func MustGetenv(names ...string) ([]string, error) {
	vals := make([]string, len(names))
	var missing []string
	for i, n := range names {
		vals[i] = os.Getenv(n)
		if vals[i] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variables not set: %v", missing)
	}
	return vals, nil
}

// ExitColdStart logs a cold-start error as one JSON line on stdout (Lambda
// shows it in the function's init log) and exits with status 1.
func ExitColdStart(err error) {
	slog.New(slog.NewJSONHandler(os.Stdout, nil)).Error("cold start", "error", err.Error())
	os.Exit(1)
}
