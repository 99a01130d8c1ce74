// Command releasepublisher is the release publisher Lambda: it consumes the
// release queue (S3 notifications of releases/<channel>/<version>/manifest.json
// in the artifacts bucket) and announces each release on the channel's
// retained topic. The logic lives in internal/releasepub.
//
// Environment:
//
//	ARTIFACTS_BUCKET   the artifacts bucket
//	RELEASE_CHANNELS   comma-separated channels that may be announced
//	IOT_DATA_ENDPOINT  optional iot-data host; discovered with
//	                   iot:DescribeEndpoint (iot:Data-ATS) at cold start when empty
package main

import (
	"context"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/internal/cpkit"
	"github.com/agentgate/agentgate/internal/releasepub"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("load AWS configuration", "error", err.Error())
		os.Exit(1)
	}
	cpkit.DefaultRetryPolicy.Apply(&cfg)
	endpoint, err := cpkit.ResolveDataEndpoint(ctx, os.Getenv(cpkit.EnvIotDataEndpoint), iot.NewFromConfig(cfg))
	if err != nil {
		log.Error("resolve iot-data endpoint", "error", err.Error())
		os.Exit(1)
	}
	h := &releasepub.Handler{
		S3:       s3.NewFromConfig(cfg),
		Data:     iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		Bucket:   os.Getenv("ARTIFACTS_BUCKET"),
		Channels: strings.Split(os.Getenv("RELEASE_CHANNELS"), ","),
		Log:      log,
		Metrics:  cpkit.NewMetrics("agentgate/ControlPlane", "releasepublisher"),
	}
	if h.Bucket == "" {
		log.Error("ARTIFACTS_BUCKET must be set")
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
