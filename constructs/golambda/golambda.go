// Package golambda provides GoFunction: a Go Lambda on provided.al2023 /
// arm64 whose binary is built by a local `go build` with reproducible flags
// (no Docker needed; Docker is only a fallback when no Go toolchain is on
// PATH). The asset hash is the hash of the built binary
// (AssetHashType OUTPUT), and the binary depends only on the sources, go.sum
// and the toolchain version, so the same commit synthesized in two
// directories or on two machines gives the same hash and `cdk diff` shows no
// noise. Logs are JSON, in a log group with a retention, written by a role
// that may write only to that group.
package golambda

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/internal/deploy/modulesource"
)

// Props configures a GoFunction.
type Props struct {
	// Entry is the main package's directory relative to ModuleDir, e.g.
	// "lambda/configpublisher". Required.
	Entry *string
	// ModuleDir is the Go module root (the directory holding go.mod) that
	// Entry is relative to; it may be read-only (the module cache). Set it
	// to build a function of your own module. Default: agentgate's module,
	// located through the Go module system of the app being synthesized
	// (its own module, a replace target or the module cache; see
	// internal/deploy/modulesource), never from the working directory or
	// source paths, so agentgate's Lambdas build from any app, -trimpath
	// builds included.
	ModuleDir *string
	// Description is the function's description. Default: none.
	Description *string
	// Environment is the function's environment. Default: none.
	Environment *map[string]*string
	// MemorySizeMiB is the function's memory. Default: 256.
	MemorySizeMiB *float64
	// TimeoutSec is the function's timeout. Default: 30.
	TimeoutSec *float64
	// ReservedConcurrency reserves (and caps) concurrent executions.
	// Default: unreserved (the account's unreserved pool, no cap).
	ReservedConcurrency *float64
	// LogRetention is how long the function's logs are kept.
	// Default: awslogs.RetentionDays_THREE_MONTHS.
	LogRetention awslogs.RetentionDays
	// ApplicationLogLevel filters the program's JSON log lines.
	// Default: awslambda.ApplicationLogLevel_INFO.
	ApplicationLogLevel awslambda.ApplicationLogLevel
}

// GoFunction is a Go Lambda function with its role and log group.
type GoFunction interface {
	constructs.Construct
	// Function is the Lambda function.
	Function() awslambda.Function
	// Role is the function's execution role; it may only write its own logs
	// until you grant it more.
	Role() awsiam.IRole
	// LogGroup receives the function's JSON logs.
	LogGroup() awslogs.ILogGroup
}

type goFunction struct {
	constructs.Construct
	fn   awslambda.Function
	role awsiam.Role
	logs awslogs.LogGroup
}

func (g *goFunction) Function() awslambda.Function { return g.fn }
func (g *goFunction) Role() awsiam.IRole           { return g.role }
func (g *goFunction) LogGroup() awslogs.ILogGroup  { return g.logs }

// Defaults documented on Props.
const (
	DefaultMemorySizeMiB = 256
	DefaultTimeoutSec    = 30
	// DockerImage is the fallback build image when no Go toolchain is on PATH.
	DockerImage = "public.ecr.aws/docker/library/golang:1.26"
)

// BuildFlags are the `go build` flags that make the binary depend only on
// the sources: no paths (-trimpath), no VCS stamp, no build ID, no symbol
// table, and the lambda.norpc tag (provided.al2023 needs no RPC server).
var BuildFlags = []string{"-trimpath", "-buildvcs=false", "-tags", "lambda.norpc", "-ldflags", "-s -w -buildid="}

// BuildEnv is the environment of the build: linux/arm64 without cgo, module
// graph read-only (go.sum decides the dependencies) and no workspace (a
// go.work around the caller's app must not swap the function's
// dependencies), on top of base with any of those variables removed.
func BuildEnv(base []string) []string {
	fixed := []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOARM64=v8.0", "GOWORK=off"}
	var out []string
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOARM64", "GOEXPERIMENT", "GOWORK":
			continue
		}
		out = append(out, kv)
	}
	return append(out, fixed...)
}

// BuildArgs returns the `go` arguments that build package ./entry into outDir/bootstrap.
func BuildArgs(outDir, entry string) []string {
	args := append([]string{"build"}, BuildFlags...)
	return append(args, "-o", filepath.Join(outDir, "bootstrap"), "./"+filepath.ToSlash(filepath.Clean(entry)))
}

// localBuild implements awscdk.ILocalBundling with the Go toolchain on PATH.
type localBuild struct {
	moduleDir, entry string
}

// TryBundle builds the binary into outputDir. It returns false (CDK then
// uses Docker) only when no Go toolchain is found; a failed build prints the
// compiler's output and leaves outputDir empty, which fails the synth.
func (b *localBuild) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return jsii.Bool(false)
	}
	cmd := exec.Command(goBin, BuildArgs(*outputDir, b.entry)...)
	cmd.Dir = b.moduleDir
	cmd.Env = BuildEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "golambda: go build ./%s in %s failed: %v\n", b.entry, b.moduleDir, err)
	}
	return jsii.Bool(true)
}

// New creates a GoFunction. It panics when Entry is missing or is not a
// directory of ModuleDir.
func New(scope constructs.Construct, id *string, props *Props) GoFunction {
	if props == nil || props.Entry == nil || *props.Entry == "" {
		panic("golambda: Entry is required, e.g. jsii.String(\"lambda/configpublisher\")")
	}
	entry := filepath.Clean(*props.Entry)
	if filepath.IsAbs(entry) || strings.HasPrefix(entry, "..") {
		panic(fmt.Sprintf("golambda: Entry %q must be a path inside the module, relative to ModuleDir", *props.Entry))
	}
	var moduleDir string
	if props.ModuleDir != nil {
		moduleDir = *props.ModuleDir
	} else {
		d, err := modulesource.Dir()
		if err != nil {
			panic(fmt.Sprintf("golambda: %v; or set ModuleDir", err))
		}
		moduleDir = d
	}
	if st, err := os.Stat(filepath.Join(moduleDir, entry)); err != nil || !st.IsDir() {
		panic(fmt.Sprintf("golambda: Entry %q is not a package directory in module %s", entry, moduleDir))
	}

	c := constructs.NewConstruct(scope, id)
	retention := props.LogRetention
	if retention == "" {
		retention = awslogs.RetentionDays_THREE_MONTHS
	}
	logs := awslogs.NewLogGroup(c, jsii.String("LogGroup"), &awslogs.LogGroupProps{Retention: retention})
	role := awsiam.NewRole(c, jsii.String("ServiceRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("execution role of " + entry + ": writes its own log group; callers grant the rest"),
	})
	logs.GrantWrite(role)

	memory := props.MemorySizeMiB
	if memory == nil {
		memory = jsii.Number(DefaultMemorySizeMiB)
	}
	timeout := props.TimeoutSec
	if timeout == nil {
		timeout = jsii.Number(DefaultTimeoutSec)
	}
	level := props.ApplicationLogLevel
	if level == "" {
		level = awslambda.ApplicationLogLevel_INFO
	}
	dockerCmd := "go " + strings.Join(quoteAll(BuildArgs("/asset-output", entry)), " ")
	code := awslambda.Code_FromAsset(jsii.String(moduleDir), &awss3assets.AssetOptions{
		AssetHashType: awscdk.AssetHashType_OUTPUT,
		Bundling: &awscdk.BundlingOptions{
			Local:       &localBuild{moduleDir: moduleDir, entry: entry},
			Image:       awscdk.DockerImage_FromRegistry(jsii.String(DockerImage)),
			Command:     jsii.Strings("bash", "-c", dockerCmd),
			Environment: &map[string]*string{"GOOS": jsii.String("linux"), "GOARCH": jsii.String("arm64"), "CGO_ENABLED": jsii.String("0"), "GOFLAGS": jsii.String("-mod=readonly"), "GOCACHE": jsii.String("/tmp/gocache"), "GOPATH": jsii.String("/tmp/gopath")},
			OutputType:  awscdk.BundlingOutput_NOT_ARCHIVED,
		},
	})
	fn := awslambda.NewFunction(c, jsii.String("Resource"), &awslambda.FunctionProps{
		Runtime:                      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:                 awslambda.Architecture_ARM_64(),
		Handler:                      jsii.String("bootstrap"),
		Code:                         code,
		Role:                         role,
		Description:                  props.Description,
		Environment:                  props.Environment,
		MemorySize:                   memory,
		Timeout:                      awscdk.Duration_Seconds(timeout),
		ReservedConcurrentExecutions: props.ReservedConcurrency,
		LoggingFormat:                awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2:        level,
		SystemLogLevelV2:             awslambda.SystemLogLevel_WARN,
		LogGroup:                     logs,
	})
	return &goFunction{Construct: c, fn: fn, role: role, logs: logs}
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}
