// Package identity provides everything AWS IoT Core needs to admit
// agentgate agents with one set of policies for every customer:
//
//   - the IoT policy attached to each agent certificate (certificate
//     agents: connect as their own thing, their own topics, their release
//     channels read-only, and iot:AssumeRoleWithCertificate on the alias);
//   - the IAM role behind the role alias, whose policy confines SigV4 /
//     WebSocket agents the same way through the credentials provider's
//     variables, plus read access to agent releases in the artifacts bucket;
//   - the role alias with its credential lifetime;
//   - optionally (on by default) the account-level Device Defender audit
//     configuration, a scheduled audit, and IoT logging with its role.
//
// A thing's customer is its thing type (thing type name == customer ID;
// thing name == device ID), so onboarding a customer is a CreateThingType
// call at run time, not a redeploy; this construct creates no thing types.
// The policy documents come from internal/deploy/agentpolicy, which the tests
// evaluate too. See docs/identity.md for the reasoning and the limits.
package identity

import (
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/rolealias"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
)

// Defaults applied to unset props.
const (
	DefaultRoleAliasName         = "agentgate-agent"
	DefaultCredentialDurationSec = 3600
	DefaultAuditFrequency        = "DAILY"
	DefaultLogLevel              = "WARN"
	// DefaultCertAgeThresholdDays is when DEVICE_CERTIFICATE_AGE_CHECK
	// starts flagging a certificate (the service's own default).
	DefaultCertAgeThresholdDays = 365
)

// Credential lifetime limits of CreateRoleAlias (credentialDurationSeconds),
// as rolealias defines them.
const (
	MinCredentialDurationSec = rolealias.MinCredentialDurationSec
	MaxCredentialDurationSec = rolealias.MaxCredentialDurationSec
)

// Props configures an Identity.
type Props struct {
	// RoleAliasName is the IoT role alias agents exchange their certificate
	// at (GET /role-aliases/<name>/credentials). 1..128 of [A-Za-z0-9_=,@-].
	// Default: "agentgate-agent".
	RoleAliasName *string
	// CredentialDurationSec is the lifetime of the credentials the alias
	// hands out, 900..43200. The role's maximum session duration is raised
	// to match when above one hour. Default: 3600.
	CredentialDurationSec *float64
	// PolicyName is the name of the IoT policy the control plane attaches to
	// each agent certificate. 1..128 of [A-Za-z0-9_+=,.@-]. Default: the role
	// alias name.
	PolicyName *string
	// ReleaseChannels are the release channels agents may read
	// (agentgate/releases/<channel>, exact subscriptions only).
	// Default: ["stable"].
	ReleaseChannels *[]*string
	// ArtifactsBucket holds agent builds. When set, the role may
	// s3:GetObject and s3:GetObjectVersion below ReleasePrefix and nothing
	// else in it.
	// Default: none, and the role has no S3 access.
	ArtifactsBucket awss3.IBucket
	// ReleasePrefix is the key prefix of agent builds in ArtifactsBucket;
	// it must end with "/" and contain no wildcard. Default: "releases/".
	ReleasePrefix *string
	// ManageAccountAudit creates the account's Device Defender audit
	// configuration and a scheduled audit. Both are singletons per
	// account and region: exactly one stack there may own them.
	// Default: true (this construct owns them; set false in every other
	// stack of the same account and region).
	ManageAccountAudit *bool
	// AuditFrequency is the scheduled audit's frequency: DAILY, WEEKLY,
	// BIWEEKLY or MONTHLY (weekly ones run on Monday, monthly ones on the
	// 1st). Default: DAILY.
	AuditFrequency *string
	// CertAgeThresholdDays is the age at which a device certificate is
	// reported for rotation, 30..3652. Default: 365.
	CertAgeThresholdDays *float64
	// ManageLogging creates the account's IoT logging configuration
	// (AWS::IoT::Logging, a singleton per account and region) and its role.
	// Default: true (this construct owns it; set false in every other stack
	// of the same account and region).
	ManageLogging *bool
	// LogLevel is IoT's default log level: DEBUG, INFO, WARN or ERROR.
	// Default: WARN (INFO logs every connect and publish of every agent).
	LogLevel *string
}

// Identity is what the construct created.
type Identity interface {
	constructs.Construct
	// RoleAliasName is the role alias agents ask for credentials at.
	RoleAliasName() *string
	// RoleAliasArn is the role alias's ARN.
	RoleAliasArn() *string
	// Role is the role behind the alias.
	Role() awsiam.IRole
	// PolicyName is the IoT policy to attach to every agent certificate.
	PolicyName() *string
	// PolicyArn is that policy's ARN.
	PolicyArn() *string
	// AuditRole is the role Device Defender audits with; nil when
	// ManageAccountAudit is false.
	AuditRole() awsiam.IRole
	// LoggingRole is the role IoT writes logs with; nil when ManageLogging
	// is false.
	LoggingRole() awsiam.IRole
	// GrantPublishConfig lets grantee publish retained configuration to any
	// agent's exact config topic (<customer>/<thing>/config): the config
	// publisher's permission.
	GrantPublishConfig(grantee awsiam.IGrantable) awsiam.Grant
	// GrantPublishReleases lets grantee publish retained announcements on
	// the configured release channels: the release publisher's permission.
	GrantPublishReleases(grantee awsiam.IGrantable) awsiam.Grant
}

type identity struct {
	constructs.Construct
	aliasName   *string
	alias       awsiot.CfnRoleAlias
	role        awsiam.Role
	policy      awsiot.CfnPolicy
	policyName  *string
	auditRole   awsiam.IRole
	loggingRole awsiam.IRole
	iotARN      string
	channels    []string
}

var (
	policyNamePattern = regexp.MustCompile(`^[A-Za-z0-9_+=,.@-]{1,128}$`)
	frequencies       = map[string]bool{"DAILY": true, "WEEKLY": true, "BIWEEKLY": true, "MONTHLY": true}
	logLevels         = map[string]bool{"DEBUG": true, "INFO": true, "WARN": true, "ERROR": true}
)

// settings are the props with defaults applied, validated.
type settings struct {
	aliasName, policyName, releasePrefix, frequency, logLevel string
	durationSec, certAgeDays                                  float64
	channels                                                  []string
	audit, logging                                            bool
}

func resolve(props *Props) settings {
	if props == nil {
		props = &Props{}
	}
	s := settings{
		aliasName:     str(props.RoleAliasName, DefaultRoleAliasName),
		releasePrefix: str(props.ReleasePrefix, artifacts.ReleasePrefix),
		frequency:     str(props.AuditFrequency, DefaultAuditFrequency),
		logLevel:      str(props.LogLevel, DefaultLogLevel),
		durationSec:   num(props.CredentialDurationSec, DefaultCredentialDurationSec),
		certAgeDays:   num(props.CertAgeThresholdDays, DefaultCertAgeThresholdDays),
		audit:         props.ManageAccountAudit == nil || *props.ManageAccountAudit,
		logging:       props.ManageLogging == nil || *props.ManageLogging,
	}
	s.policyName = str(props.PolicyName, s.aliasName)
	if props.ReleaseChannels == nil {
		s.channels = []string{topics.DefaultReleaseChannel}
	} else {
		for _, ch := range *props.ReleaseChannels {
			if ch == nil {
				panic("identity: ReleaseChannels contains a nil entry; list channel names such as \"stable\"")
			}
			s.channels = append(s.channels, *ch)
		}
	}

	d := s.durationSec
	if d < MinCredentialDurationSec || d > MaxCredentialDurationSec || d != math.Trunc(d) {
		panic(fmt.Sprintf("identity: CredentialDurationSec %v is outside %d..%d whole seconds (the role alias limits); use e.g. 3600", d, MinCredentialDurationSec, MaxCredentialDurationSec))
	}
	if err := (agentpolicy.Params{IoTARN: "arn:aws:iot:r:1", RoleAliasName: s.aliasName, ReleaseChannels: s.channels}).Validate(); err != nil {
		panic("identity: " + strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if !policyNamePattern.MatchString(s.policyName) {
		panic(fmt.Sprintf("identity: PolicyName %q must be 1..128 characters of [A-Za-z0-9_+=,.@-]", s.policyName))
	}
	if err := artifacts.CheckKeyPrefix(s.releasePrefix); err != nil {
		panic("identity: ReleasePrefix " + err.Error())
	}
	if props.ReleasePrefix != nil && props.ArtifactsBucket == nil {
		panic("identity: ReleasePrefix is set but ArtifactsBucket is not; pass the bucket that holds the releases")
	}
	if !frequencies[s.frequency] {
		panic(fmt.Sprintf("identity: AuditFrequency %q must be DAILY, WEEKLY, BIWEEKLY or MONTHLY", s.frequency))
	}
	if a := s.certAgeDays; a < 30 || a > 3652 || a != math.Trunc(a) {
		panic(fmt.Sprintf("identity: CertAgeThresholdDays %v must be a whole number of days from 30 to 3652", a))
	}
	if !logLevels[s.logLevel] {
		panic(fmt.Sprintf("identity: LogLevel %q must be DEBUG, INFO, WARN or ERROR (disable logging with ManageLogging=false)", s.logLevel))
	}
	return s
}

func str(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

func num(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

// New creates the identity resources. It panics with a message naming the
// bad value on invalid props.
func New(scope constructs.Construct, id *string, props *Props) Identity {
	s := resolve(props)
	this := constructs.NewConstruct(scope, id)
	stack := awscdk.Stack_Of(this)
	n := &identity{
		Construct: this,
		iotARN:    fmt.Sprintf("arn:%s:iot:%s:%s", *stack.Partition(), *stack.Region(), *stack.Account()),
		channels:  s.channels,
	}
	params := agentpolicy.Params{IoTARN: n.iotARN, RoleAliasName: s.aliasName, ReleaseChannels: s.channels}
	if props != nil && props.ArtifactsBucket != nil {
		params.ReleaseObjectsARN = *props.ArtifactsBucket.ArnForObjects(jsii.String(s.releasePrefix + "*"))
	}

	n.role = awsiam.NewRole(this, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("credentials.iot.amazonaws.com"), nil),
		Description: jsii.String("agentgate agents via the IoT credentials provider: own MQTT topics and release downloads only"),
		// CreateRoleAlias refuses a duration above the role's maximum session.
		MaxSessionDuration: awscdk.Duration_Seconds(jsii.Number(math.Max(3600, s.durationSec))),
		InlinePolicies: &map[string]awsiam.PolicyDocument{
			"AgentAccess": awsiam.PolicyDocument_FromJson(agentpolicy.RolePolicy(params).Map()),
		},
	})
	n.alias = awsiot.NewCfnRoleAlias(this, jsii.String("RoleAlias"), &awsiot.CfnRoleAliasProps{
		RoleAlias:                 jsii.String(s.aliasName),
		RoleArn:                   n.role.RoleArn(),
		CredentialDurationSeconds: jsii.Number(s.durationSec),
	})
	n.aliasName = jsii.String(s.aliasName)

	n.policyName = jsii.String(s.policyName)
	n.policy = awsiot.NewCfnPolicy(this, jsii.String("Policy"), &awsiot.CfnPolicyProps{
		PolicyName:     n.policyName,
		PolicyDocument: agentpolicy.IoTPolicy(params).Map(),
	})

	if s.audit {
		n.auditRole = newAudit(this, stack, s)
	}
	if s.logging {
		n.loggingRole = newLogging(this, stack, s)
	}
	return n
}

// AuditCheck is one Device Defender check and whether agentgate enables it.
type AuditCheck struct {
	// Name is the check's API name, as ScheduledAudit.TargetCheckNames wants it.
	Name string
	// Enabled says whether the account audit configuration turns it on.
	Enabled bool
}

// auditChecks are the account audit checks and whether they are enabled;
// docs/identity.md says why for each.
var auditChecks = []AuditCheck{
	{"AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", false},
	{"CA_CERTIFICATE_EXPIRING_CHECK", true},
	{"CA_CERTIFICATE_KEY_QUALITY_CHECK", true},
	{"CONFLICTING_CLIENT_IDS_CHECK", true},
	{"DEVICE_CERTIFICATE_AGE_CHECK", true},
	{"DEVICE_CERTIFICATE_EXPIRING_CHECK", true},
	{"DEVICE_CERTIFICATE_KEY_QUALITY_CHECK", true},
	{"DEVICE_CERTIFICATE_SHARED_CHECK", true},
	{"INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK", true},
	{"IOT_POLICY_OVERLY_PERMISSIVE_CHECK", true},
	{"IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK", true},
	{"IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK", true},
	{"IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK", true},
	{"LOGGING_DISABLED_CHECK", true},
	{"REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", true},
	{"REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK", true},
	{"UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK", false},
}

// AuditChecks returns every account audit check and whether the construct
// enables it (all but the two Cognito checks: agentgate uses no identity
// pools). docs/identity.md says why each matters.
func AuditChecks() []AuditCheck { return append([]AuditCheck(nil), auditChecks...) }

// EnabledAuditChecks returns the API names of the enabled checks.
func EnabledAuditChecks() []string {
	var out []string
	for _, c := range auditChecks {
		if c.Enabled {
			out = append(out, c.Name)
		}
	}
	return out
}

func newAudit(this constructs.Construct, stack awscdk.Stack, s settings) awsiam.IRole {
	role := awsiam.NewRole(this, jsii.String("AuditRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil),
		Description: jsii.String("Device Defender audit: reads IoT, IAM and Cognito configuration"),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("service-role/AWSIoTDeviceDefenderAudit")),
		},
	})
	on := func(name string) *awsiot.CfnAccountAuditConfiguration_AuditCheckConfigurationProperty {
		for _, c := range auditChecks {
			if c.Name == name {
				return &awsiot.CfnAccountAuditConfiguration_AuditCheckConfigurationProperty{Enabled: jsii.Bool(c.Enabled)}
			}
		}
		panic("identity: unknown audit check " + name)
	}
	cfg := awsiot.NewCfnAccountAuditConfiguration(this, jsii.String("AccountAudit"), &awsiot.CfnAccountAuditConfigurationProps{
		AccountId: stack.Account(),
		RoleArn:   role.RoleArn(),
		AuditCheckConfigurations: &awsiot.CfnAccountAuditConfiguration_AuditCheckConfigurationsProperty{
			AuthenticatedCognitoRoleOverlyPermissiveCheck:         on("AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"),
			CaCertificateExpiringCheck:                            on("CA_CERTIFICATE_EXPIRING_CHECK"),
			CaCertificateKeyQualityCheck:                          on("CA_CERTIFICATE_KEY_QUALITY_CHECK"),
			ConflictingClientIdsCheck:                             on("CONFLICTING_CLIENT_IDS_CHECK"),
			DeviceCertificateExpiringCheck:                        on("DEVICE_CERTIFICATE_EXPIRING_CHECK"),
			DeviceCertificateKeyQualityCheck:                      on("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"),
			DeviceCertificateSharedCheck:                          on("DEVICE_CERTIFICATE_SHARED_CHECK"),
			IntermediateCaRevokedForActiveDeviceCertificatesCheck: on("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK"),
			IotPolicyOverlyPermissiveCheck:                        on("IOT_POLICY_OVERLY_PERMISSIVE_CHECK"),
			IoTPolicyPotentialMisConfigurationCheck:               on("IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"),
			IotRoleAliasAllowsAccessToUnusedServicesCheck:         on("IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK"),
			IotRoleAliasOverlyPermissiveCheck:                     on("IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK"),
			LoggingDisabledCheck:                                  on("LOGGING_DISABLED_CHECK"),
			RevokedCaCertificateStillActiveCheck:                  on("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"),
			RevokedDeviceCertificateStillActiveCheck:              on("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK"),
			UnauthenticatedCognitoRoleOverlyPermissiveCheck:       on("UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"),
			DeviceCertificateAgeCheck: &awsiot.CfnAccountAuditConfiguration_DeviceCertAgeAuditCheckConfigurationProperty{
				Enabled: jsii.Bool(true),
				Configuration: &awsiot.CfnAccountAuditConfiguration_CertAgeCheckCustomConfigurationProperty{
					CertAgeThresholdInDays: jsii.String(fmt.Sprint(s.certAgeDays)),
				},
			},
		},
	})
	sp := &awsiot.CfnScheduledAuditProps{
		Frequency:        jsii.String(s.frequency),
		TargetCheckNames: jsii.Strings(EnabledAuditChecks()...),
	}
	switch s.frequency {
	case "WEEKLY", "BIWEEKLY":
		sp.DayOfWeek = jsii.String("MON")
	case "MONTHLY":
		sp.DayOfMonth = jsii.String("1")
	}
	sched := awsiot.NewCfnScheduledAudit(this, jsii.String("ScheduledAudit"), sp)
	// A scheduled audit may only name checks the account has enabled.
	sched.AddResourceDependency(cfg, jsii.String("a scheduled audit may only name checks the account has enabled"))
	return role
}

// IoTLogGroup is the log group AWS IoT v2 logging writes to.
const IoTLogGroup = "AWSIotLogsV2"

func newLogging(this constructs.Construct, stack awscdk.Stack, s settings) awsiam.IRole {
	group := fmt.Sprintf("arn:%s:logs:%s:%s:log-group:%s", *stack.Partition(), *stack.Region(), *stack.Account(), IoTLogGroup)
	role := awsiam.NewRole(this, jsii.String("LoggingRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("iot.amazonaws.com"), nil),
		Description: jsii.String("AWS IoT logging into " + IoTLogGroup),
		// The managed AWSIoTLogging policy grants these on every log group;
		// IoT writes only to its own.
		InlinePolicies: &map[string]awsiam.PolicyDocument{
			"IoTLogs": awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{Statements: &[]awsiam.PolicyStatement{
				awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
					Actions:   jsii.Strings("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:PutMetricFilter", "logs:PutRetentionPolicy"),
					Resources: jsii.Strings(group, group+":*"),
				}),
			}}),
		},
	})
	if s.logLevel == "INFO" || s.logLevel == "DEBUG" {
		awscdk.Annotations_Of(this).AddWarningV2(jsii.String("agentgate:identity:verboseLogging"), jsii.String(
			"IoT LogLevel "+s.logLevel+" logs every connect, subscribe and publish of every agent into CloudWatch Logs; "+
				"at fleet scale that is costly. Use WARN or ERROR by default and raise it while investigating."), nil)
	}
	awsiot.NewCfnLogging(this, jsii.String("Logging"), &awsiot.CfnLoggingProps{
		AccountId:       stack.Account(),
		DefaultLogLevel: jsii.String(s.logLevel),
		RoleArn:         role.RoleArn(),
	})
	return role
}

func (n *identity) RoleAliasName() *string    { return n.aliasName }
func (n *identity) RoleAliasArn() *string     { return n.alias.AttrRoleAliasArn() }
func (n *identity) Role() awsiam.IRole        { return n.role }
func (n *identity) PolicyName() *string       { return n.policyName }
func (n *identity) PolicyArn() *string        { return n.policy.AttrArn() }
func (n *identity) AuditRole() awsiam.IRole   { return n.auditRole }
func (n *identity) LoggingRole() awsiam.IRole { return n.loggingRole }

func (n *identity) GrantPublishConfig(grantee awsiam.IGrantable) awsiam.Grant {
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings("iot:Publish", "iot:RetainPublish"),
		ResourceArns: jsii.Strings(agentpolicy.ConfigTopicsARN(n.iotARN)),
	})
}

func (n *identity) GrantPublishReleases(grantee awsiam.IGrantable) awsiam.Grant {
	return awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      grantee,
		Actions:      jsii.Strings("iot:Publish", "iot:RetainPublish"),
		ResourceArns: jsii.Strings(agentpolicy.ReleaseTopicARNs(n.iotARN, n.channels)...),
	})
}
