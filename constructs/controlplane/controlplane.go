// Package controlplane provides ControlPlane: the configuration and release
// publishing of one fleet.
//
//	config bucket ──S3 events──▶ config queue ──▶ configpublisher ──▶ iot-data (retained, QoS 1)
//	                                 ▲   │ DLQ + alarm        │
//	                                 └── fan-out (one message per agent) ◀┘
//	artifacts bucket ──S3 events (releases/**/manifest.json)──▶ release queue ──▶ releasepublisher
//
// Both buckets are versioned, private, SSL-only and log access to an
// access-log bucket. Both queues have a DLQ (maxReceiveCount) with an alarm
// on its depth. The publishers get only what they use: read on their own
// prefix, send/receive on their queue, and iot:Publish + iot:RetainPublish on
// the exact topic patterns they write. Object key layouts are documented in
// docs/control-plane.md and in package artifacts.
package controlplane

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3notifications"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/golambda"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/contract/topics"
)

// Props configures a ControlPlane. Every field is optional.
type Props struct {
	// ReleaseChannels are the channels the release publisher may announce
	// (each on topics.ReleaseTopic(channel)). Default: [topics.DefaultReleaseChannel].
	ReleaseChannels *[]*string
	// IotDataEndpoint is the account's iot-data ATS host
	// ("<prefix>-ats.iot.<region>.amazonaws.com"). Default: the publishers
	// discover it with iot:DescribeEndpoint at cold start (and are granted that).
	IotDataEndpoint *string
	// MaxReceiveCount is how often a message is tried before it moves to its
	// DLQ. Default: 5.
	MaxReceiveCount *float64
	// ConfigMaxConcurrency caps concurrent config publisher instances on the
	// queue (the event source's maximum concurrency, which, unlike reserved
	// concurrency, does not bounce messages into the DLQ). Default: 5.
	ConfigMaxConcurrency *float64
	// ConfigTimeoutSec is the config publisher's timeout; a customer default
	// enqueues all of its agents in one invocation. Default: 300.
	ConfigTimeoutSec *float64
	// ReleaseTimeoutSec is the release publisher's timeout (it may stream
	// artifacts through SHA-256). Default: 300.
	ReleaseTimeoutSec *float64
	// LogRetention of both functions. Default: golambda's (three months).
	LogRetention awslogs.RetentionDays
	// RemovalPolicy of the buckets. Default: awscdk.RemovalPolicy_RETAIN
	// (deleting the stack leaves the buckets and their objects in place).
	RemovalPolicy awscdk.RemovalPolicy
	// ModuleDir is the Go module the Lambdas are built from. Default: golambda's.
	ModuleDir *string
	// AlarmTopic is notified when an alarm (DLQ depth, publisher errors)
	// fires and when it recovers. Default: none, and the alarms notify
	// nobody (a synth warning says so); add actions to DeadLetterAlarms()
	// and ErrorAlarms() yourself.
	AlarmTopic awssns.ITopic
}

// ControlPlane is what New created.
type ControlPlane interface {
	constructs.Construct
	// ConfigBucket is the source of truth of agent configuration.
	ConfigBucket() awss3.IBucket
	// ArtifactsBucket holds agent builds under artifacts.ReleasePrefix.
	ArtifactsBucket() awss3.IBucket
	// AccessLogsBucket receives both buckets' server access logs.
	AccessLogsBucket() awss3.IBucket
	// ReleasePrefix is the artifacts bucket prefix agents may read
	// (artifacts.ReleasePrefix).
	ReleasePrefix() *string
	// GrantReadReleases lets grantee (the agents' role) download builds:
	// s3:GetObject and s3:GetObjectVersion below artifacts.ReleasePrefix only.
	GrantReadReleases(grantee awsiam.IGrantable) awsiam.Grant
	// ConfigQueue carries S3 events and per-agent fan-out messages.
	ConfigQueue() awssqs.IQueue
	// ConfigDeadLetterQueue receives config messages that failed MaxReceiveCount times.
	ConfigDeadLetterQueue() awssqs.IQueue
	// ReleaseQueue carries manifest events.
	ReleaseQueue() awssqs.IQueue
	// ReleaseDeadLetterQueue receives release messages that failed MaxReceiveCount times.
	ReleaseDeadLetterQueue() awssqs.IQueue
	// ConfigPublisher is the config publisher function.
	ConfigPublisher() golambda.GoFunction
	// ReleasePublisher is the release publisher function.
	ReleasePublisher() golambda.GoFunction
	// ReleaseSigningKey is the asymmetric KMS key (ECC_NIST_P256,
	// SIGN_VERIFY) that signs release manifests. Its key policy lets the
	// release publisher's role sign (ECDSA_SHA_256, digests only) and read
	// the public key, and the account administer it and read the public
	// key; nobody else may sign or verify with it.
	ReleaseSigningKey() awskms.IKey
	// DeadLetterAlarms fire when a DLQ holds any message (config, release).
	DeadLetterAlarms() []awscloudwatch.Alarm
	// ErrorAlarms fire when a publisher invocation fails (config, release):
	// the handlers report item failures, so a failed invocation is a crash,
	// a timeout or a bad deployment.
	ErrorAlarms() []awscloudwatch.Alarm
}

type controlPlane struct {
	constructs.Construct
	config, artifacts, accessLogs awss3.Bucket
	cq, cdlq, rq, rdlq            awssqs.Queue
	cfn, rfn                      golambda.GoFunction
	signingKey                    awskms.Key
	alarms, errorAlarms           []awscloudwatch.Alarm
}

func (c *controlPlane) ConfigBucket() awss3.IBucket             { return c.config }
func (c *controlPlane) ArtifactsBucket() awss3.IBucket          { return c.artifacts }
func (c *controlPlane) AccessLogsBucket() awss3.IBucket         { return c.accessLogs }
func (c *controlPlane) ReleasePrefix() *string                  { return jsii.String(artifacts.ReleasePrefix) }
func (c *controlPlane) ConfigQueue() awssqs.IQueue              { return c.cq }
func (c *controlPlane) ConfigDeadLetterQueue() awssqs.IQueue    { return c.cdlq }
func (c *controlPlane) ReleaseQueue() awssqs.IQueue             { return c.rq }
func (c *controlPlane) ReleaseDeadLetterQueue() awssqs.IQueue   { return c.rdlq }
func (c *controlPlane) ConfigPublisher() golambda.GoFunction    { return c.cfn }
func (c *controlPlane) ReleasePublisher() golambda.GoFunction   { return c.rfn }
func (c *controlPlane) ReleaseSigningKey() awskms.IKey          { return c.signingKey }
func (c *controlPlane) DeadLetterAlarms() []awscloudwatch.Alarm { return c.alarms }
func (c *controlPlane) GrantReadReleases(g awsiam.IGrantable) awsiam.Grant {
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      g,
		Actions:      jsii.Strings("s3:GetObject", "s3:GetObjectVersion"),
		ResourceArns: jsii.Strings(*c.artifacts.ArnForObjects(jsii.String(artifacts.ReleasePrefix + "*"))),
	})
}

func num(v *float64, def float64) *float64 {
	if v == nil {
		return jsii.Number(def)
	}
	return v
}

// New creates the control plane. It panics on an invalid release channel
// or a non-positive MaxReceiveCount.
func New(scope constructs.Construct, id *string, props *Props) ControlPlane {
	if props == nil {
		props = &Props{}
	}
	channels := []string{topics.DefaultReleaseChannel}
	if props.ReleaseChannels != nil {
		channels = nil
		for _, ch := range *props.ReleaseChannels {
			if err := topics.ValidateChannel(*ch); err != nil {
				panic(fmt.Sprintf("controlplane: ReleaseChannels: %v", err))
			}
			channels = append(channels, *ch)
		}
		if len(channels) == 0 {
			panic("controlplane: ReleaseChannels is empty; omit it for [\"stable\"]")
		}
	}
	maxReceive := num(props.MaxReceiveCount, 5)
	if *maxReceive < 1 {
		panic(fmt.Sprintf("controlplane: MaxReceiveCount %v must be at least 1", *maxReceive))
	}
	removal := props.RemovalPolicy
	if removal == "" {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	node := constructs.NewConstruct(scope, id)
	c := &controlPlane{Construct: node}
	stack := awscdk.Stack_Of(node)

	c.accessLogs = awss3.NewBucket(node, jsii.String("AccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		RemovalPolicy:     removal,
		LifecycleRules:    &[]*awss3.LifecycleRule{{Expiration: awscdk.Duration_Days(jsii.Number(365))}},
	})
	bucket := func(id, logPrefix string) awss3.Bucket {
		return awss3.NewBucket(node, jsii.String(id), &awss3.BucketProps{
			Versioned:              jsii.Bool(true),
			Encryption:             awss3.BucketEncryption_S3_MANAGED,
			BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
			EnforceSSL:             jsii.Bool(true),
			ObjectOwnership:        awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
			RemovalPolicy:          removal,
			ServerAccessLogsBucket: c.accessLogs,
			ServerAccessLogsPrefix: jsii.String(logPrefix),
		})
	}
	c.config = bucket("ConfigBucket", "config/")
	c.artifacts = bucket("ArtifactsBucket", "artifacts/")

	queue := func(id string, visibilitySec float64) (awssqs.Queue, awssqs.Queue, awscloudwatch.Alarm) {
		dlq := awssqs.NewQueue(node, jsii.String(id+"DeadLetters"), &awssqs.QueueProps{
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL:      jsii.Bool(true),
			RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
		})
		q := awssqs.NewQueue(node, jsii.String(id), &awssqs.QueueProps{
			// S3 can deliver to SSE-SQS queues (not to ones with the AWS managed KMS key).
			Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
			EnforceSSL:        jsii.Bool(true),
			VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(visibilitySec)),
			RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
			DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: maxReceive},
		})
		alarm := awscloudwatch.NewAlarm(node, jsii.String(id+"DeadLettersAlarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String("agentgate: " + id + " messages failed " + fmt.Sprint(*maxReceive) + " times and are in the DLQ; inspect them, fix the cause, redrive"),
			Metric:             dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}),
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		})
		return q, dlq, alarm
	}
	configTimeout := num(props.ConfigTimeoutSec, 300)
	releaseTimeout := num(props.ReleaseTimeoutSec, 300)
	var ca, ra awscloudwatch.Alarm
	// Visibility 6× the function timeout, as Lambda's SQS guidance advises,
	// so a message is not redelivered while an instance still works on it.
	c.cq, c.cdlq, ca = queue("ConfigQueue", 6**configTimeout)
	c.rq, c.rdlq, ra = queue("ReleaseQueue", 6**releaseTimeout)
	c.alarms = []awscloudwatch.Alarm{ca, ra}

	c.config.AddEventNotification(awss3.EventType_OBJECT_CREATED, awss3notifications.NewSqsDestination(c.cq),
		&awss3.NotificationKeyFilter{Prefix: jsii.String(artifacts.ConfigPrefix), Suffix: jsii.String(artifacts.ConfigSuffix)})
	c.config.AddEventNotification(awss3.EventType_OBJECT_REMOVED, awss3notifications.NewSqsDestination(c.cq),
		&awss3.NotificationKeyFilter{Prefix: jsii.String(artifacts.ConfigPrefix), Suffix: jsii.String(artifacts.ConfigSuffix)})
	c.artifacts.AddEventNotification(awss3.EventType_OBJECT_CREATED, awss3notifications.NewSqsDestination(c.rq),
		&awss3.NotificationKeyFilter{Prefix: jsii.String(artifacts.ReleasePrefix), Suffix: jsii.String("/" + artifacts.ManifestName)})

	env := func(extra map[string]*string) *map[string]*string {
		if props.IotDataEndpoint != nil {
			extra[lambdaenv.IotDataEndpoint] = props.IotDataEndpoint
		}
		return &extra
	}
	c.cfn = golambda.New(node, jsii.String("ConfigPublisher"), &golambda.Props{
		Entry:        jsii.String("lambda/configpublisher"),
		ModuleDir:    props.ModuleDir,
		Description:  jsii.String("agentgate: publishes retained agent configuration from the config bucket"),
		TimeoutSec:   configTimeout,
		LogRetention: props.LogRetention,
		Environment: env(map[string]*string{
			lambdaenv.ConfigBucket:   c.config.BucketName(),
			lambdaenv.FanoutQueueURL: c.cq.QueueUrl(),
		}),
	})
	c.rfn = golambda.New(node, jsii.String("ReleasePublisher"), &golambda.Props{
		Entry:        jsii.String("lambda/releasepublisher"),
		ModuleDir:    props.ModuleDir,
		Description:  jsii.String("agentgate: announces agent releases from the artifacts bucket"),
		TimeoutSec:   releaseTimeout,
		LogRetention: props.LogRetention,
		Environment: env(map[string]*string{
			lambdaenv.ArtifactsBucket: c.artifacts.BucketName(),
			lambdaenv.ReleaseChannels: jsii.String(strings.Join(channels, lambdaenv.ListSeparator)),
		}),
	})
	c.signingKey = newSigningKey(node, c.rfn.Role(), removal)
	c.rfn.Function().AddEnvironment(jsii.String(lambdaenv.ReleaseSigningKey), c.signingKey.KeyArn(), nil)
	c.cfn.Function().AddEventSource(awslambdaeventsources.NewSqsEventSource(c.cq, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(10),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          num(props.ConfigMaxConcurrency, 5),
	}))
	c.rfn.Function().AddEventSource(awslambdaeventsources.NewSqsEventSource(c.rq, &awslambdaeventsources.SqsEventSourceProps{
		BatchSize:               jsii.Number(1),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(2),
	}))
	c.cq.GrantSendMessages(c.cfn.Role())
	for _, nf := range []struct {
		name string
		fn   golambda.GoFunction
	}{{"ConfigPublisher", c.cfn}, {"ReleasePublisher", c.rfn}} {
		name, f := nf.name, nf.fn
		c.errorAlarms = append(c.errorAlarms, awscloudwatch.NewAlarm(node, jsii.String(name+"ErrorsAlarm"), &awscloudwatch.AlarmProps{
			AlarmDescription:   jsii.String("agentgate: " + name + " invocations failed (crash, timeout or bad deployment); see its log group"),
			Metric:             f.Function().MetricErrors(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
			Threshold:          jsii.Number(1),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}))
	}

	if props.AlarmTopic != nil {
		action := awscloudwatchactions.NewSnsAction(props.AlarmTopic)
		for _, a := range append(append([]awscloudwatch.Alarm(nil), c.alarms...), c.errorAlarms...) {
			a.AddAlarmAction(action)
			a.AddOkAction(action)
		}
	} else {
		awscdk.Annotations_Of(node).AddWarningV2(jsii.String("agentgate:controlplane:noAlarmTopic"),
			jsii.String("controlplane: no AlarmTopic, so the DLQ and publisher-error alarms notify nobody; set Props.AlarmTopic or add actions to DeadLetterAlarms() and ErrorAlarms()"), nil)
	}

	iotArn := func(resource string) string {
		return *stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String(resource)})
	}
	readPrefix := func(role awsiam.IRole, b awss3.Bucket, prefix string) {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadOwnPrefix"),
			Actions:   jsii.Strings("s3:GetObject", "s3:GetObjectVersion"),
			Resources: jsii.Strings(*b.ArnForObjects(jsii.String(prefix + "*"))),
		}))
		// Without s3:ListBucket a missing key answers 403 instead of 404, and
		// the publishers must tell "no such object" from "denied".
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("TellMissingFromDenied"),
			Actions:   jsii.Strings("s3:ListBucket"),
			Resources: jsii.Strings(*b.BucketArn()),
		}))
	}
	readPrefix(c.cfn.Role(), c.config, artifacts.ConfigPrefix)
	readPrefix(c.rfn.Role(), c.artifacts, artifacts.ReleasePrefix)

	// Retained publishing to every agent's exact config topic
	// <customer>/<thing>/config (IAM '*' spans levels; the code addresses
	// only topics.ConfigTopic).
	c.cfn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("PublishRetainedConfig"),
		Actions:   jsii.Strings("iot:Publish", "iot:RetainPublish"),
		Resources: jsii.Strings(iotArn("topic/*/*/" + topics.ConfigSubject)),
	}))
	c.cfn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("DescribeAgents"),
		Actions:   jsii.Strings("iot:DescribeThing"),
		Resources: jsii.Strings(iotArn("thing/*")),
	}))
	// iot:ListThings supports no resource-level permissions: "*" is the only
	// resource IAM accepts for it. It is read-only.
	c.cfn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ListAgentsOfCustomer"),
		Actions:   jsii.Strings("iot:ListThings"),
		Resources: jsii.Strings("*"),
	}))
	var releaseTopics []string
	for _, ch := range channels {
		releaseTopics = append(releaseTopics, iotArn("topic/"+topics.ReleaseTopic(ch)))
	}
	c.rfn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("PublishRetainedRelease"),
		Actions:   jsii.Strings("iot:Publish", "iot:RetainPublish"),
		Resources: jsii.Strings(releaseTopics...),
	}))
	if props.IotDataEndpoint == nil {
		// iot:DescribeEndpoint supports no resource-level permissions either.
		for _, f := range []golambda.GoFunction{c.cfn, c.rfn} {
			f.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("DiscoverDataEndpoint"),
				Actions:   jsii.Strings("iot:DescribeEndpoint"),
				Resources: jsii.Strings("*"),
			}))
		}
	}
	return c
}

func (c *controlPlane) ErrorAlarms() []awscloudwatch.Alarm { return c.errorAlarms }
