// Package stacks wires agentgate's constructs into deployable stacks: per
// fleet (one account/region) a network stack, a stateful static-addresses
// stack, the edge (load balancers and relay fleet), identity and control
// plane stacks; plus the global DNS and DNS-alarm stacks. Business rules
// live in the constructs and in internal/deploy/deployconfig; this package
// only wires them and holds the cdk-nag suppressions with their reasons.
package stacks

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/internal/deploy/capacity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// System is every stack of one deployment.
type System struct {
	// Fleets holds each fleet's stacks, in configuration order.
	Fleets []*Fleet
	// DNS is the global weighted record set with its health checks.
	DNS *DNSStack
	// DNSAlarms holds the health-check alarms (always us-east-1).
	DNSAlarms *DNSAlarmsStack
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
	// Edge is the load balancers and the relay service.
	Edge *EdgeStack
	// Identity admits agents to IoT Core: certificate policy, role alias and role, audit, logging.
	Identity *IdentityStack
	// wire: fleet stack fields
	// Enrollment lets agents enrol themselves (fleet provisioning by claim).
	Enrollment *EnrollmentStack
	// ControlPlane publishes agent configuration and releases.
	ControlPlane *ControlPlaneStack
}

// otherFleets is every fleet but the named one, in configuration order.
func otherFleets(all []deployconfig.Fleet, name string) []deployconfig.Fleet {
	var out []deployconfig.Fleet
	for _, f := range all {
		if f.Name != name {
			out = append(out, f)
		}
	}
	return out
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
		// The control plane comes first: the network, edge and identity
		// stacks take its artifacts bucket.
		fl.ControlPlane = NewControlPlaneStack(app, cfg.StackName(f.Name, "control"), &ControlPlaneStackProps{
			StackProps:      awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": configuration and release publishing (buckets retained)")},
			Fleet:           f,
			ReleaseChannels: cfg.Topics.ReleaseChannels,
			AlarmEmails:     cfg.Alarms.Email,
		})
		fl.Network = NewNetworkStack(app, cfg.StackName(f.Name, "network"), &NetworkStackProps{
			StackProps:      awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": VPC, flow logs and IoT/S3 endpoints")},
			Fleet:           f,
			ArtifactsBucket: fl.ControlPlane.ControlPlane.ArtifactsBucket(),
			ReleasePrefix:   fl.ControlPlane.ControlPlane.ReleasePrefix(),
		})
		fl.Addresses = NewAddressesStack(app, cfg.StackName(f.Name, "addresses"), &AddressesStackProps{
			StackProps: awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": the static Elastic IPs customers allowlist (retained)")},
			Fleet:      f,
			Project:    cfg.Project,
		})
		fl.Edge = NewEdgeStack(app, cfg.StackName(f.Name, "edge"), &EdgeStackProps{
			StackProps:       awscdk.StackProps{Env: env, Description: jsii.String("agentgate " + f.Name + ": NLBs on the static IPs and the relay fleet")},
			Fleet:            f,
			MQTTKeepAliveSec: cfg.Topics.MQTTKeepAliveSec,
			HealthSNI:        cfg.DNS.HealthSNI,
			Network:          fl.Network.Network,
			StaticIPs:        fl.Addresses.StaticIPs,
			ArtifactsBucket:  fl.ControlPlane.ControlPlane.ArtifactsBucket(),
			OtherFleets:      otherFleets(cfg.Fleets, f.Name),
			AlarmEmails:      cfg.Alarms.Email,
			Rollout:          rollout(cfg, f),
		})
		fl.Identity = NewIdentityStack(app, cfg.StackName(f.Name, "identity"), &IdentityStackProps{
			StackProps:      awscdk.StackProps{Env: env},
			Fleet:           f,
			Identity:        cfg.Identity,
			Topics:          cfg.Topics,
			ArtifactsBucket: fl.ControlPlane.ControlPlane.ArtifactsBucket(),
		})
		fl.Enrollment = NewEnrollmentStack(app, cfg.StackName(f.Name, "enrollment"), &EnrollmentStackProps{
			StackProps: awscdk.StackProps{Env: env},
			Fleet:      f,
			Identity:   fl.Identity,
		})
		sys.Fleets = append(sys.Fleets, fl)
	}
	// wire: global stacks (DNS)
	dnsEnv := &awscdk.Environment{Account: jsii.String(cfg.DNS.Account), Region: jsii.String(cfg.DNS.Region)}
	sys.DNS = NewDNSStack(app, cfg.StackName("", "dns"), &DNSStackProps{
		StackProps: awscdk.StackProps{Env: dnsEnv, Description: jsii.String("agentgate: weighted, health-checked DNS records of every static IP")},
		DNS:        cfg.DNS,
		Fleets:     sys.Fleets,
	})
	sys.DNSAlarms = NewDNSAlarmsStack(app, cfg.StackName("", "dns-alarms"), &DNSAlarmsStackProps{
		StackProps: awscdk.StackProps{
			Env:         &awscdk.Environment{Account: jsii.String(cfg.DNS.Account), Region: jsii.String("us-east-1")},
			Description: jsii.String("agentgate: alarms on the Route 53 health checks (us-east-1, where their metrics are)"),
		},
		DNS:         sys.DNS,
		AlarmEmails: cfg.Alarms.Email,
	})
	return sys
}

// rollout is fleet f's derived deployment settings; Validate has refused
// every configuration without one.
func rollout(cfg *deployconfig.Config, f deployconfig.Fleet) capacity.Deploy {
	d, err := cfg.Rollout(f)
	if err != nil {
		panic(fmt.Sprintf("stacks: fleet %s: %v (deployconfig.Validate refuses this configuration)", f.Name, err))
	}
	return d
}
