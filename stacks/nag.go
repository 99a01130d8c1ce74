package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppressNetworkFindings records why the network stack's findings are accepted.
func suppressNetworkFindings(stack awscdk.Stack) {
	_ = cdknag.NagSuppressions_AddStackSuppressions
	_ = jsii.String
	_ = stack
}
