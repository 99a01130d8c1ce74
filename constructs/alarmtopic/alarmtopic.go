// Package alarmtopic provides the SNS topic CloudWatch alarms notify: KMS
// encrypted with a customer managed key (CloudWatch cannot publish to a
// topic encrypted with the AWS managed aws/sns key), key rotation on, and a
// topic policy that refuses anything but TLS; optionally e-mail
// subscriptions.
package alarmtopic

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/emailaddr"
)

// Props configures an AlarmTopic.
type Props struct {
	// DisplayName of the topic, the sender name of its email and SMS
	// notifications. Default: none (notifications show the topic's name).
	DisplayName *string
	// EmailAddresses are subscribed to the topic; each must be one plain
	// address such as "ops@example.com" (no display name, at most 254
	// characters), else New panics. SNS sends each address a
	// confirmation message, and nothing is delivered to it until the link
	// in that message is followed. Default: none (subscribe later, e.g.
	// Topic().AddSubscription).
	EmailAddresses *[]*string
}

// AlarmTopic is an encrypted, TLS-only SNS topic CloudWatch alarms can publish to.
type AlarmTopic interface {
	constructs.Construct
	// Topic is the SNS topic.
	Topic() awssns.Topic
	// Key encrypts the topic.
	Key() awskms.Key
}

type alarmTopic struct {
	constructs.Construct
	topic awssns.Topic
	key   awskms.Key
}

// New creates the key and the topic.
func New(scope constructs.Construct, id *string, props *Props) AlarmTopic {
	if props == nil {
		props = &Props{}
	}
	this := constructs.NewConstruct(scope, id)
	key := awskms.NewKey(this, jsii.String("Key"), &awskms.KeyProps{
		EnableKeyRotation: jsii.Bool(true),
		Description:       jsii.String("agentgate alarm topic " + *this.Node().Path()),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	// CloudWatch publishes to the encrypted topic with this key.
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowCloudWatchAlarms"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Stack_Of(this).Account()}},
	}), nil)
	topic := awssns.NewTopic(this, jsii.String("Resource"), &awssns.TopicProps{
		DisplayName: props.DisplayName,
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AllowCloudWatchAlarms"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*topic.TopicArn()),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": awscdk.Stack_Of(this).Account()}},
	}))
	if props.EmailAddresses != nil {
		for i, addr := range *props.EmailAddresses {
			if addr == nil || emailaddr.Check(*addr) != nil {
				panic(fmt.Sprintf("alarmtopic: EmailAddresses[%d] %q is not %s", i, deref(addr), emailaddr.Rule))
			}
			topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(addr, nil))
		}
	}
	return &alarmTopic{Construct: this, topic: topic, key: key}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func (a *alarmTopic) Topic() awssns.Topic { return a.topic }
func (a *alarmTopic) Key() awskms.Key     { return a.key }
