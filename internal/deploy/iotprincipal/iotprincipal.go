// Package iotprincipal is the AWS IoT service principal that agentgate's
// roles trust, held to the deploying account and region (AWS IoT developer
// guide, "Cross-service confused deputy prevention",
// https://docs.aws.amazon.com/iot/latest/developerguide/cross-service-confused-deputy-prevention.html:
// aws:SourceAccount equal to the account and aws:SourceArn like
// arn:aws:iot:<region>:<account>:*), so AWS IoT assumes them only on this
// account's behalf.
package iotprincipal

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// New returns iot.amazonaws.com with the two conditions, for stack's
// account, region and partition.
func New(stack awscdk.Stack) awsiam.IPrincipal {
	return awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), &awsiam.ServicePrincipalOpts{
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": stack.Account()},
			"ArnLike":      map[string]any{"aws:SourceArn": awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:iot:${AWS::Region}:${AWS::AccountId}:*"), nil)},
		},
	})
}
