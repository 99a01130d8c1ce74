// Command agentgate-cdk is the CDK app: it loads the deployment
// configuration and wires every stack. Run it through the CDK CLI
// (`cdk synth`, `cdk deploy`), which cdk.json points here.
//
// The configuration file defaults to agentgate.example.json; choose another
// with `cdk synth -c config=path/to/file.json`.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/stacks"
)

// DefaultConfig is used when no `config` context value is given.
const DefaultConfig = "agentgate.example.json"

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	path := DefaultConfig
	if v, ok := app.Node().TryGetContext(jsii.String("config")).(string); ok && v != "" {
		path = v
	}
	cfg, err := deployconfig.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentgate:", err)
		os.Exit(1)
	}
	stacks.Build(app, cfg)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	app.Synth(nil)
}
