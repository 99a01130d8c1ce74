package controlplane

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/artifacts"
)

// SigningKeyAdminActions are what the account (and through IAM, its
// administrators) may do with the release signing key: manage it and read
// its public key, but neither sign, verify nor create grants (a grant could
// hand kms:Sign to anyone). PutKeyPolicy stays, so CloudFormation can update
// the policy and the account cannot lock itself out (KMS refuses a key
// policy that would: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html).
var SigningKeyAdminActions = []string{
	"kms:DescribeKey", "kms:GetPublicKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy",
	"kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
	"kms:ListGrants", "kms:RevokeGrant",
	"kms:EnableKey", "kms:DisableKey", "kms:UpdateKeyDescription",
	"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
}

// newSigningKey creates the release signing key: asymmetric, key spec
// ECC_NIST_P256, usage SIGN_VERIFY (asymmetric keys cannot rotate
// automatically: rotate by creating a new key and pinning both, see
// docs/releases.md). Its key policy is the whole of its access:
// https://docs.aws.amazon.com/kms/latest/developerguide/key-policies.html
// (a key policy statement naming a principal of the account grants it
// without an IAM policy).
func newSigningKey(scope constructs.Construct, publisher awsiam.IRole, removal awscdk.RemovalPolicy) awskms.Key {
	account := awsiam.NewAccountRootPrincipal()
	policy := awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("AccountAdministersAndReadsThePublicKey"),
			Principals: &[]awsiam.IPrincipal{account},
			Actions:    jsii.Strings(SigningKeyAdminActions...),
			Resources:  jsii.Strings("*"),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("ReleasePublisherSignsDigests"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(publisher.RoleArn())},
			Actions:    jsii.Strings("kms:Sign"),
			Resources:  jsii.Strings("*"),
			// Condition keys of the KMS developer guide's "AWS KMS condition
			// keys" page (conditions-kms.html); the stored copy read for this
			// change showed only the page's introduction, so the entries for
			// kms:SigningAlgorithm and kms:MessageType are unverified here.
			Conditions: &map[string]any{"StringEquals": map[string]any{
				"kms:SigningAlgorithm": artifacts.SigningAlgorithm,
				"kms:MessageType":      "DIGEST",
			}},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("ReleasePublisherReadsThePublicKey"),
			Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(publisher.RoleArn())},
			Actions:    jsii.Strings("kms:GetPublicKey"),
			Resources:  jsii.Strings("*"),
		}),
	}})
	return awskms.NewKey(scope, jsii.String("ReleaseSigningKey"), &awskms.KeyProps{
		Description:   jsii.String("agentgate: signs agent release manifests (" + artifacts.SigningAlgorithm + "); agents pin its public key"),
		KeySpec:       awskms.KeySpec_ECC_NIST_P256,
		KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
		Policy:        policy,
		RemovalPolicy: removal,
	})
}
