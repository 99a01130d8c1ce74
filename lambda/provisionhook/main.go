// Command provisionhook is the pre-provisioning hook Lambda of agentgate's
// fleet-provisioning template: it admits an agent's enrolment only with a
// valid install token. The logic lives in lambda/internal/provisionhook.
//
// Environment (names in package lambdaenv): TokenTable, ProvisioningTemplate
// and the optional EnrolRatePerMinute (default provisionhook.DefaultRatePerMinute).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/internal/tokenstore"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
	"github.com/agentgate/agentgate/lambda/internal/provisionhook"
)

func main() {
	env, err := lambdakit.MustGetenv(lambdaenv.TokenTable, lambdaenv.ProvisioningTemplate)
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	rate := provisionhook.DefaultRatePerMinute
	if v := os.Getenv(lambdaenv.EnrolRatePerMinute); v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate < 1 {
			lambdakit.ExitColdStart(fmt.Errorf("%s=%q: want a positive integer", lambdaenv.EnrolRatePerMinute, v))
		}
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	h := &provisionhook.Handler{
		Store:         &tokenstore.Store{DB: dynamodb.NewFromConfig(cfg), Table: env[0]},
		IoT:           iot.NewFromConfig(cfg),
		Template:      env[1],
		RatePerMinute: rate,
		Log:           slog.New(slog.NewJSONHandler(os.Stdout, nil)),
		Metrics:       lambdakit.NewMetrics("agentgate/Enrolment", "provisionhook"),
	}
	lambda.Start(h.Handle)
}
