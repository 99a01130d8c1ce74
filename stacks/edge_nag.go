package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/agentgate/agentgate/constructs/edge"
	"github.com/agentgate/agentgate/constructs/endpointdiscovery"
	"github.com/agentgate/agentgate/constructs/relayfleet"
)

// awsCustomResourceSingletonID is the construct ID the CDK gives the one
// Lambda function behind every AwsCustomResource in a stack.
const awsCustomResourceSingletonID = "AWS679f53fac002430cb0da5b7982bd2287"

// suppressEdgeFindings records why the edge stack's cdk-nag findings are accepted.
func suppressEdgeFindings(stack awscdk.Stack, e edge.Edge, relay relayfleet.RelayFleet, lookups []endpointdiscovery.Discovery) {
	for _, lb := range e.LoadBalancers() {
		cdknag.NagSuppressions_AddResourceSuppressions(lb, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-ELB2"),
			Reason: jsii.String("NLB access logs exist only for TLS listeners; this NLB has a TCP 443 listener by design " +
				"(the relay passes agent TLS through untouched), so there is nothing to enable. The relay logs one JSON line " +
				"per connection instead, and VPC flow logs cover the network path."),
		}}, jsii.Bool(true))
	}
	for _, sg := range *e.Connections().SecurityGroups() {
		cdknag.NagSuppressions_AddResourceSuppressions(sg, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-EC23"),
			Reason: jsii.String("The agents' load balancer must accept TCP 443 from anywhere: agents sit on customer sites all over " +
				"the internet. The rule opens port 443 only; the relay behind it admits only allowlisted TLS server names."),
		}}, jsii.Bool(true))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(relay.TaskDefinition(), &[]*cdknag.NagPackSuppression{
		{
			Id: jsii.String("AwsSolutions-ECS2"),
			Reason: jsii.String("The relay's RELAY_* environment is non-secret configuration (routes, timeouts, caps) that " +
				"is part of the reviewed template and must change the task definition so ECS rolls the fleet; there are no secrets."),
		},
		{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("The ECS execution role's ecr:GetAuthorizationToken supports no resource-level permission " +
				"(AWS documents Resource \"*\"); image pulls and log writes are otherwise scoped to the repository and log group."),
			AppliesTo: &[]any{"Resource::*"},
		},
	}, jsii.Bool(true))
	for _, d := range lookups {
		for _, c := range d.Calls() {
			cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{{
				Id: jsii.String("AwsSolutions-IAM5"),
				Reason: jsii.String("iot:DescribeEndpoint supports no resource-level permission (service authorization reference: " +
					"Resource \"*\"); the policy grants that one read-only action only."),
				AppliesTo: &[]any{"Resource::*"},
			}}, jsii.Bool(true))
		}
	}
	cdknag.NagSuppressions_AddResourceSuppressionsByPath(stack, jsii.String("/"+*stack.Node().Id()+"/"+awsCustomResourceSingletonID+"/ServiceRole/Resource"),
		&[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-IAM4"),
			Reason: jsii.String("The CDK's AwsCustomResource provider function (iot:DescribeEndpoint lookups) uses " +
				"AWSLambdaBasicExecutionRole, which only allows writing its own CloudWatch logs."),
			AppliesTo: &[]any{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
		}}, jsii.Bool(true))
}
