// Package enrollment provides self-enrolment of agents by AWS IoT fleet
// provisioning by claim:
//
//   - the provisioning template (AWS::IoT::ProvisioningTemplate): thing
//     name = agent ID, thing type = customer ID from the pre-provisioning
//     hook's parameter overrides, the agents' IoT policy attached (body:
//     internal/deploy/agentpolicy.ProvisioningTemplateBody);
//   - the provisioning role IoT assumes to create things and attach
//     certificates (the AWS-managed AWSIoTThingsRegistration policy);
//   - the pre-provisioning hook (Go Lambda lambda/provisionhook,
//     provided.al2023, arm64) that admits an enrolment only with a valid
//     install token, with IoT's invoke permission scoped to this template
//     (source ARN and account: the hook page's confused-deputy advice);
//   - the install-token table (DynamoDB, on-demand, point-in-time recovery,
//     encrypted with an AWS-managed key, retained, TTL attribute);
//   - the claim certificate's IoT policy (agentpolicy.ClaimPolicy).
//
// The vendor creates claim certificates and attaches the claim policy to
// them (one per installer build; see docs/identity.md). Sources: Device
// provisioning MQTT API and Pre-provisioning hooks pages of the AWS IoT
// developer guide; AWS::IoT::ProvisioningTemplate in the CloudFormation
// reference.
package enrollment

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/golambda"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
	"github.com/agentgate/agentgate/internal/deploy/iotprincipal"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

// Defaults applied to unset props.
const (
	// DefaultRatePerMinute is the hook's per-customer enrolment rate.
	DefaultRatePerMinute = provisioning.DefaultEnrolmentsPerMinute
	// HookTimeoutSec is the hook Lambda's timeout: IoT's own limit for the
	// hook (the function stops itself a second earlier, provisionhook.Budget).
	HookTimeoutSec = int(provisioning.HookTimeLimit / time.Second)
)

// Props configures an Enrollment.
type Props struct {
	// AgentPolicyName is the agents' IoT policy (constructs/identity's
	// PolicyName) the template attaches to every enrolled certificate. Required.
	AgentPolicyName *string
	// TemplateName names the provisioning template. Default:
	// provisioning.DefaultTemplateName.
	TemplateName *string
	// RatePerMinute caps admitted enrolments per customer and minute.
	// Default: DefaultRatePerMinute.
	RatePerMinute *float64
	// HookConcurrency reserves (and caps) the hook's concurrency. Default:
	// unreserved: Lambda refuses a reservation that would leave less than
	// 100 unreserved executions
	// (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html),
	// which new accounts with a low concurrency quota cannot spare; the
	// per-customer rate limit bounds the work instead.
	HookConcurrency *float64
	// ModuleDir is the Go module the hook is built from. Default: golambda's.
	ModuleDir *string
	// LogRetention of the hook's logs. Default: golambda's.
	LogRetention awslogs.RetentionDays
}

// Enrollment is the construct.
type Enrollment interface {
	constructs.Construct
	// TemplateName is the provisioning template's name.
	TemplateName() *string
	// TemplateArn is the provisioning template's ARN.
	TemplateArn() *string
	// ClaimPolicyName is the IoT policy to attach to claim certificates.
	ClaimPolicyName() *string
	// TokenTable holds the install tokens.
	TokenTable() awsdynamodb.Table
	// Hook is the pre-provisioning hook.
	Hook() golambda.GoFunction
	// ProvisioningRole is the role IoT assumes to provision.
	ProvisioningRole() awsiam.Role
}

type enrollment struct {
	constructs.Construct
	templateName, templateArn, claimPolicyName *string
	table                                      awsdynamodb.Table
	hook                                       golambda.GoFunction
	role                                       awsiam.Role
}

func (e *enrollment) TemplateName() *string         { return e.templateName }
func (e *enrollment) TemplateArn() *string          { return e.templateArn }
func (e *enrollment) ClaimPolicyName() *string      { return e.claimPolicyName }
func (e *enrollment) TokenTable() awsdynamodb.Table { return e.table }
func (e *enrollment) Hook() golambda.GoFunction     { return e.hook }
func (e *enrollment) ProvisioningRole() awsiam.Role { return e.role }

// New creates an Enrollment. It panics on invalid props.
func New(scope constructs.Construct, id *string, props *Props) Enrollment {
	if props == nil || props.AgentPolicyName == nil || *props.AgentPolicyName == "" {
		panic("enrollment: AgentPolicyName is required (the identity construct's PolicyName)")
	}
	name := provisioning.DefaultTemplateName
	if props.TemplateName != nil {
		name = *props.TemplateName
	}
	if err := provisioning.ValidateTemplateName(name); err != nil {
		panic("enrollment: " + err.Error())
	}
	rate := float64(DefaultRatePerMinute)
	if props.RatePerMinute != nil {
		rate = *props.RatePerMinute
	}
	if rate < 1 || rate != float64(int(rate)) {
		panic(fmt.Sprintf("enrollment: RatePerMinute %v must be a positive integer", rate))
	}
	conc := props.HookConcurrency

	this := constructs.NewConstruct(scope, id)
	stack := awscdk.Stack_Of(this)
	iotARN := "arn:" + *stack.Partition() + ":iot:" + *stack.Region() + ":" + *stack.Account()
	templateArn := iotARN + ":provisioningtemplate/" + name
	e := &enrollment{Construct: this, templateName: jsii.String(name), templateArn: jsii.String(templateArn)}

	e.table = awsdynamodb.NewTable(this, jsii.String("Tokens"), &awsdynamodb.TableProps{
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(tokenstore.KeyAttribute), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		Encryption:                       awsdynamodb.TableEncryption_AWS_MANAGED,
		TimeToLiveAttribute:              jsii.String(tokenstore.TTLAttribute),
		RemovalPolicy:                    awscdk.RemovalPolicy_RETAIN,
	})

	e.hook = golambda.New(this, jsii.String("Hook"), &golambda.Props{
		Entry:       jsii.String("lambda/provisionhook"),
		ModuleDir:   props.ModuleDir,
		Description: jsii.String("agentgate pre-provisioning hook: admits an enrolment only with a valid install token"),
		Environment: &map[string]*string{
			lambdaenv.TokenTable:           e.table.TableName(),
			lambdaenv.ProvisioningTemplate: jsii.String(name),
			lambdaenv.EnrolRatePerMinute:   jsii.String(fmt.Sprint(int(rate))),
		},
		TimeoutSec:          jsii.Number(HookTimeoutSec),
		ReservedConcurrency: conc,
		LogRetention:        props.LogRetention,
	})
	e.hook.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("dynamodb:GetItem", "dynamodb:UpdateItem"),
		Resources: jsii.Strings(*e.table.TableArn()),
	}))
	e.hook.Role().AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("iot:DescribeThing"),
		Resources: jsii.Strings(iotARN + ":thing/*"),
	}))
	e.hook.Function().AddPermission(jsii.String("InvokeByIoT"), &awslambda.Permission{
		Principal:     awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil),
		Action:        jsii.String("lambda:InvokeFunction"),
		SourceArn:     jsii.String(templateArn),
		SourceAccount: stack.Account(),
	})

	e.role = awsiam.NewRole(this, jsii.String("ProvisioningRole"), &awsiam.RoleProps{
		AssumedBy:   iotprincipal.New(stack),
		Description: jsii.String("AWS IoT fleet provisioning of agentgate agents (template " + name + ")"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("service-role/AWSIoTThingsRegistration")),
		},
	})

	tmpl := awsiot.NewCfnProvisioningTemplate(this, jsii.String("Template"), &awsiot.CfnProvisioningTemplateProps{
		TemplateName:        jsii.String(name),
		Description:         jsii.String("agentgate: agents enrol by claim; thing = agent ID, thing type = customer from the install token"),
		Enabled:             jsii.Bool(true),
		ProvisioningRoleArn: e.role.RoleArn(),
		TemplateType:        jsii.String("FLEET_PROVISIONING"),
		TemplateBody:        stack.ToJsonString(agentpolicy.ProvisioningTemplateBody(*props.AgentPolicyName), nil),
		PreProvisioningHook: &awsiot.CfnProvisioningTemplate_ProvisioningHookProperty{
			TargetArn:      e.hook.Function().FunctionArn(),
			PayloadVersion: jsii.String("2020-04-01"),
		},
	})
	// IoT checks its invoke permission when the template is created.
	tmpl.Node().AddDependency(e.hook.Function())

	e.claimPolicyName = jsii.String(name + "-claim")
	awsiot.NewCfnPolicy(this, jsii.String("ClaimPolicy"), &awsiot.CfnPolicyProps{
		PolicyName:     e.claimPolicyName,
		PolicyDocument: agentpolicy.ClaimPolicy(agentpolicy.ClaimParams{IoTARN: iotARN, TemplateName: name}).Map(),
	})
	return e
}
