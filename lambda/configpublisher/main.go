// Command configpublisher is the configuration publisher Lambda: it consumes
// the configuration queue (S3 event notifications of the configuration
// bucket and per-agent fan-out messages) and publishes each agent's
// effective configuration as a retained QoS 1 message on its exact config
// topic. The logic lives in lambda/internal/configpub.
//
// Environment (names in package lambdaenv): ConfigBucket, FanoutQueueURL
// and the optional IotDataEndpoint, discovered with iot:DescribeEndpoint
// (iot:Data-ATS) at cold start when empty.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/lambda/internal/configpub"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

func main() {
	rt, err := lambdakit.NewRuntime(context.Background())
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	env, err := lambdakit.MustGetenv(lambdaenv.ConfigBucket, lambdaenv.FanoutQueueURL)
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	h := &configpub.Handler{
		S3:       s3.NewFromConfig(rt.AWS),
		IoT:      rt.IoT,
		Data:     rt.Data,
		SQS:      sqs.NewFromConfig(rt.AWS),
		Bucket:   env[0],
		QueueURL: env[1],
		Log:      rt.Log,
		Metrics:  lambdakit.NewMetrics("agentgate/ControlPlane", "configpublisher"),
	}
	lambda.Start(h.Handle)
}
