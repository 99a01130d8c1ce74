package stacks

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/agentdns"
	"github.com/agentgate/agentgate/constructs/alarmtopic"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// DNSStackProps configures a DNSStack.
type DNSStackProps struct {
	awscdk.StackProps
	// DNS is the record and zone configuration.
	DNS deployconfig.DNS
	// Fleets supply each fleet's weight and static IPs (addresses stacks)
	// and, as dependencies, its edge stack.
	Fleets []*Fleet
}

// DNSStack is the global weighted record set with one health check per
// static IP. It reads every fleet's addresses from that fleet's addresses
// stack, possibly in another region, with weak references
// (Fn::GetStackOutput): no custom resource and no export lock is added to
// the addresses stacks, which only gain a stack output.
type DNSStack struct {
	awscdk.Stack
	// Records are the weighted records and health checks.
	Records agentdns.AgentDNS
}

// NewDNSStack creates the global DNS stack. It deploys after every fleet's
// edge stack, so an address is published only once its load balancer exists.
func NewDNSStack(scope constructs.Construct, id string, props *DNSStackProps) *DNSStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	awscdk.CrossStackReferences_Of(stack).Consume(awscdk.ReferenceStrength_WEAK)
	zone := awsroute53.HostedZone_FromHostedZoneAttributes(stack, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
		HostedZoneId: jsii.String(props.DNS.HostedZoneID),
		ZoneName:     jsii.String(props.DNS.ZoneName),
	})
	var fleets []*agentdns.Fleet
	for _, f := range props.Fleets {
		addrs := f.Addresses.StaticIPs.Addresses()
		fleets = append(fleets, &agentdns.Fleet{
			Name:      jsii.String(f.Config.Name),
			Weight:    jsii.Number(float64(f.Config.Weight)),
			Addresses: &addrs,
		})
		if f.Edge != nil {
			stack.AddStackDependency(f.Edge.Stack, jsii.String("publish a static IP only once its load balancer exists"))
		}
	}
	records := agentdns.New(stack, jsii.String("AgentRecords"), &agentdns.Props{
		Zone:       zone,
		RecordName: jsii.String(props.DNS.RecordName),
		TTLSec:     jsii.Number(float64(props.DNS.TTLSec)),
		HealthSNI:  jsii.String(props.DNS.HealthSNI),
		Fleets:     &fleets,
	})
	return &DNSStack{Stack: stack, Records: records}
}

// DNSAlarmsStackProps configures a DNSAlarmsStack.
type DNSAlarmsStackProps struct {
	awscdk.StackProps
	// DNS is the stack whose health checks are watched.
	DNS *DNSStack
	// AlarmEmails are subscribed to the alarm topic (alarms.email).
	AlarmEmails []string
}

// DNSAlarmsStack holds the alarms on the Route 53 health checks and their
// dashboard. It is always in us-east-1 (in the DNS stack's account): Route
// 53 publishes HealthCheckStatus only there and an alarm can watch only its
// own region's metrics. It reads the health check IDs from the DNS stack
// with weak references.
type DNSAlarmsStack struct {
	awscdk.Stack
	// Alarms are one alarm per health check and a dashboard.
	Alarms agentdns.HealthAlarms
	// Topic is notified by those alarms.
	Topic alarmtopic.AlarmTopic
}

// NewDNSAlarmsStack creates the health-check alarms stack.
func NewDNSAlarmsStack(scope constructs.Construct, id string, props *DNSAlarmsStackProps) *DNSAlarmsStack {
	sp := props.StackProps
	sp.StackName = jsii.String(id)
	stack := awscdk.NewStack(scope, jsii.String(id), &sp)
	awscdk.CrossStackReferences_Of(stack).Consume(awscdk.ReferenceStrength_WEAK)
	topic := alarmtopic.New(stack, jsii.String("AlarmTopic"), &alarmtopic.Props{
		DisplayName:    jsii.String("agentgate DNS health alarms"),
		EmailAddresses: emails(props.AlarmEmails),
	})
	var checks []*agentdns.HealthCheck
	for _, r := range props.DNS.Records.Records() {
		checks = append(checks, r.HealthCheck())
	}
	alarms := agentdns.NewHealthAlarms(stack, jsii.String("HealthAlarms"), &agentdns.HealthAlarmsProps{
		HealthChecks:  &checks,
		Topic:         topic.Topic(),
		DashboardName: jsii.String(id),
	})
	return &DNSAlarmsStack{Stack: stack, Alarms: alarms, Topic: topic}
}
