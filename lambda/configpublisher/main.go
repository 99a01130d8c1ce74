// Command configpublisher is the configuration publisher Lambda: it consumes
// the configuration queue (S3 event notifications of the configuration
// bucket and per-agent fan-out messages) and publishes each agent's
// effective configuration as a retained QoS 1 message on its exact config
// topic. The logic lives in internal/configpub.
//
// Environment:
//
//	CONFIG_BUCKET      the configuration bucket
//	FANOUT_QUEUE_URL   the queue fan-out messages are sent to (the one consumed)
//	IOT_DATA_ENDPOINT  optional iot-data host; discovered with
//	                   iot:DescribeEndpoint (iot:Data-ATS) at cold start when empty
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/agentgate/agentgate/internal/configpub"
	"github.com/agentgate/agentgate/internal/cpkit"
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
	iotc := iot.NewFromConfig(cfg)
	endpoint, err := cpkit.ResolveDataEndpoint(ctx, os.Getenv(cpkit.EnvIotDataEndpoint), iotc)
	if err != nil {
		log.Error("resolve iot-data endpoint", "error", err.Error())
		os.Exit(1)
	}
	h := &configpub.Handler{
		S3:       s3.NewFromConfig(cfg),
		IoT:      iotc,
		Data:     iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		SQS:      sqs.NewFromConfig(cfg),
		Bucket:   os.Getenv("CONFIG_BUCKET"),
		QueueURL: os.Getenv("FANOUT_QUEUE_URL"),
		Log:      log,
		Metrics:  cpkit.NewMetrics("agentgate/ControlPlane", "configpublisher"),
	}
	if h.Bucket == "" || h.QueueURL == "" {
		log.Error("CONFIG_BUCKET and FANOUT_QUEUE_URL must be set")
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
