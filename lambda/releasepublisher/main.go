// Command releasepublisher is the release publisher Lambda: it consumes the
// release queue (S3 notifications of releases/<channel>/<version>/manifest.json
// in the artifacts bucket) and announces each release on the channel's
// retained topic, signed with the KMS signing key. The logic lives in lambda/internal/releasepub.
//
// Environment (names in package lambdaenv): ArtifactsBucket, ReleaseSigningKey, ReleaseChannels
// and the optional IotDataEndpoint, discovered with iot:DescribeEndpoint
// (iot:Data-ATS) at cold start when empty.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
	"github.com/agentgate/agentgate/lambda/internal/releasepub"
)

func main() {
	rt, err := lambdakit.NewRuntime(context.Background())
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	env, err := lambdakit.MustGetenv(lambdaenv.ArtifactsBucket, lambdaenv.ReleaseSigningKey)
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	h := &releasepub.Handler{
		S3:         s3.NewFromConfig(rt.AWS),
		Data:       rt.Data,
		Bucket:     env[0],
		Channels:   strings.Split(os.Getenv(lambdaenv.ReleaseChannels), lambdaenv.ListSeparator),
		KMS:        kms.NewFromConfig(rt.AWS),
		SigningKey: env[1],
		Log:        rt.Log,
		Metrics:    lambdakit.NewMetrics("agentgate/ControlPlane", "releasepublisher"),
	}
	lambda.Start(h.Handle)
}
