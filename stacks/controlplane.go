package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/alarmtopic"
	"github.com/agentgate/agentgate/constructs/controlplane"
	"github.com/agentgate/agentgate/constructs/dataplane"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// ControlPlaneStackProps configures a ControlPlaneStack.
type ControlPlaneStackProps struct {
	awscdk.StackProps
	// Fleet is the fleet whose agents this control plane serves.
	Fleet deployconfig.Fleet
	// ReleaseChannels are the release channels that may be announced.
	ReleaseChannels []string
	// AlarmEmails are subscribed to the stack's alarm topic (alarms.email).
	AlarmEmails []string
}

// ControlPlaneStack holds one fleet's configuration and release publishing:
// buckets (stateful, retained), queues, alarms and the two Go Lambdas.
type ControlPlaneStack struct {
	awscdk.Stack
	// ControlPlane exposes the buckets (ArtifactsBucket, ReleasePrefix and
	// GrantReadReleases for the agents' role), queues, alarms and functions.
	ControlPlane controlplane.ControlPlane
	// DataPlane is the telemetry rule and stream (docs/data-plane.md).
	DataPlane dataplane.DataPlane
	// Alarms is the topic the control plane's alarms notify.
	Alarms alarmtopic.AlarmTopic
}

// NewControlPlaneStack creates the control-plane stack of one fleet.
func NewControlPlaneStack(scope constructs.Construct, id string, props *ControlPlaneStackProps) *ControlPlaneStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	var channels *[]*string
	if len(props.ReleaseChannels) > 0 {
		channels = jsii.Strings(props.ReleaseChannels...)
	}
	topic := alarmtopic.New(stack, jsii.String("AlarmTopic"), &alarmtopic.Props{
		DisplayName:    jsii.String("agentgate " + props.Fleet.Name + " control-plane alarms"),
		EmailAddresses: emails(props.AlarmEmails),
	})
	cp := controlplane.New(stack, jsii.String("ControlPlane"), &controlplane.Props{ReleaseChannels: channels, AlarmTopic: topic.Topic()})
	dp := dataplane.New(stack, jsii.String("DataPlane"), &dataplane.Props{AlarmTopic: topic.Topic()})
	// What an operator needs for agentgate-admin release: the bucket to
	// upload to and the key whose public key agents pin (docs/releases.md).
	awscdk.NewCfnOutput(stack, jsii.String(ArtifactsBucketOutput), &awscdk.CfnOutputProps{Value: cp.ArtifactsBucket().BucketName()})
	awscdk.NewCfnOutput(stack, jsii.String(ReleaseSigningKeyOutput), &awscdk.CfnOutputProps{Value: cp.ReleaseSigningKey().KeyArn()})
	suppressControlPlaneFindings(stack)
	return &ControlPlaneStack{Stack: stack, ControlPlane: cp, DataPlane: dp, Alarms: topic}
}

// Output names of the control-plane stack.
const (
	ArtifactsBucketOutput   = "ArtifactsBucketName"
	ReleaseSigningKeyOutput = "ReleaseSigningKeyArn"
)

// emails converts alarms.email for alarmtopic.Props; nil when empty.
func emails(list []string) *[]*string {
	if len(list) == 0 {
		return nil
	}
	return jsii.Strings(list...)
}
