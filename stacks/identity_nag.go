package stacks

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/agentgate/agentgate/constructs/identity"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// suppressIdentityFindings records why the identity stack's cdk-nag
// findings are accepted. Each names the exact wildcard it accepts.
func suppressIdentityFindings(stack awscdk.Stack, ident identity.Identity, fleet deployconfig.Fleet, bucket awss3.IBucket) {
	// cdk.json enables @aws-cdk/core:enablePartitionLiterals, so a real synth
	// spells the partition ("aws"); an app without that context (the unit
	// tests) spells "<AWS::Partition>". Accept exactly these two spellings.
	suppress := func(scope constructs.IConstruct, id, reason string, appliesTo ...string) {
		var both []string
		for _, a := range appliesTo {
			both = append(both, a, strings.Replace(a, "<AWS::Partition>", partitionOf(fleet.Region), 1))
		}
		suppress(scope, id, reason, both...)
	}
	iot := "arn:<AWS::Partition>:iot:" + fleet.Region + ":" + fleet.Account + ":"
	thing := "<credentials-iot:ThingTypeName>/<credentials-iot:ThingName>/"
	role := ident.Role()
	suppress(role, "AwsSolutions-IAM5",
		"An agent's topic subtrees are open-ended by design: it publishes below <customer>/<thing>/up/ (telemetry, "+
			"status, command results), subscribes below <customer>/<thing>/down/ (commands) and receives below "+
			"<customer>/<thing>/ only through those subscriptions and its exact config topic; the prefix is fixed by "+
			"the session's own thing type and thing name, which IDs cannot escape (no '/'), and the isolation tests "+
			"evaluate this policy against other things and customers and both directions.",
		"Resource::"+iot+"topic/"+thing+"*", "Resource::"+iot+"topic/"+thing+"up/*", "Resource::"+iot+"topicfilter/"+thing+"down/*")
	suppress(role, "AwsSolutions-IAM5",
		"iot:Receive on release announcements: IoT delivers only through subscriptions, and the policy allows "+
			"subscribing to each configured channel by its exact name only; announcements carry no tenant data.",
		"Resource::"+iot+"topic/agentgate/releases/*")
	if bucket != nil {
		reason := "Agents download any build below the release prefix (s3:GetObject and s3:GetObjectVersion only: announcements pin a versionId); the keys are versioned per release and platform."
		suppress(role, "AwsSolutions-IAM5", reason,
			"Resource::"+nagBucketARN(bucket)+"/"+artifacts.ReleasePrefix+"*")
		// A bucket in another stack reached by a weak reference (cdk.json's
		// defaultCrossStackReferences) is spelt as the Fn::GetStackOutput
		// JSON, whose output name carries a hash: match that stack's output
		// for this bucket's ARN, under the release prefix only.
		if other := awscdk.Stack_Of(bucket); other != stack {
			cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
				Id:     jsii.String("AwsSolutions-IAM5"),
				Reason: jsii.String(reason),
				AppliesTo: &[]any{map[string]any{"regex": fmt.Sprintf(`/^Resource::\{"Fn::GetStackOutput":\{"StackName":"%s",.*"OutputName":"[A-Za-z0-9]*%s[A-Za-z0-9]*Arn[A-Za-z0-9]*"\}\}\/%s\*$/`,
					regexp.QuoteMeta(*other.StackName()), regexp.QuoteMeta(*other.GetLogicalId(bucket.Node().DefaultChild().(awscdk.CfnElement))),
					regexp.QuoteMeta(artifacts.ReleasePrefix))}},
			}}, jsii.Bool(true))
		}
	}
	if r := ident.AuditRole(); r != nil {
		suppress(r, "AwsSolutions-IAM4",
			"Device Defender audits read-only across IoT, IAM and Cognito; AWS maintains AWSIoTDeviceDefenderAudit as checks are added.",
			"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSIoTDeviceDefenderAudit")
	}
	if r := ident.LoggingRole(); r != nil {
		suppress(r, "AwsSolutions-IAM5",
			"IoT creates its own log streams inside the AWSIotLogsV2 log group; the role reaches only that group.",
			"Resource::arn:<AWS::Partition>:logs:"+fleet.Region+":"+fleet.Account+":log-group:AWSIotLogsV2:*")
	}
}

// nagBucketARN is how cdk-nag spells a bucket's ARN in its findings: a
// bucket defined in this app is "<LogicalID.Arn>" (even across stacks); an
// imported one keeps its literal name.
func nagBucketARN(bucket awss3.IBucket) string {
	if cfn, ok := bucket.Node().DefaultChild().(awscdk.CfnResource); ok {
		return "<" + *awscdk.Stack_Of(bucket).GetLogicalId(cfn) + ".Arn>"
	}
	if name := bucket.BucketName(); name != nil && !*awscdk.Token_IsUnresolved(name) {
		return "arn:<AWS::Partition>:s3:::" + *name
	}
	panic(fmt.Sprintf("stacks: identity: cannot name artifacts bucket %s for its cdk-nag suppression; pass a bucket defined in this app or imported by name", *bucket.Node().Path()))
}

// partitionOf is the partition of an AWS region name.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
