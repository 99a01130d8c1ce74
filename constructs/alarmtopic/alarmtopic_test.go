package alarmtopic_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/alarmtopic"
	"github.com/agentgate/agentgate/internal/cdktest"
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
