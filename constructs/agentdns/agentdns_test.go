package agentdns_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsroute53"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/agentdns"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func newStack(region string) awscdk.Stack {
	app := cdktest.NewApp()
	return awscdk.NewStack(app, jsii.String("DnsTest"), &awscdk.StackProps{Env: &awscdk.Environment{Account: cdktest.TestEnv.Account, Region: jsii.String(region)}})
}

func validProps(stack awscdk.Stack) *agentdns.Props {
	zone := awsroute53.HostedZone_FromHostedZoneAttributes(stack, jsii.String("Zone"), &awsroute53.HostedZoneAttributes{
		HostedZoneId: jsii.String("Z0123456789EXAMPLE"), ZoneName: jsii.String("example.com"),
	})
	return &agentdns.Props{
		Zone: zone, RecordName: jsii.String("agents.example.com"), HealthSNI: jsii.String("health.agents.example.com"),
		Fleets: &[]*agentdns.Fleet{
			{Name: jsii.String("euw1"), Weight: jsii.Number(100), Addresses: jsii.Strings("192.0.2.1", "192.0.2.2")},
			{Name: jsii.String("use1"), Weight: jsii.Number(0), Addresses: jsii.Strings("198.51.100.1")},
		},
	}
}

func TestRecordsAndHealthChecks(t *testing.T) {
	stack := newStack("eu-west-1")
	d := agentdns.New(stack, jsii.String("Dns"), validProps(stack))
	tmpl := cdktest.TemplateJSON(t, stack)
	checks := map[string]map[string]any{}
	for id, r := range cdktest.ResourcesOfType(t, tmpl, "AWS::Route53::HealthCheck") {
		checks[id] = cdktest.Object(t, r, "Properties", "HealthCheckConfig")
	}
	records := cdktest.PropertiesOfType(tmpl, "AWS::Route53::RecordSet")
	if len(records) != 3 || len(checks) != 3 || len(d.Records()) != 3 {
		t.Fatalf("%d records, %d checks; want 3 each", len(records), len(checks))
	}
	want := map[string]struct {
		ip     string
		weight float64
	}{"euw1-1": {"192.0.2.1", 100}, "euw1-2": {"192.0.2.2", 100}, "use1-1": {"198.51.100.1", 0}}
	for _, r := range records {
		set := cdktest.Get[string](t, r, "SetIdentifier")
		w := want[set]
		hcID := cdktest.Get[string](t, r, "HealthCheckId", "Fn::GetAtt", 0)
		hc := checks[hcID]
		if r["Weight"] != w.weight || r["TTL"] != "60" || cdktest.Get[string](t, r, "ResourceRecords", 0) != w.ip || hc["IPAddress"] != w.ip {
			t.Errorf("%s: weight %v ttl %v rr %v check ip %v; want %v %v", set, r["Weight"], r["TTL"], r["ResourceRecords"], hc["IPAddress"], w.weight, w.ip)
		}
		if hc["Type"] != "HTTPS" || hc["Port"] != float64(443) || hc["EnableSNI"] != true || hc["FullyQualifiedDomainName"] != "health.agents.example.com" || hc["ResourcePath"] != "/healthz" || hc["RequestInterval"] != float64(10) {
			t.Errorf("%s: check %v", set, hc)
		}
	}
}

func TestPropsValidation(t *testing.T) {
	cases := []struct {
		name, want string
		edit       func(p *agentdns.Props)
	}{
		{"no zone", "Zone is required", func(p *agentdns.Props) { p.Zone = nil }},
		{"ttl above 60", "TTLSec", func(p *agentdns.Props) { p.TTLSec = jsii.Number(61) }},
		{"interval 15", "10 or 30", func(p *agentdns.Props) { p.RequestIntervalSec = jsii.Number(15) }},
		{"threshold 0", "FailureThreshold", func(p *agentdns.Props) { p.FailureThreshold = jsii.Number(0) }},
		{"weight above 255", "0..255", func(p *agentdns.Props) { (*p.Fleets)[0].Weight = jsii.Number(256) }},
		{"negative weight", "0..255", func(p *agentdns.Props) { (*p.Fleets)[0].Weight = jsii.Number(-1) }},
		{"every weight 0", "at least one fleet must have a weight above 0", func(p *agentdns.Props) { (*p.Fleets)[0].Weight = jsii.Number(0) }},
		{"duplicate fleet", "used twice", func(p *agentdns.Props) { (*p.Fleets)[1].Name = jsii.String("euw1") }},
		{"no addresses", "no Addresses", func(p *agentdns.Props) { (*p.Fleets)[1].Addresses = &[]*string{} }},
		{"wildcard health sni", "HealthSNI", func(p *agentdns.Props) { p.HealthSNI = jsii.String("*.example.com") }},
	}
	// Validation runs before any construct is created, so one stack serves
	// every case (each under its own ID in case one slips through).
	stack := newStack("eu-west-1")
	zone := validProps(stack).Zone
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := &agentdns.Props{
				Zone: zone, RecordName: jsii.String("agents.example.com"), HealthSNI: jsii.String("health.agents.example.com"),
				Fleets: &[]*agentdns.Fleet{
					{Name: jsii.String("euw1"), Weight: jsii.Number(100), Addresses: jsii.Strings("192.0.2.1", "192.0.2.2")},
					{Name: jsii.String("use1"), Weight: jsii.Number(0), Addresses: jsii.Strings("198.51.100.1")},
				},
			}
			c.edit(p)
			cdktest.MustPanic(t, c.want, func() { agentdns.New(stack, jsii.String(fmt.Sprintf("Dns%d", i)), p) })
		})
	}
}

func TestHealthAlarmsOnlyInUsEast1(t *testing.T) {
	checks := &[]*agentdns.HealthCheck{{Name: jsii.String("euw1-1"), ID: jsii.String("hc-1")}}
	stack := newStack("eu-west-1")
	topic := awssns.NewTopic(stack, jsii.String("T"), nil)
	cdktest.MustPanic(t, "us-east-1", func() {
		agentdns.NewHealthAlarms(stack, jsii.String("A"), &agentdns.HealthAlarmsProps{HealthChecks: checks, Topic: topic})
	})
	east := newStack("us-east-1")
	cdktest.MustPanic(t, "HealthChecks[0] needs a Name and an ID", func() {
		agentdns.NewHealthAlarms(east, jsii.String("NoID"), &agentdns.HealthAlarmsProps{HealthChecks: &[]*agentdns.HealthCheck{{Name: jsii.String("euw1-1")}}, Topic: topic})
	})
	a := agentdns.NewHealthAlarms(east, jsii.String("A"), &agentdns.HealthAlarmsProps{HealthChecks: checks, Topic: awssns.NewTopic(east, jsii.String("T"), nil)})
	if len(a.Alarms()) != 1 {
		t.Fatalf("%d alarms", len(a.Alarms()))
	}
	data, _ := json.Marshal(cdktest.Template(t, east).ToJSON())
	for _, want := range []string{`"MetricName":"HealthCheckStatus"`, `"Namespace":"AWS/Route53"`, `{"Name":"HealthCheckId","Value":"hc-1"}`, `"ComparisonOperator":"LessThanThreshold"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("alarm template lacks %s", want)
		}
	}
}
