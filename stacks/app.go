// Package stacks wires agentgate's constructs into deployable stacks: per
// fleet (one account/region) a network stack, a stateful static-addresses
// stack, and the stacks later issues fill (edge + relay fleet, identity,
// control plane); plus one global DNS stack. Business rules live in the
// constructs and in internal/deployconfig; this package only wires them and
// holds the cdk-nag suppressions with their reasons.
package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/internal/deployconfig"
)

// System is every stack of one deployment.
type System struct {
	// Fleets holds each fleet's stacks, in configuration order.
	Fleets []*Fleet
	// wire: global stack fields
}

// Fleet is the stacks of one fleet.
type Fleet struct {
	// Config is the fleet's validated configuration.
	Config deployconfig.Fleet
	// Network is the VPC and its endpoints.
	Network *NetworkStack
	// Addresses holds the static Elastic IPs (stateful, termination-protected).
	Addresses *AddressesStack
	// Identity admits agents to IoT Core: certificate policy, role alias and role, audit, logging.
	Identity *IdentityStack
	// wire: fleet stack fields (one line each, added by the issue that builds the stack)
}

// ZoneContextKey is the context key the CDK's availability-zones lookup
// reads for account/region.
func ZoneContextKey(account, region string) string {
	return "availability-zones:account=" + account + ":region=" + region
}

// Build adds every stack of cfg to app. Call it on a fresh app: it first
// pins each fleet's configured zones in the app context so synth performs no
// AWS lookup, which the constructs library allows only before children exist.
func Build(app awscdk.App, cfg *deployconfig.Config) *System {
	for _, f := range cfg.Fleets {
		app.Node().SetContext(jsii.String(ZoneContextKey(f.Account, f.Region)), f.AvailabilityZones)
	}
	awscdk.Tags_Of(app).Add(jsii.String("agentgate:project"), jsii.String(cfg.Project), nil)

	sys := &System{}
	for _, f := range cfg.Fleets {
		env := &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}
		fl := &Fleet{Config: f}
		fl.Network = NewNetworkStack(app, cfg.StackName(f.Name, "network"), &NetworkStackProps{
			StackProps: awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": VPC, flow logs and IoT/S3 endpoints")},
			Fleet:      f,
		})
		fl.Addresses = NewAddressesStack(app, cfg.StackName(f.Name, "addresses"), &AddressesStackProps{
			StackProps: awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": the static Elastic IPs customers allowlist (retained)")},
			Fleet:      f,
			Project:    cfg.Project,
		})
		fl.Identity = NewIdentityStack(app, cfg.StackName(f.Name, "identity"), &IdentityStackProps{
			StackProps: awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": IoT identity (agent policy, role alias and role), Device Defender audit, IoT logging")},
			Fleet:      f,
			Identity:   cfg.Identity,
			Topics:     cfg.Topics,
			// wire: ArtifactsBucket: the control-plane stack's artifacts bucket (awss3.IBucket) once it exists; until then agents get no S3 access.
		})
		// wire: per-fleet stacks (each issue adds its stack here, in dependency order)
		sys.Fleets = append(sys.Fleets, fl)
	}
	// wire: global stacks (DNS)
	return sys
}
