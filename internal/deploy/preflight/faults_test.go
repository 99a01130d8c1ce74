package preflight_test

import (
	"testing"

	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

// Every AWS call preflight makes, failed every way AWS (or a broken path to
// it) can fail it: the check's line says which call and why, with a fix;
// nothing panics; the other checks still run.
func TestEveryCallFailedEveryWay(t *testing.T) {
	// Faults replace successful answers: these calls need state that
	// answers 200 (configured logging; an existing identity stack).
	loggingElsewhere := func(s *preflightstandin.Server) {
		s.Region("eu-west-1").Logging = &preflightstandin.Logging{RoleArn: "arn:aws:iam::111111111111:role/theirs", DefaultLogLevel: "INFO"}
	}
	identityStack := func(s *preflightstandin.Server) {
		loggingElsewhere(s)
		s.Region("eu-west-1").Stacks["agentgate-euw1-identity"] = []preflightstandin.StackResource{{LogicalID: "IdentityRole", Type: "AWS::IAM::Role", Status: "CREATE_COMPLETE"}}
	}
	calls := []struct {
		op, check, scope string
		setup            func(*preflightstandin.Server)
		deniedCode       string
		// status of the line when the call fails; the Elastic IP quota
		// falls back to the documented default (warn).
		status, deniedStatus preflight.Status
		throttleCode         string
	}{
		{"ec2:DescribeAddresses", preflight.CheckEIPQuota, "eu-west-1", nil, "UnauthorizedOperation", preflight.Unknown, preflight.Unknown, "RequestLimitExceeded"},
		{"servicequotas:GetServiceQuota", preflight.CheckEIPQuota, "eu-west-1", nil, "AccessDeniedException", preflight.Warn, preflight.Warn, "TooManyRequestsException"},
		{"ec2:DescribeVpcEndpointServices", preflight.CheckEndpointZones, "eu-west-1", nil, "UnauthorizedOperation", preflight.Unknown, preflight.Unknown, "RequestLimitExceeded"},
		{"ssm:GetParameter", preflight.CheckBootstrap, "us-east-1", nil, "AccessDeniedException", preflight.Unknown, preflight.Unknown, "ThrottlingException"},
		{"iot:GetV2LoggingOptions", preflight.CheckIoTLogging, "eu-west-1", loggingElsewhere, "AccessDeniedException", preflight.Unknown, preflight.Unknown, "ThrottlingException"},
		{"iot:DescribeAccountAuditConfiguration", preflight.CheckIoTAudit, "eu-west-1", nil, "AccessDeniedException", preflight.Unknown, preflight.Unknown, "ThrottlingException"},
		{"cloudformation:ListStackResources", preflight.CheckIoTLogging, "eu-west-1", identityStack, "AccessDenied", preflight.Unknown, preflight.Unknown, "Throttling"},
		{"iot:DescribeEndpoint", preflight.CheckIoTEndpoints, "eu-west-1", nil, "AccessDeniedException", preflight.Unknown, preflight.Unknown, "ThrottlingException"},
		{"route53:GetHostedZone", preflight.CheckHostedZone, "Z0123456789EXAMPLE", nil, "AccessDenied", preflight.Unknown, preflight.Unknown, "Throttling"},
		{"sts:GetCallerIdentity", preflight.CheckCaller, "credentials", nil, "InvalidClientTokenId", preflight.Unknown, preflight.Unknown, "Throttling"},
	}
	for _, c := range calls {
		for _, fault := range []preflightstandin.Fault{preflightstandin.Denied, preflightstandin.Throttled, preflightstandin.Truncated, preflightstandin.Garbage, preflightstandin.Oversize} {
			t.Run(c.op+"/"+string(fault), func(t *testing.T) {
				s := world(t)
				if c.setup != nil {
					c.setup(s)
				}
				s.SetFault(c.op, fault)
				rep := run(t, s, example(t))
				r := only(t, rep, c.check, c.scope)
				status := c.status
				var fragments []string
				switch fault {
				case preflightstandin.Denied:
					status = c.deniedStatus
					if c.op == "sts:GetCallerIdentity" {
						fragments = []string{"AWS rejected the credentials (InvalidClientTokenId", "Fix: refresh the credentials"}
					} else {
						fragments = []string{c.op + " was denied (" + c.deniedCode + ": ", "User: arn:aws:iam::111111111111:user/preflight is not authorized to perform: " + c.op}
						if status == preflight.Warn {
							break // the fallback explains itself; the fix is the quota's own
						}
						fragments = append(fragments, "Fix: allow "+c.op+" for these credentials")
					}
				case preflightstandin.Throttled:
					fragments = []string{"was throttled after 3 attempts (" + c.throttleCode + ")"}
					if n := s.Calls(c.op); n == 0 || n%attempts != 0 {
						t.Errorf("%s answered %d times; every call should have been tried %d times", c.op, n, attempts)
					}
					if status == preflight.Unknown {
						fragments = append(fragments, "Fix: run preflight again in a minute")
					}
				default:
					fragments = []string{"malformed answer from AWS ("}
					switch fault {
					case preflightstandin.Garbage:
						fragments = append(fragments, "the body is not ")
					case preflightstandin.Oversize:
						fragments = append(fragments, "the answer is larger than 8388608 bytes")
					}
					if status == preflight.Unknown {
						fragments = append(fragments, "Fix: run preflight again; if it persists, check for a proxy or endpoint override")
					}
				}
				if status == preflight.Warn {
					fragments = append(fragments, "quota 5 (assumed: the documented default; could not read it:")
				}
				expect(t, r, status, append(fragments, c.op)...)
				if c.check != preflight.CheckCaller && len(rep) < 10 {
					t.Errorf("only %d lines: a failed call must not stop the other checks", len(rep))
				}
			})
		}
	}
}
