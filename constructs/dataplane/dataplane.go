// Package dataplane provides DataPlane: where agents' telemetry goes.
//
//	agents ── <customer>/<thing>/up/telemetry (or Basic Ingest $aws/rules/agentgate_telemetry/…)
//	   └─▶ IoT rule agentgate_telemetry (contract/telemetry.SQL: + customer, thing, receivedAt)
//	          ├─▶ Kinesis data stream (on-demand, SSE with aws/kinesis), partition key <customer>/<thing>
//	          └─ error action ─▶ SQS dead-letter queue ─▶ alarm (any message)
//	IoT lifecycle events ($aws/events/presence/+/+) ─▶ rule agentgate_presence ─┐
//	agents ── <customer>/<thing>/up/status ─▶ rule agentgate_presence_status ──┴▶ presence Lambda ─▶ presence table
//	          (both rules' error action: the same dead-letter queue)
//
// Kinesis Data Streams, not SQS or Firehose, because the backend needs each
// agent's records in order and replayable: one partition key per agent keeps
// its records on one shard in order, several consumers can read the stream
// independently, and it holds them for its retention period (24 hours by
// default) for a consumer that fell behind. docs/data-plane.md has the
// throughput and cost comparison.
package dataplane

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/golambda"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/contract/presence"
	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/internal/deploy/iotprincipal"
)

// Props configures a DataPlane. Every field is optional.
type Props struct {
	// RetentionHours is how long the stream keeps records. Default: 24
	// (Kinesis' default and minimum).
	RetentionHours *float64
	// AlarmTopic is notified when the dead-letter alarm fires and recovers.
	// Default: none (a synth warning says so).
	AlarmTopic awssns.ITopic
	// RemovalPolicy of the stream and the presence table. Default: RETAIN.
	RemovalPolicy awscdk.RemovalPolicy
	// ModuleDir is the Go module the presence Lambda is built from. Default: golambda's.
	ModuleDir *string
	// LogRetention of the presence Lambda. Default: golambda's.
	LogRetention awslogs.RetentionDays
}

// PresenceRuleName is the lifecycle-event rule's name (no '-' allowed).
const PresenceRuleName = "agentgate_presence"

// PresenceSQL selects every connect and disconnect lifecycle event
// (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html)
// except those of enrolling installers, whose claim-certificate client IDs
// (provisioning.ClaimClientIDPrefix) are not agents: startswith() is in the
// rules engine's function list
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html).
const PresenceSQL = "SELECT * FROM '$aws/events/presence/+/+' WHERE NOT startswith(clientId, '" + provisioning.ClaimClientIDPrefix + "')"

// DataPlane is what New created.
type DataPlane interface {
	constructs.Construct
	// TelemetryStream is the stream the backend reads telemetry from.
	TelemetryStream() awskinesis.IStream
	// TelemetryRule is the IoT topic rule (named telemetry.RuleName).
	TelemetryRule() awsiot.CfnTopicRule
	// DeadLetterQueue receives what the rule could not put on the stream.
	DeadLetterQueue() awssqs.IQueue
	// DeadLetterAlarm fires when the dead-letter queue holds any message.
	DeadLetterAlarm() awscloudwatch.Alarm
	// PresenceTable holds one row per agent (customer, thing) and each
	// customer's connected count (lambda/internal/presence).
	PresenceTable() awsdynamodb.ITable
	// PresenceHandler is the presence Lambda.
	PresenceHandler() golambda.GoFunction
	// PresenceRule is the lifecycle-event rule (named PresenceRuleName).
	PresenceRule() awsiot.CfnTopicRule
	// PresenceStatusRule is the rule that hands agents' status messages
	// (their client version) to the presence Lambda (named status.RuleName).
	PresenceStatusRule() awsiot.CfnTopicRule
}

type dataPlane struct {
	constructs.Construct
	stream awskinesis.Stream
	rule   awsiot.CfnTopicRule
	dlq    awssqs.Queue
	alarm  awscloudwatch.Alarm
	table  awsdynamodb.Table
	fn     golambda.GoFunction
	prule  awsiot.CfnTopicRule
	srule  awsiot.CfnTopicRule
}

func (d *dataPlane) PresenceTable() awsdynamodb.ITable       { return d.table }
func (d *dataPlane) PresenceHandler() golambda.GoFunction    { return d.fn }
func (d *dataPlane) PresenceRule() awsiot.CfnTopicRule       { return d.prule }
func (d *dataPlane) PresenceStatusRule() awsiot.CfnTopicRule { return d.srule }

func (d *dataPlane) TelemetryStream() awskinesis.IStream  { return d.stream }
func (d *dataPlane) TelemetryRule() awsiot.CfnTopicRule   { return d.rule }
func (d *dataPlane) DeadLetterQueue() awssqs.IQueue       { return d.dlq }
func (d *dataPlane) DeadLetterAlarm() awscloudwatch.Alarm { return d.alarm }

// New creates the data plane. The rule's name is fixed (telemetry.RuleName,
// which the agents' Basic Ingest topic and policy name), so one stack per
// account and region may hold it.
func New(scope constructs.Construct, id *string, props *Props) DataPlane {
	if props == nil {
		props = &Props{}
	}
	removal := props.RemovalPolicy
	if removal == "" {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	node := constructs.NewConstruct(scope, id)
	d := &dataPlane{Construct: node}

	retention := 24.0
	if props.RetentionHours != nil {
		retention = *props.RetentionHours
	}
	d.stream = awskinesis.NewStream(node, jsii.String("TelemetryStream"), &awskinesis.StreamProps{
		StreamMode: awskinesis.StreamMode_ON_DEMAND,
		// The AWS managed key (aws/kinesis): no key policy to keep in step
		// with producers and consumers, and no per-request KMS charge.
		Encryption:      awskinesis.StreamEncryption_MANAGED,
		RetentionPeriod: awscdk.Duration_Hours(jsii.Number(retention)),
		RemovalPolicy:   removal,
	})
	d.dlq = awssqs.NewQueue(node, jsii.String("TelemetryDeadLetters"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})

	// The rule's role: put records on this stream, send to this queue.
	role := awsiam.NewRole(node, jsii.String("RuleRole"), &awsiam.RoleProps{
		AssumedBy:   iotprincipal.New(awscdk.Stack_Of(node)),
		Description: jsii.String("agentgate telemetry rule: put records on the telemetry stream, dead letters on its queue"),
	})
	d.stream.GrantWrite(role)
	d.dlq.GrantSendMessages(role)

	d.rule = awsiot.NewCfnTopicRule(node, jsii.String("TelemetryRule"), &awsiot.CfnTopicRuleProps{
		RuleName: jsii.String(telemetry.RuleName),
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description:      jsii.String("agentgate: agents' telemetry to the telemetry stream, one partition key per agent"),
			Sql:              jsii.String(telemetry.SQL),
			AwsIotSqlVersion: jsii.String(telemetry.SQLVersion),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				Kinesis: &awsiot.CfnTopicRule_KinesisActionProperty{
					StreamName:   d.stream.StreamName(),
					PartitionKey: jsii.String(telemetry.PartitionKey),
					RoleArn:      role.RoleArn(),
				},
			}},
			ErrorAction: &awsiot.CfnTopicRule_ActionProperty{
				Sqs: &awsiot.CfnTopicRule_SqsActionProperty{
					QueueUrl:  d.dlq.QueueUrl(),
					RoleArn:   role.RoleArn(),
					UseBase64: jsii.Bool(false),
				},
			},
		},
	})
	// The role's policy must exist before IoT validates the actions.
	d.rule.Node().AddDependency(role)

	d.presence(node, props, removal, role)

	d.alarm = awscloudwatch.NewAlarm(node, jsii.String("TelemetryDeadLettersAlarm"), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String("agentgate: the telemetry rule could not put messages on the stream (throttled, key or role problem); they are in the telemetry dead-letter queue"),
		Metric:             d.dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")}),
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	if props.AlarmTopic != nil {
		action := awscloudwatchactions.NewSnsAction(props.AlarmTopic)
		d.alarm.AddAlarmAction(action)
		d.alarm.AddOkAction(action)
	} else {
		awscdk.Annotations_Of(node).AddWarningV2(jsii.String("agentgate:dataplane:noAlarmTopic"),
			jsii.String("dataplane: no AlarmTopic, so the telemetry dead-letter alarm notifies nobody"), nil)
	}
	return d
}

// presence adds the presence table, Lambda and rule; the rule's error
// action shares the telemetry rule's role and dead-letter queue.
func (d *dataPlane) presence(node constructs.Construct, props *Props, removal awscdk.RemovalPolicy, role awsiam.Role) {
	d.table = awsdynamodb.NewTable(node, jsii.String("PresenceTable"), &awsdynamodb.TableProps{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(presence.KeyCustomer), Type: awsdynamodb.AttributeType_STRING},
		SortKey:                          &awsdynamodb.Attribute{Name: jsii.String(presence.KeyThing), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		Encryption:                       awsdynamodb.TableEncryption_AWS_MANAGED,
		RemovalPolicy:                    removal,
	})
	d.fn = golambda.New(node, jsii.String("PresenceHandler"), &golambda.Props{
		Entry:        jsii.String("lambda/presence"),
		ModuleDir:    props.ModuleDir,
		Description:  jsii.String("agentgate: keeps agents' presence from IoT lifecycle events"),
		LogRetention: props.LogRetention,
		Environment:  &map[string]*string{lambdaenv.PresenceTable: d.table.TableName()},
	})
	// Only what the handler calls: UpdateItem on this table (also what a
	// TransactWriteItems of Update actions needs: "Permissions for Put,
	// Update, Delete, and Get actions are governed by the permissions used
	// for the underlying PutItem, UpdateItem, DeleteItem, and GetItem
	// operations",
	// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html),
	// GetItem to read a customer's connected count for the metric, and
	// DescribeThing to learn an agent's customer (its thing type).
	d.fn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:GetItem", "dynamodb:UpdateItem"),
		Resources: jsii.Strings(*d.table.TableArn()),
	}))
	stack := awscdk.Stack_Of(node)
	d.fn.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeThing"),
		Resources: jsii.Strings(*stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("iot"), Resource: jsii.String("thing"), ResourceName: jsii.String("*")})),
	}))
	d.prule = d.presenceLambdaRule(node, stack, role, "PresenceRule", PresenceRuleName, PresenceSQL,
		"agentgate: connect/disconnect lifecycle events to the presence Lambda")

	// Agents' status messages (their client version, which lifecycle
	// events do not carry) to the same Lambda. Not a DynamoDB action: that
	// writes the whole item without a condition, so a late status would
	// overwrite a newer one and the connected state with it.
	d.srule = d.presenceLambdaRule(node, stack, role, "PresenceStatusRule", status.RuleName, status.SQL,
		"agentgate: agents' status messages (client version) to the presence Lambda")
}

// presenceLambdaRule adds the topic rule id (named ruleName, selecting with
// sql) whose action invokes the presence Lambda and whose error action sends
// to the dead-letter queue through role, and the permission "InvokeBy"+id
// that lets IoT invoke the Lambda for that rule only.
func (d *dataPlane) presenceLambdaRule(node constructs.Construct, stack awscdk.Stack, role awsiam.Role, id, ruleName, sql, description string) awsiot.CfnTopicRule {
	rule := awsiot.NewCfnTopicRule(node, jsii.String(id), &awsiot.CfnTopicRuleProps{
		RuleName: jsii.String(ruleName),
		TopicRulePayload: &awsiot.CfnTopicRule_TopicRulePayloadProperty{
			Description:      jsii.String(description),
			Sql:              jsii.String(sql),
			AwsIotSqlVersion: jsii.String(telemetry.SQLVersion),
			RuleDisabled:     jsii.Bool(false),
			Actions: &[]interface{}{&awsiot.CfnTopicRule_ActionProperty{
				Lambda: &awsiot.CfnTopicRule_LambdaActionProperty{FunctionArn: d.fn.Function().FunctionArn()},
			}},
			ErrorAction: &awsiot.CfnTopicRule_ActionProperty{
				Sqs: &awsiot.CfnTopicRule_SqsActionProperty{QueueUrl: d.dlq.QueueUrl(), RoleArn: role.RoleArn(), UseBase64: jsii.Bool(false)},
			},
		},
	})
	rule.Node().AddDependency(role)
	d.fn.Function().AddPermission(jsii.String("InvokeBy"+id), &awslambda.Permission{
		Principal:     awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil),
		SourceArn:     rule.AttrArn(),
		SourceAccount: stack.Account(),
	})
	return rule
}
