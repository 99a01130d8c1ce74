package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

// The end-to-end tests run this test binary again as the command (a real
// process with its own exit status), pointed at the stand-in with the SDK's
// own AWS_ENDPOINT_URL and credentials from the environment: the default
// credential chain, as a user's shell would provide it.
func TestMain(m *testing.M) {
	if os.Getenv("AGENTGATE_PREFLIGHT_AS_COMMAND") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const exampleConfig = "../../agentgate.example.json"

// healthy makes the stand-in an account where agentgate.example.json passes.
func healthy(s *preflightstandin.Server) {
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		r := s.Region(region)
		five := 5.0
		r.EIPQuota = &five
		zones := []string{region + "a", region + "b"}
		r.EndpointServices[preflight.EndpointServiceName(region, "iot.data")] = zones
		r.EndpointServices[preflight.EndpointServiceName(region, "iot.credentials")] = zones
		r.Parameters[preflight.BootstrapParameter(preflight.DefaultQualifier)] = "27"
		r.Endpoints[preflight.EndpointDataATS] = "a1b2c3-ats.iot." + region + ".amazonaws.com"
		r.Endpoints[preflight.EndpointCredentialProvider] = "c1d2e3.credentials.iot." + region + ".amazonaws.com"
	}
	s.AddHostedZone(preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "example.com."})
}

type result struct {
	code           int
	stdout, stderr string
}

// command runs the command with args against the stand-in s.
func command(t *testing.T, s *preflightstandin.Server, args ...string) result {
	t.Helper()
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-cdk-json", "../../cdk.json"}, args...)...)
	cmd.Env = []string{
		"AGENTGATE_PREFLIGHT_AS_COMMAND=1",
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_ENDPOINT_URL=" + s.URL,
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run: %v", err)
	}
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	return result{code, stdout.String(), stderr.String()}
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestCommandAllOK(t *testing.T) {
	s := preflightstandin.Start("111111111111")
	defer s.Close()
	healthy(s)
	r := command(t, s, "-config", exampleConfig)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0", r.code)
	}
	out := lines(r.stdout)
	if len(out) != 14 {
		t.Errorf("%d lines, want one per check (14)", len(out))
	}
	for _, l := range out {
		if !strings.HasPrefix(l, "ok ") {
			t.Errorf("not ok: %s", l)
		}
	}
	if !strings.Contains(r.stderr, "14 ok, 0 warn, 0 FAIL, 0 UNKNOWN") || !strings.Contains(r.stderr, "exit 0") {
		t.Errorf("summary missing from stderr: %s", r.stderr)
	}
}

func TestCommandFailsWithFixes(t *testing.T) {
	s := preflightstandin.Start("111111111111")
	defer s.Close()
	healthy(s)
	delete(s.Region("us-east-1").Parameters, preflight.BootstrapParameter(preflight.DefaultQualifier))
	s.Region("eu-west-1").Addresses = []preflightstandin.Address{{PublicIP: "203.0.113.1"}, {PublicIP: "203.0.113.2"}}
	s.SetFault("route53:GetHostedZone", preflightstandin.Denied)
	r := command(t, s, "-config", exampleConfig)
	if r.code != preflight.ExitFail {
		t.Fatalf("exit %d, want %d", r.code, preflight.ExitFail)
	}
	var fails, unknown int
	for _, l := range lines(r.stdout) {
		switch {
		case strings.HasPrefix(l, "FAIL "):
			fails++
			if !strings.Contains(l, " Fix: ") {
				t.Errorf("FAIL without a fix: %s", l)
			}
		case strings.HasPrefix(l, "UNKNOWN "):
			unknown++
		}
	}
	if fails != 2 || unknown != 1 {
		t.Errorf("%d FAIL and %d UNKNOWN lines, want 2 and 1", fails, unknown)
	}
	for _, want := range []string{
		"Fix: npx cdk bootstrap aws://111111111111/us-east-1",
		"--quota-code L-0263D0A3 --desired-value 6 --region eu-west-1",
		"UNKNOWN hosted-zone    111111111111 Z0123456789EXAMPLE (DNS stack): could not check: route53:GetHostedZone was denied (AccessDenied:",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestCommandOtherAccount(t *testing.T) {
	s := preflightstandin.Start("222222222222")
	defer s.Close()
	healthy(s)
	r := command(t, s, "-config", exampleConfig)
	if r.code != preflight.ExitUnknown {
		t.Fatalf("exit %d, want %d", r.code, preflight.ExitUnknown)
	}
	if !strings.Contains(r.stdout, "run preflight again with credentials of account 111111111111") {
		t.Errorf("no hint at the right account: %s", r.stdout)
	}
}

func TestCommandBadInput(t *testing.T) {
	s := preflightstandin.Start("111111111111")
	defer s.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"fleets": [{"name": "Bad Name"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	shared := strings.Replace(string(example), `"region": "us-east-1"`, `"region": "eu-west-1"`, 1)
	shared = strings.Replace(shared, `["us-east-1a", "us-east-1b"]`, `["eu-west-1a", "eu-west-1b"]`, 1)
	sharedRegion := filepath.Join(dir, "shared-region.json")
	if err := os.WriteFile(sharedRegion, []byte(shared), 0o600); err != nil {
		t.Fatal(err)
	}
	badCDK := filepath.Join(dir, "cdk.json")
	if err := os.WriteFile(badCDK, []byte(`{"context": {"@aws-cdk/core:bootstrapQualifier": "NO!"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"invalid config", []string{"-config", bad}, preflight.ExitFail, `fleets[0].name: "Bad Name"`},
		{"two fleets in one region", []string{"-config", sharedRegion}, preflight.ExitFail, `:42:17: fleets[1].region: "eu-west-1"; allowed: a region no other fleet uses`},
		{"missing config", []string{"-config", filepath.Join(dir, "none.json")}, preflight.ExitFail, "no such file"},
		{"bad qualifier", []string{"-config", exampleConfig, "-cdk-json", badCDK}, preflight.ExitFail, `bootstrap qualifier: ` + badCDK},
		{"unknown flag", []string{"-colour"}, preflight.ExitFail, "flag provided but not defined: -colour"},
		{"stray argument", []string{"agentgate.example.json"}, preflight.ExitFail, `unexpected argument "agentgate.example.json"`},
		{"help", []string{"-h"}, preflight.ExitOK, "-config file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := command(t, s, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d", r.code, tc.code)
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty: %q", r.stdout)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q", tc.want)
			}
		})
	}
	if n := s.TotalCalls(); n != 0 {
		t.Errorf("%d AWS calls for bad input", n)
	}
}
