package cdktest

import (
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// The kit must see a real cdk-nag finding, with its rule and text: a queue
// without a dead-letter queue or SSL enforcement breaks AwsSolutions-SQS3/SQS4.
func TestNagFindingsReportsRuleAndText(t *testing.T) {
	stack := awscdk.NewStack(NewApp(), jsii.String("Kit"), &awscdk.StackProps{Env: TestEnv})
	awssqs.NewQueue(stack, jsii.String("Queue"), &awssqs.QueueProps{})
	found := strings.Join(NagFindings(stack), "\n")
	for _, want := range []string{"error /Kit/Queue/Resource: AwsSolutions-SQS3", "AwsSolutions-SQS4"} {
		if !strings.Contains(found, want) {
			t.Errorf("findings lack %q:\n%s", want, found)
		}
	}
	if NagFindings(awscdk.NewStack(NewApp(), jsii.String("Empty"), &awscdk.StackProps{Env: TestEnv})) != nil {
		t.Error("an empty stack has findings")
	}
}

func TestPinnedLogicalIDsCatchesARename(t *testing.T) {
	stack := awscdk.NewStack(NewApp(), jsii.String("Kit"), &awscdk.StackProps{Env: TestEnv})
	awssqs.NewQueue(stack, jsii.String("Renamed"), &awssqs.QueueProps{EnforceSSL: jsii.Bool(true)})
	tmpl := Template(t, stack)
	if ids := LogicalIDs(t, tmpl, "AWS::SQS::Queue"); len(ids) != 1 || !strings.HasPrefix(ids[0], "Renamed") {
		t.Fatalf("LogicalIDs = %v", ids)
	}
	ft := &fakeT{TB: t}
	PinnedLogicalIDs(ft, tmpl, "AWS::SQS::Queue", "QueueOriginal1234")
	if !ft.failed {
		t.Error("PinnedLogicalIDs accepted a changed logical ID")
	}
}

// fakeT records a failure instead of failing the enclosing test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}
