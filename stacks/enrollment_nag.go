package stacks

import (
	"regexp"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/agentgate/agentgate/constructs/enrollment"
)

// suppressEnrollmentFindings records why the enrollment stack's cdk-nag
// findings are accepted.
func suppressEnrollmentFindings(stack awscdk.Stack, en enrollment.Enrollment) {
	partition := `(<AWS::Partition>|aws[a-z-]*)`
	cdknag.NagSuppressions_AddResourceSuppressions(en.ProvisioningRole(), &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM4"),
		Reason: jsii.String("AWS IoT fleet provisioning assumes this role to create the thing, activate the certificate and attach the agent policy; " +
			"AWSIoTThingsRegistration is the managed policy the AWS IoT developer guide prescribes for it and AWS keeps it in step with the registration API"),
		AppliesTo: &[]any{cdknag.RegexAppliesTo{Regex: jsii.String(`/^Policy::arn:` + partition + `:iam::aws:policy\/service-role\/AWSIoTThingsRegistration$/`)}},
	}}, jsii.Bool(true))
	cdknag.NagSuppressions_AddResourceSuppressions(en.Hook().Role(), &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("the pre-provisioning hook checks (iot:DescribeThing, read-only) that the agent ID an installer asks for is not another agent's thing; " +
			"agent IDs are chosen at enrolment, so any thing of this account and region"),
		AppliesTo: &[]any{cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::arn:` + partition + `:iot:` + regexp.QuoteMeta(*stack.Region()) + ":" + *stack.Account() + `:thing\/\*$/`)}},
	}}, jsii.Bool(true))
}
