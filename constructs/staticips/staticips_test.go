package staticips_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/staticips"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

func TestMain(m *testing.M) { cdktest.Main(m) }

func newStack(t *testing.T) awscdk.Stack {
	t.Helper()
	return awscdk.NewStack(cdktest.NewApp(), jsii.String("Test"), &awscdk.StackProps{Env: cdktest.TestEnv})
}

func TestMinimalUseRetainsEveryAddress(t *testing.T) {
	stack := newStack(t)
	ips := staticips.New(stack, jsii.String("Ips"), &staticips.Props{Count: jsii.Number(3)})
	tmpl := cdktest.Template(t, stack)
	if got := len(cdktest.LogicalIDs(t, tmpl, "AWS::EC2::EIP")); got != 3 {
		t.Fatalf("%d EIPs, want 3", got)
	}
	cdktest.Must(t, func() {
		tmpl.AllResources(jsii.String("AWS::EC2::EIP"), map[string]any{
			"DeletionPolicy":      "Retain",
			"UpdateReplacePolicy": "Retain",
		})
	})
	if len(ips.Addresses()) != 3 || len(ips.AllocationIDs()) != 3 {
		t.Errorf("Addresses/AllocationIDs lengths %d/%d, want 3", len(ips.Addresses()), len(ips.AllocationIDs()))
	}
	cdktest.NoNagFindings(t, stack)
}

// Construct IDs are API: Address1..N in order, so adding an address never
// renames an existing one.
func TestGrowingTheSetKeepsExistingIDs(t *testing.T) {
	ids := func(n float64) []string {
		stack := newStack(t)
		staticips.New(stack, jsii.String("Ips"), &staticips.Props{Count: jsii.Number(n)})
		return cdktest.LogicalIDs(t, cdktest.Template(t, stack), "AWS::EC2::EIP")
	}
	two, three := ids(2), ids(3)
	for _, id := range two {
		if !strings.Contains(strings.Join(three, ","), id) {
			t.Errorf("growing from 2 to 3 addresses drops %s (would release an allowlisted IP)", id)
		}
	}
}

func TestNotRetainingWarns(t *testing.T) {
	stack := newStack(t)
	staticips.New(stack, jsii.String("Ips"), &staticips.Props{Count: jsii.Number(1), RemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	cdktest.Template(t, stack)
	ann := assertions.Annotations_FromStack(stack)
	if got := len(*ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("not retained")))); got != 1 {
		t.Errorf("%d warnings about unretained addresses, want 1", got)
	}
}

func TestMisusePanicsWithTheFix(t *testing.T) {
	cases := map[string]struct {
		props *staticips.Props
		want  string
	}{
		"nil props": {nil, "Count is required"},
		"no count":  {&staticips.Props{}, "Count is required"},
		"zero":      {&staticips.Props{Count: jsii.Number(0)}, "Count 0 must be a whole number from 1 to 24"},
		"fraction":  {&staticips.Props{Count: jsii.Number(1.5)}, "Count 1.5 must be"},
		"too many":  {&staticips.Props{Count: jsii.Number(25)}, "Count 25 must be"},
		"negative":  {&staticips.Props{Count: jsii.Number(-1)}, "Count -1 must be"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cdktest.MustPanic(t, tc.want, func() { staticips.New(newStack(t), jsii.String("Ips"), tc.props) })
		})
	}
}
