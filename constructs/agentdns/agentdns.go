// Package agentdns publishes the agents' DNS name: one weighted A record per
// static IP, each with its own Route 53 health check that exercises the
// same path agents use (TLS to that EIP on 443 with the relay's health SNI,
// GET /healthz). Several fleets (regions) share one record set; a fleet's
// weight splits answers between fleets, and weight 0 marks a standby.
//
// Route 53 semantics this relies on (Route 53 Developer Guide, "How Amazon
// Route 53 chooses records when health checking is configured"):
//
//   - A record whose health check fails is skipped; the answer is another
//     record chosen by weight. A record without a health check is always
//     healthy, so every record here has one.
//   - Weight 0 records are considered only when every record with a weight
//     above 0 is unhealthy; then the healthy zero-weight records are chosen
//     among themselves with equal probability.
//   - If every record is unhealthy, Route 53 fails open: it answers as if all
//     were healthy, but among the non-zero weights only (a standby is not
//     returned when the active fleets and the standby are all failing).
//
// Health-check metrics (AWS/Route53 HealthCheckStatus) exist only in
// us-east-1, so alarms on them must live in a us-east-1 stack: see
// NewHealthAlarms.
package agentdns

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// HealthMetricsRegion is the only region Route 53 publishes health-check metrics to.
const HealthMetricsRegion = "us-east-1"

// Defaults used when the matching Props field is unset.
const (
	DefaultTTLSec             = 60
	DefaultRequestIntervalSec = relayspec.DNSHealthCheckIntervalSeconds
	DefaultFailureThreshold   = relayspec.DNSHealthCheckFailureThreshold
)

// Fleet is one fleet's static addresses and its share of answers.
type Fleet struct {
	// Name identifies the fleet; records are "<name>-<n>". Required.
	Name *string
	// Weight is the fleet's weight, 0..255; 0 = standby. Required.
	Weight *float64
	// Addresses are the fleet's static IPs (tokens from its addresses stack). Required.
	Addresses *[]*string
}

// Props configures an AgentDNS.
type Props struct {
	// Zone is the public hosted zone. Required; import it with
	// HostedZone_FromHostedZoneAttributes so synth performs no lookup.
	Zone awsroute53.IHostedZone
	// RecordName is the fully qualified name agents resolve. Required.
	RecordName *string
	// TTLSec of every record, 1..60. Default: DefaultTTLSec.
	TTLSec *float64
	// HealthSNI is the server name the relay answers health checks for. Required.
	HealthSNI *string
	// HealthPath is requested on each IP. Default: relayspec.HealthPath.
	HealthPath *string
	// RequestIntervalSec is 10 or 30 (fixed at creation). Default: 10.
	RequestIntervalSec *float64
	// FailureThreshold is consecutive failures to unhealthy, 1..10. Default: 3.
	FailureThreshold *float64
	// Fleets are the record set's members. Required, at least one with a weight above 0.
	Fleets *[]*Fleet
}

// Record is one weighted record and its health check.
type Record struct {
	// Fleet and Index (1-based) identify the static IP.
	Fleet string
	Index int
	// SetIdentifier is "<fleet>-<index>".
	SetIdentifier string
	// Weight of the record.
	Weight float64
	// Address is the static IP.
	Address *string
	// HealthCheckID is the ID of the record's Route 53 health check (a
	// token), the HealthCheckId dimension of its metrics.
	HealthCheckID *string
}

// HealthCheck is the record's health check, as NewHealthAlarms takes it.
func (r Record) HealthCheck() *HealthCheck {
	return &HealthCheck{Name: jsii.String(r.SetIdentifier), ID: r.HealthCheckID}
}

// AgentDNS is the weighted, health-checked record set.
type AgentDNS interface {
	constructs.Construct
	// Records are every record, fleet by fleet, in address order.
	Records() []Record
}

type agentDNS struct {
	constructs.Construct
	records []Record
}

var nameRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

func num(p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	return *p
}

// New creates the records and health checks. It panics on misuse.
func New(scope constructs.Construct, id *string, props *Props) AgentDNS {
	if props == nil || props.Zone == nil {
		panic("agentdns: Zone is required (import it from attributes: no lookup at synth)")
	}
	if props.RecordName == nil || *props.RecordName == "" {
		panic("agentdns: RecordName is required")
	}
	if props.HealthSNI == nil || *props.HealthSNI == "" || strings.Contains(*props.HealthSNI, "*") {
		panic("agentdns: HealthSNI is required: the exact name the relay answers health checks for")
	}
	ttl := num(props.TTLSec, DefaultTTLSec)
	if ttl < 1 || ttl > 60 || ttl != float64(int(ttl)) {
		panic(fmt.Sprintf("agentdns: TTLSec %v must be 1..60 whole seconds (agents must leave a failed IP within a minute)", ttl))
	}
	interval := num(props.RequestIntervalSec, DefaultRequestIntervalSec)
	if interval != 10 && interval != 30 {
		panic(fmt.Sprintf("agentdns: RequestIntervalSec %v must be 10 or 30 (the Route 53 choices)", interval))
	}
	threshold := num(props.FailureThreshold, DefaultFailureThreshold)
	if threshold < 1 || threshold > 10 || threshold != float64(int(threshold)) {
		panic(fmt.Sprintf("agentdns: FailureThreshold %v must be 1..10", threshold))
	}
	path := relayspec.HealthPath
	if props.HealthPath != nil {
		path = *props.HealthPath
	}
	if !strings.HasPrefix(path, "/") {
		panic(fmt.Sprintf("agentdns: HealthPath %q must start with /", path))
	}
	if props.Fleets == nil || len(*props.Fleets) == 0 {
		panic("agentdns: Fleets needs at least one fleet")
	}
	active := false
	seen := map[string]bool{}
	for i, f := range *props.Fleets {
		if f == nil || f.Name == nil || !nameRe.MatchString(*f.Name) {
			panic(fmt.Sprintf("agentdns: Fleets[%d].Name must be lowercase letters and digits, starting with a letter", i))
		}
		if seen[*f.Name] {
			panic(fmt.Sprintf("agentdns: fleet name %q is used twice", *f.Name))
		}
		seen[*f.Name] = true
		w := num(f.Weight, -1)
		if w < 0 || w > 255 || w != float64(int(w)) {
			panic(fmt.Sprintf("agentdns: fleet %q Weight %v must be a whole number 0..255 (0 = standby)", *f.Name, w))
		}
		active = active || w > 0
		if f.Addresses == nil || len(*f.Addresses) == 0 {
			panic(fmt.Sprintf("agentdns: fleet %q has no Addresses", *f.Name))
		}
	}
	if !active {
		panic("agentdns: every fleet has weight 0; at least one fleet must have a weight above 0 (0 marks a standby)")
	}

	this := constructs.NewConstruct(scope, id)
	d := &agentDNS{Construct: this}
	for _, f := range *props.Fleets {
		for i, addr := range *f.Addresses {
			setID := fmt.Sprintf("%s-%d", *f.Name, i+1)
			hc := awsroute53.NewCfnHealthCheck(this, jsii.String("Health-"+setID), &awsroute53.CfnHealthCheckProps{
				HealthCheckConfig: &awsroute53.CfnHealthCheck_HealthCheckConfigProperty{
					Type:                     jsii.String("HTTPS"),
					IpAddress:                addr,
					Port:                     jsii.Number(443),
					FullyQualifiedDomainName: props.HealthSNI,
					EnableSni:                jsii.Bool(true),
					ResourcePath:             jsii.String(path),
					RequestInterval:          jsii.Number(interval),
					FailureThreshold:         jsii.Number(threshold),
				},
				HealthCheckTags: &[]*awsroute53.CfnHealthCheck_HealthCheckTagProperty{
					{Key: jsii.String("Name"), Value: jsii.String(*props.RecordName + " " + setID)},
				},
			})
			awsroute53.NewCfnRecordSet(this, jsii.String("Record-"+setID), &awsroute53.CfnRecordSetProps{
				HostedZoneId:    props.Zone.HostedZoneId(),
				Name:            props.RecordName,
				Type:            jsii.String("A"),
				Ttl:             jsii.String(fmt.Sprint(int(ttl))),
				ResourceRecords: &[]*string{addr},
				Weight:          f.Weight,
				SetIdentifier:   jsii.String(setID),
				HealthCheckId:   hc.AttrHealthCheckId(),
			})
			d.records = append(d.records, Record{
				Fleet: *f.Name, Index: i + 1, SetIdentifier: setID, Weight: *f.Weight, Address: addr,
				HealthCheckID: hc.AttrHealthCheckId(),
			})
		}
	}
	return d
}

func (d *agentDNS) Records() []Record { return append([]Record(nil), d.records...) }

// HealthCheck names one health check for alarms.
type HealthCheck struct {
	// Name is shown in alarm names, e.g. "euw1-1". Required.
	Name *string
	// ID is the health check ID (a token from the DNS stack). Required.
	ID *string
}

// MetricHealthCheckStatus is 1 while the health check passes, 0 when it fails;
// always in us-east-1.
func MetricHealthCheckStatus(id *string, opts *awscloudwatch.MetricOptions) awscloudwatch.Metric {
	p := awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/Route53"), MetricName: jsii.String("HealthCheckStatus"),
		DimensionsMap: &map[string]*string{"HealthCheckId": id},
		Statistic:     jsii.String("Minimum"), Period: awscdk.Duration_Minutes(jsii.Number(1)),
		Region: jsii.String(HealthMetricsRegion),
	}
	if opts != nil && opts.Label != nil {
		p.Label = opts.Label
	}
	return awscloudwatch.NewMetric(&p)
}

// HealthAlarmsProps configures HealthAlarms.
type HealthAlarmsProps struct {
	// HealthChecks to alarm on, one alarm each. Required, at least one.
	HealthChecks *[]*HealthCheck
	// Topic is notified on alarm and on recovery. Required.
	Topic awssns.ITopic
	// EvaluationPeriods is how many consecutive one-minute periods must
	// fail before an alarm fires. Default: 2 (two minutes of failure).
	EvaluationPeriods *float64
	// DashboardName of the health dashboard. Default: a name CloudFormation
	// generates.
	DashboardName *string
}

// HealthAlarms are one alarm per health check plus a dashboard.
type HealthAlarms interface {
	constructs.Construct
	// Alarms are in HealthChecks order.
	Alarms() []awscloudwatch.Alarm
	// Dashboard shows every health check.
	Dashboard() awscloudwatch.Dashboard
}

type healthAlarms struct {
	constructs.Construct
	alarms []awscloudwatch.Alarm
	dash   awscloudwatch.Dashboard
}

// NewHealthAlarms creates alarms on AWS/Route53 HealthCheckStatus. It panics
// unless its stack is in us-east-1, the only region with those metrics
// (an alarm cannot watch another region's metric).
func NewHealthAlarms(scope constructs.Construct, id *string, props *HealthAlarmsProps) HealthAlarms {
	if region := awscdk.Stack_Of(scope).Region(); *awscdk.Token_IsUnresolved(region) || *region != HealthMetricsRegion {
		panic(fmt.Sprintf("agentdns: health-check alarms must be in a stack in %s (Route 53 publishes HealthCheckStatus only there), not %q", HealthMetricsRegion, *region))
	}
	if props == nil || props.HealthChecks == nil || len(*props.HealthChecks) == 0 || props.Topic == nil {
		panic("agentdns: NewHealthAlarms needs HealthChecks (AgentDNS.Records()[i].HealthCheck()) and a Topic")
	}
	for i, hc := range *props.HealthChecks {
		if hc == nil || hc.Name == nil || *hc.Name == "" || hc.ID == nil {
			panic(fmt.Sprintf("agentdns: HealthChecks[%d] needs a Name and an ID; build it with Record.HealthCheck()", i))
		}
	}
	periods := num(props.EvaluationPeriods, 2)
	this := constructs.NewConstruct(scope, id)
	h := &healthAlarms{Construct: this}
	action := awscloudwatchactions.NewSnsAction(props.Topic)
	var metrics []awscloudwatch.IMetric
	for _, hc := range *props.HealthChecks {
		// The dashboard shows labelled metrics; alarms take the plain one,
		// which renders as a simple metric alarm.
		metrics = append(metrics, MetricHealthCheckStatus(hc.ID, &awscloudwatch.MetricOptions{Label: hc.Name}))
		a := MetricHealthCheckStatus(hc.ID, nil).CreateAlarm(this, jsii.String("Unhealthy-"+*hc.Name), &awscloudwatch.CreateAlarmOptions{
			AlarmDescription:   jsii.String(fmt.Sprintf("Route 53 health check %s fails: DNS no longer answers this static IP (TLS with the health SNI to EIP:443, GET /healthz)", *hc.Name)),
			Threshold:          jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(periods),
			TreatMissingData:   awscloudwatch.TreatMissingData_MISSING,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
		h.alarms = append(h.alarms, a)
	}
	h.dash = awscloudwatch.NewDashboard(this, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{DashboardName: props.DashboardName})
	var alarms []interfacesawscloudwatch.IAlarmRef
	for _, a := range h.alarms {
		alarms = append(alarms, a)
	}
	h.dash.AddWidgets(
		awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String("Route 53 health per static IP (1 = healthy)"), Left: &metrics, Width: jsii.Number(16),
			LeftYAxis: &awscloudwatch.YAxisProps{Min: jsii.Number(0), Max: jsii.Number(1)},
		}),
		awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("Health-check alarms"), Alarms: &alarms, Width: jsii.Number(8),
		}),
	)
	return h
}

func (h *healthAlarms) Alarms() []awscloudwatch.Alarm {
	return append([]awscloudwatch.Alarm(nil), h.alarms...)
}
func (h *healthAlarms) Dashboard() awscloudwatch.Dashboard { return h.dash }
