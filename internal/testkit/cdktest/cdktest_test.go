package cdktest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

func TestMain(m *testing.M) { Main(m) }

// Main must exit with the tests' result: this binary, run again with only a
// test that fails, exits non-zero.
func TestMainExitsWithTheTestsResult(t *testing.T) {
	if os.Getenv("CDKTEST_FAIL") == "1" {
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailsWhenAsked$")
	cmd.Env = append(os.Environ(), "CDKTEST_FAIL=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "asked to fail") {
		t.Errorf("a failing run exited with %v, want status 1:\n%s", err, out)
	}
}

func TestFailsWhenAsked(t *testing.T) {
	if os.Getenv("CDKTEST_FAIL") == "1" {
		t.Error("asked to fail")
	}
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

func TestTemplateJSONAndPropertiesOfType(t *testing.T) {
	stack := awscdk.NewStack(NewApp(), jsii.String("Kit"), &awscdk.StackProps{Env: TestEnv})
	awssqs.NewQueue(stack, jsii.String("A"), &awssqs.QueueProps{EnforceSSL: jsii.Bool(true), VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(42))})
	awssqs.NewQueue(stack, jsii.String("B"), &awssqs.QueueProps{EnforceSSL: jsii.Bool(true), VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(43))})
	tmpl := TemplateJSON(t, stack)
	queues := PropertiesOfType(tmpl, "AWS::SQS::Queue")
	if len(queues) != 2 {
		t.Fatalf("%d queues, want 2", len(queues))
	}
	sum := 0.0
	for _, q := range queues {
		v, ok := q["VisibilityTimeout"].(float64)
		if !ok {
			t.Fatalf("VisibilityTimeout %#v, want a JSON number", q["VisibilityTimeout"])
		}
		sum += v
	}
	if sum != 85 {
		t.Errorf("visibility timeouts sum to %v, want 42+43", sum)
	}
	if n := len(PropertiesOfType(tmpl, "AWS::SQS::QueuePolicy")); n != 2 {
		t.Errorf("%d queue policies, want 2", n)
	}
	if got := PropertiesOfType(tmpl, "AWS::SNS::Topic"); got != nil {
		t.Errorf("topics %v in a stack without any", got)
	}
	if got := PropertiesOfType(map[string]any{}, "AWS::SQS::Queue"); got != nil {
		t.Errorf("resources %v in an empty template", got)
	}
}

func TestMustPanic(t *testing.T) {
	MustPanic(t, "bad input", func() { panic("pkg: bad input here") })
	for name, f := range map[string]func(){
		"no panic":    func() {},
		"other panic": func() { panic("something else") },
	} {
		ft := &fakeT{TB: t}
		MustPanic(ft, "bad input", f)
		if !ft.failed {
			t.Errorf("%s: MustPanic passed", name)
		}
	}
}

// fakeT records a failure instead of failing the enclosing test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Errorf(string, ...any) { f.failed = true }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true }
func (f *fakeT) Helper()               {}
