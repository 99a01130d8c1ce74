package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/enrollment"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// EnrollmentStackProps configures an EnrollmentStack.
type EnrollmentStackProps struct {
	awscdk.StackProps
	// Fleet places the stack.
	Fleet deployconfig.Fleet
	// Identity is the fleet's identity stack: its agent IoT policy is what
	// enrolled certificates get, so it is deployed first.
	Identity *IdentityStack
}

// EnrollmentStack lets agents enrol themselves by fleet provisioning by
// claim: the provisioning template, its pre-provisioning hook, the
// install-token table and the claim policy. It is a stack of its own, not
// part of the identity stack: the token table is state (retained), the hook
// is code that changes more often than the policies agents depend on, and
// the identity stack's tests pin exactly one IoT policy and one role
// trusted by the credentials provider.
type EnrollmentStack struct {
	awscdk.Stack
	// Enrollment is the construct.
	Enrollment enrollment.Enrollment
}

// NewEnrollmentStack creates the enrollment stack of one fleet.
func NewEnrollmentStack(scope constructs.Construct, id string, props *EnrollmentStackProps) *EnrollmentStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	if sp.Description == nil {
		sp.Description = jsii.String("agentgate " + props.Fleet.Name + ": agent self-enrolment (provisioning template, pre-provisioning hook, install tokens, claim policy)")
	}
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	stack.AddStackDependency(props.Identity.Stack, jsii.String("enrolled certificates get the identity stack's agent IoT policy"))
	en := enrollment.New(stack, jsii.String("Enrollment"), &enrollment.Props{AgentPolicyName: props.Identity.Identity.PolicyName()})
	for name, value := range map[string]*string{
		"TemplateName":    en.TemplateName(),
		"ClaimPolicyName": en.ClaimPolicyName(),
		"TokenTableName":  en.TokenTable().TableName(),
	} {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: value})
	}
	suppressEnrollmentFindings(stack, en)
	return &EnrollmentStack{Stack: stack, Enrollment: en}
}
