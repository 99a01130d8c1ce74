// Command agentgate-preflight tells, before the first deploy, what the AWS
// accounts of a deployment configuration will refuse: Elastic IP quota
// (static addresses and NAT gateways), zones without the IoT VPC endpoint
// services, missing or old CDK bootstrap (us-east-1 included), IoT account
// singletons owned elsewhere, a hosted zone that does not match, and IoT
// endpoints that cannot be described.
//
// It reads the same configuration file as synth and calls only read-only
// AWS APIs with the default SDK credential chain (environment, shared
// config and SSO profiles, container and instance roles). It prints one
// line per check: ok, warn, FAIL (with the fix) or UNKNOWN (the check could
// not run; the line names the call and why).
//
// Exit status: 0 when every check is ok or warn; 1 when a check failed or
// the configuration or flags are invalid; 2 when nothing failed but some
// check could not run. Usually run as `make preflight [CONFIG=path]`;
// see docs/preflight.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/deploy/preflight"
)

// DefaultConfig is the configuration file used when -config is not given
// (the same default as synth).
const DefaultConfig = "agentgate.example.json"

// maxAttempts is how often the SDK tries each call (the standard retryer
// backs off with jitter between attempts, on throttling included).
const maxAttempts = 5

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agentgate-preflight", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", DefaultConfig, "deployment configuration `file` (the one synth reads)")
	cdkJSON := fs.String("cdk-json", "cdk.json", "`file` whose context may set "+preflight.QualifierContextKey)
	callTimeout := fs.Duration("call-timeout", preflight.DefaultCallTimeout, "bound on each AWS call, retries included")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return preflight.ExitOK
		}
		return preflight.ExitFail
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agentgate-preflight: unexpected argument %q; use -config FILE\n", fs.Arg(0))
		return preflight.ExitFail
	}
	cdkJSONSet := false
	fs.Visit(func(f *flag.Flag) { cdkJSONSet = cdkJSONSet || f.Name == "cdk-json" })

	cfg, err := deployconfig.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-preflight: %v\n", err)
		return preflight.ExitFail
	}
	qualifier, err := preflight.QualifierFromCDKJSON(*cdkJSON, !cdkJSONSet)
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-preflight: bootstrap qualifier: %v\n", err)
		return preflight.ExitFail
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = maxAttempts })
	}))
	if err != nil {
		fmt.Fprintf(stderr, "agentgate-preflight: loading the AWS configuration (profile, region, credentials): %v\n", err)
		return preflight.ExitUnknown
	}

	fmt.Fprintf(stderr, "agentgate preflight: %s, %d fleet(s); read-only AWS calls\n", *configPath, len(cfg.Fleets))
	start := time.Now()
	rep := preflight.Run(ctx, preflight.Options{Config: cfg, AWS: awsCfg, Qualifier: qualifier, CallTimeout: *callTimeout})
	if err := rep.Write(stdout); err != nil {
		fmt.Fprintf(stderr, "agentgate-preflight: %v\n", err)
		return preflight.ExitFail
	}
	c := rep.Counts()
	code := rep.ExitCode()
	fmt.Fprintf(stderr, "agentgate preflight: %d ok, %d warn, %d FAIL, %d UNKNOWN in %s; exit %d\n",
		c[preflight.OK], c[preflight.Warn], c[preflight.Fail], c[preflight.Unknown], time.Since(start).Round(time.Millisecond), code)
	return code
}
