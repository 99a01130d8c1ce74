package stacks

import (
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressControlPlaneFindings records why the control-plane stack's
// remaining cdk-nag findings are accepted. Each is scoped to one construct
// path and to the exact finding (AppliesTo).
func suppressControlPlaneFindings(stack awscdk.Stack) {
	base := "/" + *stack.StackName()
	// The partition renders as <AWS::Partition> or, with the
	// @aws-cdk/core:enablePartitionLiterals flag of cdk.json, as a literal.
	iot := func(resource string) cdknag.RegexAppliesTo {
		return cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::arn:(<AWS::Partition>|aws[a-z-]*):iot:` +
			regexp.QuoteMeta(*stack.Region()) + ":" + *stack.Account() + ":" + strings.ReplaceAll(regexp.QuoteMeta(resource), "/", `\/`) + "$/")}
	}
	suppress := func(path, rule, reason string, appliesTo ...any) {
		s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
		if len(appliesTo) > 0 {
			s.AppliesTo = &appliesTo
		}
		cdknag.NagSuppressions_AddResourceSuppressionsByPath(stack, jsii.String(base+path), &[]*cdknag.NagPackSuppression{s}, jsii.Bool(false))
	}
	// The CDK's singleton that applies S3 bucket notifications (one per stack).
	suppress("/BucketNotificationsHandler050a0587b7544547bf325f094a3db834/Role/Resource", "AwsSolutions-IAM4",
		"CDK-owned custom resource that writes the buckets' notification configuration at deploy time; AWSLambdaBasicExecutionRole only lets it write its own logs",
		cdknag.RegexAppliesTo{Regex: jsii.String(`/^Policy::arn:(<AWS::Partition>|aws[a-z-]*):iam::aws:policy\/service-role\/AWSLambdaBasicExecutionRole$/`)})

	cfg := "/ControlPlane/ConfigPublisher/ServiceRole/DefaultPolicy/Resource"
	suppress(cfg, "AwsSolutions-IAM5",
		"iot:ListThings (enumerate a customer's agents by thing type) and iot:DescribeEndpoint (find the iot-data endpoint) support no resource-level permissions: IAM accepts only \"*\"; both are read-only",
		"Resource::*")
	suppress(cfg, "AwsSolutions-IAM5",
		"the publisher reads every configuration object: s3:GetObject/GetObjectVersion on the configs/ prefix of its own bucket only",
		cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<ControlPlaneConfigBucket[0-9A-F]{8}\.Arn>\/configs\/\*$/`)})
	suppress(cfg, "AwsSolutions-IAM5",
		"iot:DescribeThing on any thing of this account and region: the publisher checks that an agent's thing type is the customer named in the object key",
		iot("thing/*"))
	suppress(cfg, "AwsSolutions-IAM5",
		"iot:Publish and iot:RetainPublish on the agents' exact config topics <customer>/<thing>/config, the narrowest pattern IAM can express for every agent of every customer",
		iot("topic/*/*/config"))

	rel := "/ControlPlane/ReleasePublisher/ServiceRole/DefaultPolicy/Resource"
	suppress(rel, "AwsSolutions-IAM5",
		"iot:DescribeEndpoint (find the iot-data endpoint) supports no resource-level permissions: IAM accepts only \"*\"; read-only",
		"Resource::*")
	suppress(rel, "AwsSolutions-IAM5",
		"the release publisher reads manifests and hashes builds: s3:GetObject/GetObjectVersion on the releases/ prefix of the artifacts bucket only",
		cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<ControlPlaneArtifactsBucket[0-9A-F]{8}\.Arn>\/releases\/\*$/`)})

	suppress("/DataPlane/TelemetryDeadLetters/Resource", "AwsSolutions-SQS3",
		"this queue is the dead-letter queue of the telemetry IoT rule (its error action), not of another queue, so no queue names it as its DLQ; an alarm fires on any message in it")
	suppress("/DataPlane/PresenceHandler/ServiceRole/DefaultPolicy/Resource", "AwsSolutions-IAM5",
		"iot:DescribeThing on any thing of this account and region (read-only): the presence handler learns a connecting agent's customer from its thing type",
		iot("thing/*"))
}
