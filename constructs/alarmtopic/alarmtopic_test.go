package alarmtopic_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/alarmtopic"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func TestTopicIsEncryptedSSLOnlyAndNagClean(t *testing.T) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("TopicTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	alarmtopic.New(stack, jsii.String("Alarms"), nil)
	data, _ := json.Marshal(cdktest.Template(t, stack).ToJSON())
	s := string(data)
	for _, want := range []string{`"EnableKeyRotation":true`, `"KmsMasterKeyId"`, `"aws:SecureTransport":"false"`, `"Service":"cloudwatch.amazonaws.com"`} {
		if !strings.Contains(s, want) {
			t.Errorf("template lacks %s", want)
		}
	}
	cdktest.NoNagFindings(t, stack)
}

func TestEmailAddressesAreSubscribed(t *testing.T) {
	app := cdktest.NewApp()
	stack := awscdk.NewStack(app, jsii.String("TopicTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
	alarmtopic.New(stack, jsii.String("Alarms"), &alarmtopic.Props{EmailAddresses: jsii.Strings("ops@example.com", "oncall@example.org")})
	subs := cdktest.PropertiesOfType(cdktest.TemplateJSON(t, stack), "AWS::SNS::Subscription")
	got := map[string]bool{}
	for _, p := range subs {
		if p["Protocol"] != "email" {
			t.Errorf("subscription %v, want protocol email", p)
		}
		got[cdktest.Get[string](t, p, "Endpoint")] = true
	}
	if len(subs) != 2 || !got["ops@example.com"] || !got["oncall@example.org"] {
		t.Errorf("subscriptions %v, want the two addresses", subs)
	}
	cdktest.NoNagFindings(t, stack)
}

func TestBadEmailAddressPanics(t *testing.T) {
	// The rule is the configuration file's (alarms.email): one plain
	// address, or a panic.
	for _, bad := range []string{"", "ops", "Ops <ops@example.com>", "a@example.com,b@example.com", "a @example.com", "ops@", "@example.com", "ops@example.com (Ops)"} {
		stack := awscdk.NewStack(cdktest.NewApp(), jsii.String("TopicTest"), &awscdk.StackProps{Env: cdktest.TestEnv})
		cdktest.MustPanic(t, "is not a plain e-mail address", func() {
			alarmtopic.New(stack, jsii.String("Alarms"), &alarmtopic.Props{EmailAddresses: jsii.Strings(bad)})
		})
	}
}
