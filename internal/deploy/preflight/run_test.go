package preflight_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

// A healthy account passes every check, one line each, and every AWS call
// is one of the read-only operations the stand-in serves (it answers any
// other with an error, which would show as a non-ok line).
func TestHealthyAccountPassesEveryCheck(t *testing.T) {
	s := world(t)
	rep := run(t, s, example(t))
	want := []string{
		"caller credentials",
		"eip-quota 111111111111/eu-west-1 (fleet euw1)",
		"eip-quota 111111111111/us-east-1 (fleet use1)",
		"endpoint-zones 111111111111/eu-west-1 (fleet euw1)",
		"endpoint-zones 111111111111/us-east-1 (fleet use1)",
		"bootstrap 111111111111/eu-west-1 (fleet euw1; DNS stack)",
		"bootstrap 111111111111/us-east-1 (fleet use1; DNS alarms stack)",
		"iot-logging 111111111111/eu-west-1 (fleet euw1)",
		"iot-audit 111111111111/eu-west-1 (fleet euw1)",
		"iot-logging 111111111111/us-east-1 (fleet use1)",
		"iot-audit 111111111111/us-east-1 (fleet use1)",
		"iot-endpoints 111111111111/eu-west-1",
		"iot-endpoints 111111111111/us-east-1",
		"hosted-zone 111111111111 Z0123456789EXAMPLE (DNS stack)",
	}
	var got []string
	for _, r := range rep {
		got = append(got, r.Check+" "+r.Scope)
		if r.Status != preflight.OK {
			t.Errorf("not ok: %s", r.Line())
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rep.ExitCode() != preflight.ExitOK {
		t.Errorf("exit code %d, want 0", rep.ExitCode())
	}
	expect(t, only(t, rep, preflight.CheckCaller, "credentials"), preflight.OK, "account 111111111111 (arn:aws:iam::111111111111:user/preflight)")
	expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.OK, "needs 4 Elastic IPs (2 static, 2 for NAT gateways); quota 5, 0 allocated, 5 free")
	expect(t, only(t, rep, preflight.CheckEndpointZones, "eu-west-1"), preflight.OK, "eu-west-1a, eu-west-1b offer iot.data and iot.credentials")
	expect(t, only(t, rep, preflight.CheckBootstrap, "us-east-1"), preflight.OK, "bootstrap version 27 (the templates need 6 or later)")
	expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.OK, "not configured; stack agentgate-euw1-identity will set it")
	expect(t, only(t, rep, preflight.CheckIoTAudit, "us-east-1"), preflight.OK, "not configured; stack agentgate-use1-identity will set it")
	expect(t, only(t, rep, preflight.CheckIoTEndpoints, "eu-west-1"), preflight.OK, "iot:Data-ATS a1b2c3d4e5-ats.iot.eu-west-1.amazonaws.com, iot:CredentialProvider c1d2e3f4.credentials.iot.eu-west-1.amazonaws.com")
	expect(t, only(t, rep, preflight.CheckHostedZone, "Z0123456789EXAMPLE"), preflight.OK, "public zone example.com holds agents.example.com")
}

// When the credentials are not accepted, one line says so and no other
// call is made.
func TestCallerRejectedStopsTheRun(t *testing.T) {
	s := world(t)
	s.SetFault("sts:GetCallerIdentity", preflightstandin.Denied)
	rep := run(t, s, example(t))
	if len(rep) != 1 {
		t.Fatalf("want 1 line, got %d", len(rep))
	}
	expect(t, rep[0], preflight.Unknown, "sts:GetCallerIdentity: AWS rejected the credentials (InvalidClientTokenId", "no other check ran", "Fix: refresh the credentials")
	if n := s.TotalCalls(); n != 1 {
		t.Errorf("%d calls, want only GetCallerIdentity", n)
	}
	if rep.ExitCode() != preflight.ExitUnknown {
		t.Errorf("exit code %d, want %d", rep.ExitCode(), preflight.ExitUnknown)
	}
}

func TestNoCredentials(t *testing.T) {
	s := world(t)
	cfg := s.AWSConfig(attempts)
	cfg.Credentials = nil
	rep := preflight.Run(t.Context(), preflight.Options{Config: example(t), AWS: cfg})
	if len(rep) != 1 {
		t.Fatalf("want 1 line, got %v", rep)
	}
	expect(t, rep[0], preflight.Unknown, "no AWS credentials configured", "Fix: configure credentials")
	if s.TotalCalls() != 0 {
		t.Errorf("%d calls without credentials", s.TotalCalls())
	}
}

// Credentials of another account check nothing of the configured account
// and say which account to use instead.
func TestOtherAccountIsNotChecked(t *testing.T) {
	s := preflightstandin.Start("222222222222")
	t.Cleanup(s.Close)
	healthy(s)
	rep := run(t, s, example(t))
	if len(rep) != 2 {
		t.Fatalf("want caller + account lines, got %d", len(rep))
	}
	expect(t, rep[0], preflight.OK, "account 222222222222")
	expect(t, rep[1], preflight.Unknown,
		"account        111111111111: not checked (eu-west-1: fleet euw1, DNS stack; us-east-1: fleet use1, DNS alarms stack): these credentials belong to account 222222222222",
		"Fix: run preflight again with credentials of account 111111111111")
	if rep.ExitCode() != preflight.ExitUnknown {
		t.Errorf("exit code %d, want %d", rep.ExitCode(), preflight.ExitUnknown)
	}
	if n := s.TotalCalls(); n != 1 {
		t.Errorf("%d calls, want only GetCallerIdentity", n)
	}
}

// The DNS stacks may live in another account than the fleets (the only
// split the configuration allows): that account is reported once, with
// what lives there; the fleets are checked.
func TestDNSInAnotherAccount(t *testing.T) {
	s := world(t)
	cfg := decode(t, strings.Replace(exampleJSON, `"healthSni": "health.agents.example.com"`, `"healthSni": "health.agents.example.com", "account": "333333333333"`, 1))
	rep := run(t, s, cfg)
	expect(t, only(t, rep, preflight.CheckAccount, "333333333333"), preflight.Unknown,
		"not checked (eu-west-1: DNS stack; us-east-1: DNS alarms stack): these credentials belong to account 111111111111",
		"Fix: run preflight again with credentials of account 333333333333")
	only(t, rep, preflight.CheckEIPQuota, "eu-west-1")
	expect(t, only(t, rep, preflight.CheckBootstrap, "111111111111/us-east-1"), preflight.OK, "(fleet use1)")
	for _, r := range rep {
		if r.Check == preflight.CheckHostedZone || strings.Contains(r.Scope, "DNS") {
			t.Errorf("the DNS account was checked with the fleets' credentials: %s", r.Line())
		}
	}
	if rep.ExitCode() != preflight.ExitUnknown {
		t.Errorf("exit code %d, want %d", rep.ExitCode(), preflight.ExitUnknown)
	}
}

// A DNS stack in its own region adds that region's bootstrap check.
func TestDNSRegionIsBootstrapChecked(t *testing.T) {
	s := world(t)
	cfg := decode(t, strings.Replace(exampleJSON, `"healthSni": "health.agents.example.com"`, `"healthSni": "health.agents.example.com", "region": "eu-central-1"`, 1))
	rep := run(t, s, cfg)
	expect(t, only(t, rep, preflight.CheckBootstrap, "eu-central-1"), preflight.Fail,
		"111111111111/eu-central-1 (DNS stack): not bootstrapped: SSM parameter /cdk-bootstrap/hnb659fds/version does not exist",
		"Fix: npx cdk bootstrap aws://111111111111/eu-central-1")
}

// Network failures and calls that get no answer in time are reported, not
// raised.
func TestNetworkErrorAndTimeout(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		s := world(t)
		cfg := s.AWSConfig(attempts)
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		cfg.BaseEndpoint = aws.String(dead.URL)
		rep := runWith(t, s, preflight.Options{Config: example(t), AWS: cfg})
		expect(t, rep[0], preflight.Unknown, "sts:GetCallerIdentity: network error after 3 attempts (dial tcp", "Fix: check network access to AWS")
	})
	t.Run("no answer", func(t *testing.T) {
		s := world(t)
		// The server notices the client hanging up only once it has read
		// the request body; then the handler returns.
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}))
		t.Cleanup(hang.Close)
		cfg := s.AWSConfig(1)
		cfg.BaseEndpoint = aws.String(hang.URL)
		rep := runWith(t, s, preflight.Options{Config: example(t), AWS: cfg, CallTimeout: 50 * time.Millisecond})
		expect(t, rep[0], preflight.Unknown, "sts:GetCallerIdentity: no answer in time")
	})
}

func TestExitCode(t *testing.T) {
	r := func(s preflight.Status) preflight.Result { return preflight.Result{Status: s} }
	for _, tc := range []struct {
		rep  preflight.Report
		want int
	}{
		{nil, preflight.ExitOK},
		{preflight.Report{r(preflight.OK), r(preflight.Warn)}, preflight.ExitOK},
		{preflight.Report{r(preflight.OK), r(preflight.Unknown)}, preflight.ExitUnknown},
		{preflight.Report{r(preflight.Unknown), r(preflight.Fail), r(preflight.OK)}, preflight.ExitFail},
		{preflight.Report{r(preflight.Fail), r(preflight.Unknown)}, preflight.ExitFail},
	} {
		if got := tc.rep.ExitCode(); got != tc.want {
			t.Errorf("%v: exit %d, want %d", tc.rep, got, tc.want)
		}
	}
}

func TestLineIsOneBoundedLine(t *testing.T) {
	r := preflight.Result{Check: "x", Scope: "s\r\n", Status: preflight.Fail,
		Message: "a\nb\tc\x00d" + strings.Repeat("y", 5000), Fix: "do\nthis"}
	line := r.Line()
	if strings.ContainsAny(line, "\n\r\t\x00") {
		t.Errorf("control characters left: %q", line)
	}
	if !strings.HasPrefix(line, "FAIL    x              s: a b c d") || !strings.HasSuffix(line, "…. Fix: do this") {
		t.Errorf("line = %q", line)
	}
	if len(line) > 2000 {
		t.Errorf("line is %d bytes", len(line))
	}
}
