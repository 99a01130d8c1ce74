package preflight_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

const account = "111111111111"

// exampleJSON is agentgate.example.json's shape: fleet euw1 in eu-west-1
// (the DNS stack's region too), standby fleet use1 in us-east-1.
const exampleJSON = `{
  "project": "agentgate",
  "dns": {"zoneName": "example.com", "hostedZoneId": "Z0123456789EXAMPLE", "recordName": "agents.example.com", "healthSni": "health.agents.example.com"},
  "fleets": [
    {"name": "euw1", "account": "111111111111", "region": "eu-west-1", "availabilityZones": ["eu-west-1a", "eu-west-1b"], "staticIpCount": 2, "weight": 100, "vpcCidr": "10.40.0.0/16"},
    {"name": "use1", "account": "111111111111", "region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1b"], "staticIpCount": 2, "weight": 0, "vpcCidr": "10.41.0.0/16"}
  ]
}`

func decode(t *testing.T, doc string) *deployconfig.Config {
	t.Helper()
	cfg, err := deployconfig.Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func example(t *testing.T) *deployconfig.Config { return decode(t, exampleJSON) }

// healthy makes s an account where the example config passes every check.
func healthy(s *preflightstandin.Server) {
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		r := s.Region(region)
		five := 5.0
		r.EIPQuota = &five
		zones := []string{region + "a", region + "b", region + "c"}
		r.EndpointServices[preflight.EndpointServiceName(region, "iot.data")] = zones
		r.EndpointServices[preflight.EndpointServiceName(region, "iot.credentials")] = zones
		r.Parameters[preflight.BootstrapParameter(preflight.DefaultQualifier)] = "27"
		r.Endpoints[preflight.EndpointDataATS] = "a1b2c3d4e5-ats.iot." + region + ".amazonaws.com"
		r.Endpoints[preflight.EndpointCredentialProvider] = "c1d2e3f4.credentials.iot." + region + ".amazonaws.com"
	}
	s.AddHostedZone(preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "example.com."})
}

// world starts a stand-in with the healthy example account.
func world(t *testing.T) *preflightstandin.Server {
	t.Helper()
	s := preflightstandin.Start(account)
	t.Cleanup(s.Close)
	healthy(s)
	return s
}

// attempts is how often the test clients try a call: throttled operations
// are answered this many times, without backoff delay.
const attempts = 3

func run(t *testing.T, s *preflightstandin.Server, cfg *deployconfig.Config) preflight.Report {
	t.Helper()
	return runWith(t, s, preflight.Options{Config: cfg})
}

func runWith(t *testing.T, s *preflightstandin.Server, opts preflight.Options) preflight.Report {
	t.Helper()
	if opts.AWS.Credentials == nil {
		opts.AWS = s.AWSConfig(attempts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep := preflight.Run(ctx, opts)
	for _, r := range rep {
		t.Log(r.Line())
	}
	return rep
}

// only returns the results of check whose scope contains scope; it fails
// the test unless there is exactly one.
func only(t *testing.T, rep preflight.Report, check, scope string) preflight.Result {
	t.Helper()
	var found []preflight.Result
	for _, r := range rep {
		if r.Check == check && strings.Contains(r.Scope, scope) {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s result for %q, got %d: %v", check, scope, len(found), found)
	}
	return found[0]
}

// expect checks status and that the line contains every fragment.
func expect(t *testing.T, r preflight.Result, status preflight.Status, fragments ...string) {
	t.Helper()
	line := r.Line()
	if r.Status != status {
		t.Errorf("%s %s: status %v, want %v: %s", r.Check, r.Scope, r.Status, status, line)
	}
	for _, f := range fragments {
		if !strings.Contains(line, f) {
			t.Errorf("%s %s: line lacks %q:\n%s", r.Check, r.Scope, f, line)
		}
	}
	if strings.ContainsAny(line, "\n\r") {
		t.Errorf("line is not one line: %q", line)
	}
}
