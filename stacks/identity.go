package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/identity"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// IdentityStackProps configures an IdentityStack.
type IdentityStackProps struct {
	awscdk.StackProps
	// Fleet places the stack (its account/region own the IoT resources).
	Fleet deployconfig.Fleet
	// Identity names the role alias, sets the credential lifetime and says
	// whether the stack owns the region's IoT logging and Device Defender
	// audit configuration.
	Identity deployconfig.Identity
	// Topics lists the release channels agents may read.
	Topics deployconfig.Topics
	// ArtifactsBucket holds agent releases; nil until the control-plane
	// stack provides it, and then agents get no S3 access.
	ArtifactsBucket awss3.IBucket
}

// IdentityStack admits one fleet's agents to AWS IoT Core: the certificate
// policy, the role alias and its role, and, unless the configuration
// leaves them to someone else (identity.manageIotLogging,
// identity.manageDeviceDefenderAudit), the account's Device Defender audit
// and IoT logging (singletons: one identity stack per account/region).
type IdentityStack struct {
	awscdk.Stack
	// Identity is the construct with the alias, role and policy names.
	Identity identity.Identity
}

// NewIdentityStack creates the identity stack of one fleet.
func NewIdentityStack(scope constructs.Construct, id string, props *IdentityStackProps) *IdentityStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	if sp.Description == nil {
		sp.Description = jsii.String(identityDescription(props.Fleet.Name, props.Identity))
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	ident := identity.New(stack, jsii.String("Identity"), &identity.Props{
		RoleAliasName:         jsii.String(props.Identity.RoleAliasName),
		CredentialDurationSec: jsii.Number(float64(props.Identity.CredentialDurationSec)),
		ReleaseChannels:       jsii.Strings(props.Topics.ReleaseChannels...),
		ArtifactsBucket:       props.ArtifactsBucket,
		ManageLogging:         jsii.Bool(props.Identity.ManagesIotLogging()),
		ManageAccountAudit:    jsii.Bool(props.Identity.ManagesDeviceDefenderAudit()),
	})
	for name, value := range map[string]*string{
		"RoleAliasName": ident.RoleAliasName(),
		"RoleAliasArn":  ident.RoleAliasArn(),
		"PolicyName":    ident.PolicyName(),
	} {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: value})
	}
	suppressIdentityFindings(stack, ident, props.Fleet, props.ArtifactsBucket)
	return &IdentityStack{Stack: stack, Identity: ident}
}

// identityDescription says what a fleet's identity stack holds.
func identityDescription(fleet string, id deployconfig.Identity) string {
	d := "agentgate " + fleet + ": IoT identity (agent policy, role alias and role)"
	if id.ManagesDeviceDefenderAudit() {
		d += ", Device Defender audit"
	}
	if id.ManagesIotLogging() {
		d += ", IoT logging"
	}
	return d
}
