package preflight_test

import (
	"strings"
	"testing"

	"github.com/agentgate/agentgate/internal/deploy/preflight"
	"github.com/agentgate/agentgate/internal/testkit/preflightstandin"
)

func foreignAddresses(n int) []preflightstandin.Address {
	out := make([]preflightstandin.Address, n)
	for i := range out {
		out[i] = preflightstandin.Address{PublicIP: "203.0.113." + string(rune('1'+i)), AllocationID: "eipalloc-other" + string(rune('a'+i)),
			Tags: map[string]string{"Name": "someone-else"}}
	}
	return out
}

func TestEIPQuota(t *testing.T) {
	t.Run("too few free", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Addresses = foreignAddresses(3)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.Fail,
			"needs 4 Elastic IPs (2 static, 2 for NAT gateways); 4 new ones do not fit: quota 5, 3 allocated, 2 free",
			"Fix: raise the EC2-VPC Elastic IPs quota to at least 7: aws service-quotas request-service-quota-increase --service-code ec2 --quota-code L-0263D0A3 --desired-value 7 --region eu-west-1",
			"aws ec2 describe-addresses --region eu-west-1")
		expect(t, only(t, rep, preflight.CheckEIPQuota, "us-east-1"), preflight.OK)
		if rep.ExitCode() != preflight.ExitFail {
			t.Errorf("exit %d, want 1", rep.ExitCode())
		}
	})
	t.Run("re-deploy reuses the app's own addresses", func(t *testing.T) {
		s := world(t)
		ours := []preflightstandin.Address{
			{PublicIP: "198.51.100.1", AllocationID: "eipalloc-1", Tags: map[string]string{"aws:cloudformation:stack-name": "agentgate-euw1-addresses", "Name": "agentgate-euw1-1"}},
			{PublicIP: "198.51.100.2", AllocationID: "eipalloc-2", Tags: map[string]string{"agentgate:project": "agentgate", "Name": "agentgate-euw1-2"}},
			{PublicIP: "198.51.100.3", AllocationID: "eipalloc-3", Tags: map[string]string{"aws:cloudformation:stack-name": "agentgate-euw1-network"}},
			{PublicIP: "198.51.100.4", AllocationID: "eipalloc-4", Tags: map[string]string{"agentgate:project": "agentgate", "Name": "agentgate-euw1-network/Network/Resource/EdgeSubnet2"}},
		}
		s.Region("eu-west-1").Addresses = append(ours, foreignAddresses(1)...)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.OK,
			"4 of them already allocated by this app's stacks; quota 5, 5 allocated, 0 free")
	})
	t.Run("look-alikes are not the app's", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Addresses = []preflightstandin.Address{
			// another project's stack, a Name without the project tag, another fleet
			{PublicIP: "198.51.100.1", Tags: map[string]string{"aws:cloudformation:stack-name": "other-euw1-addresses", "agentgate:project": "agentgate", "Name": "agentgate-euw1-1"}},
			{PublicIP: "198.51.100.2", Tags: map[string]string{"Name": "agentgate-euw1-2"}},
			{PublicIP: "198.51.100.3", Tags: map[string]string{"agentgate:project": "agentgate", "Name": "agentgate-use1-1"}},
		}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.Fail, "4 new ones do not fit: quota 5, 3 allocated, 2 free")
	})
	t.Run("EC2-Classic addresses do not count", func(t *testing.T) {
		s := world(t)
		classic := foreignAddresses(3)
		for i := range classic {
			classic[i].Domain = "standard"
		}
		s.Region("eu-west-1").Addresses = classic
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.OK, "quota 5, 0 allocated, 5 free")
	})
	t.Run("raised quota", func(t *testing.T) {
		s := world(t)
		twenty := 20.0
		s.Region("eu-west-1").EIPQuota = &twenty
		s.Region("eu-west-1").Addresses = foreignAddresses(5)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.OK, "quota 20, 5 allocated, 15 free")
	})
	t.Run("no applied value: the AWS default", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").EIPQuota = nil
		s.Region("eu-west-1").DefaultEIPQuota = 5
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.OK, "quota 5 (the AWS default; no applied value)")
		if s.Calls("servicequotas:GetAWSDefaultServiceQuota") != 1 {
			t.Errorf("GetAWSDefaultServiceQuota called %d times, want 1", s.Calls("servicequotas:GetAWSDefaultServiceQuota"))
		}
	})
	t.Run("quota unreadable and too few at the default", func(t *testing.T) {
		s := world(t)
		s.SetFault("servicequotas:GetServiceQuota", preflightstandin.Denied)
		s.Region("eu-west-1").Addresses = foreignAddresses(2)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.Fail,
			"quota 5 (assumed: the documented default; could not read it: servicequotas:GetServiceQuota was denied", "--desired-value 6")
	})
	t.Run("nonsense quota value", func(t *testing.T) {
		s := world(t)
		neg := -3.0
		s.Region("eu-west-1").EIPQuota = &neg
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEIPQuota, "eu-west-1"), preflight.Warn, "quota 5 (assumed", "malformed answer from AWS (no usable quota value in the answer)")
	})
}

func TestEndpointZones(t *testing.T) {
	data := preflight.EndpointServiceName("eu-west-1", "iot.data")
	creds := preflight.EndpointServiceName("eu-west-1", "iot.credentials")
	t.Run("a zone lacks a service", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").EndpointServices[creds] = []string{"eu-west-1a", "eu-west-1c"}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEndpointZones, "euw1"), preflight.Fail,
			"eu-west-1b lacks com.amazonaws.eu-west-1.iot.credentials (offered in eu-west-1a, eu-west-1c)",
			"Fix: set fleets[0].availabilityZones to zones offering both services: eu-west-1a, eu-west-1c.")
	})
	t.Run("both services lack zones", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").EndpointServices[data] = []string{"eu-west-1b", "eu-west-1c"}
		s.Region("eu-west-1").EndpointServices[creds] = []string{"eu-west-1a", "eu-west-1c"}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEndpointZones, "euw1"), preflight.Fail,
			"eu-west-1a lacks com.amazonaws.eu-west-1.iot.data (offered in eu-west-1b, eu-west-1c); eu-west-1b lacks com.amazonaws.eu-west-1.iot.credentials",
			"only 1 zone(s) of eu-west-1 offer both services (eu-west-1c) and the design needs two; place fleet euw1 in another region.")
	})
	t.Run("the region does not offer a service", func(t *testing.T) {
		s := world(t)
		delete(s.Region("us-east-1").EndpointServices, preflight.EndpointServiceName("us-east-1", "iot.credentials"))
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckEndpointZones, "use1"), preflight.Fail,
			"us-east-1 does not offer com.amazonaws.us-east-1.iot.credentials as a VPC endpoint service",
			"Fix: move fleet use1 to a region that offers both iot.data and iot.credentials")
	})
}

func TestBootstrap(t *testing.T) {
	param := preflight.BootstrapParameter(preflight.DefaultQualifier)
	t.Run("us-east-1 not bootstrapped", func(t *testing.T) {
		s := world(t)
		delete(s.Region("us-east-1").Parameters, param)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckBootstrap, "us-east-1"), preflight.Fail,
			"111111111111/us-east-1 (fleet use1; DNS alarms stack): not bootstrapped: SSM parameter /cdk-bootstrap/hnb659fds/version does not exist",
			"Fix: npx cdk bootstrap aws://111111111111/us-east-1 (from the repository root")
	})
	t.Run("too old", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Parameters[param] = "5"
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckBootstrap, "eu-west-1"), preflight.Fail,
			"bootstrap version 5 is too old: the templates need 6 or later", "Fix: npx cdk bootstrap aws://111111111111/eu-west-1 (upgrades")
	})
	t.Run("exactly the minimum", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Parameters[param] = "6"
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckBootstrap, "eu-west-1"), preflight.OK, "bootstrap version 6")
	})
	t.Run("custom qualifier", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Parameters[preflight.BootstrapParameter("agentgt1")] = "27"
		rep := runWith(t, s, preflight.Options{Config: example(t), Qualifier: "agentgt1"})
		expect(t, only(t, rep, preflight.CheckBootstrap, "eu-west-1"), preflight.OK)
		expect(t, only(t, rep, preflight.CheckBootstrap, "us-east-1"), preflight.Fail,
			"/cdk-bootstrap/agentgt1/version does not exist", "npx cdk bootstrap aws://111111111111/us-east-1 --qualifier agentgt1")
	})
	t.Run("not a number", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Parameters[param] = "six"
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckBootstrap, "eu-west-1"), preflight.Unknown,
			`ssm:GetParameter: malformed answer from AWS (/cdk-bootstrap/hnb659fds/version is "six", not a version number)`)
	})
}

const theirRole = "arn:aws:iam::111111111111:role/SomeoneElsesIoTLogging"

func TestIoTLogging(t *testing.T) {
	configured := func(s *preflightstandin.Server) {
		s.Region("eu-west-1").Logging = &preflightstandin.Logging{RoleArn: theirRole, DefaultLogLevel: "INFO"}
	}
	t.Run("owned elsewhere", func(t *testing.T) {
		s := world(t)
		configured(s)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.Fail,
			"IoT logging is already configured here (role "+theirRole+", default level INFO), not by stack agentgate-euw1-identity: creating its AWS::IoT::Logging fails with AlreadyExists",
			"Fix: set identity.manageIotLogging to false in the deployment configuration, so agentgate leaves IoT logging as it is. Or, to let agentgate own it,",
			"aws iot get-v2-logging-options --region eu-west-1", "aws iot set-v2-logging-options --disable-all-logs --region eu-west-1")
		if n := s.Calls("cloudformation:ListStackResources"); n != 1 {
			t.Errorf("ListStackResources called %d times, want 1", n)
		}
	})
	t.Run("the identity stack exists but does not hold it", func(t *testing.T) {
		s := world(t)
		configured(s)
		s.Region("eu-west-1").Stacks["agentgate-euw1-identity"] = []preflightstandin.StackResource{
			{LogicalID: "IdentityRole", Type: "AWS::IAM::Role", Status: "CREATE_COMPLETE"},
			{LogicalID: "IdentityLogging", Type: "AWS::IoT::Logging", Status: "DELETE_COMPLETE"},
		}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.Fail, "not by stack agentgate-euw1-identity")
	})
	t.Run("set by the identity stack (re-deploy)", func(t *testing.T) {
		s := world(t)
		configured(s)
		s.StackPageSize = 1 // the Logging resource is on the third page
		s.Region("eu-west-1").Stacks["agentgate-euw1-identity"] = []preflightstandin.StackResource{
			{LogicalID: "IdentityRole", Type: "AWS::IAM::Role", Status: "CREATE_COMPLETE"},
			{LogicalID: "IdentityAuditRole", Type: "AWS::IAM::Role", Status: "CREATE_COMPLETE"},
			{LogicalID: "IdentityLogging", Type: "AWS::IoT::Logging", Status: "UPDATE_COMPLETE"},
		}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.OK, "configured by stack agentgate-euw1-identity (role "+theirRole)
		if n := s.Calls("cloudformation:ListStackResources"); n != 3 {
			t.Errorf("ListStackResources called %d times, want 3 pages", n)
		}
	})
	t.Run("configured with all logs disabled", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Logging = &preflightstandin.Logging{RoleArn: theirRole, DefaultLogLevel: "DISABLED", DisableAllLogs: true}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.OK, "configured with all logs disabled", "takes it over")
		if n := s.Calls("cloudformation:ListStackResources"); n != 0 {
			t.Errorf("ListStackResources called %d times; not needed", n)
		}
	})
}

func TestIoTAudit(t *testing.T) {
	const auditRole = "arn:aws:iam::111111111111:role/SecurityTeamAudit"
	t.Run("owned elsewhere", func(t *testing.T) {
		s := world(t)
		s.Region("us-east-1").AuditRoleArn = auditRole
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTAudit, "us-east-1"), preflight.Fail,
			"Device Defender audit is already configured here (role "+auditRole+"), not by stack agentgate-use1-identity: creating its AWS::IoT::AccountAuditConfiguration fails with AlreadyExists",
			"Fix: set identity.manageDeviceDefenderAudit to false in the deployment configuration, so agentgate leaves the audit configuration as it is. Or, to let agentgate own it,",
			"aws iot describe-account-audit-configuration --region us-east-1", "aws iot delete-account-audit-configuration --region us-east-1")
		expect(t, only(t, rep, preflight.CheckIoTAudit, "eu-west-1"), preflight.OK)
	})
	t.Run("set by the identity stack", func(t *testing.T) {
		s := world(t)
		s.Region("us-east-1").AuditRoleArn = auditRole
		s.Region("us-east-1").Stacks["agentgate-use1-identity"] = []preflightstandin.StackResource{
			{LogicalID: "IdentityAccountAudit", Type: "AWS::IoT::AccountAuditConfiguration", Status: "CREATE_COMPLETE"},
		}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTAudit, "us-east-1"), preflight.OK, "configured by stack agentgate-use1-identity")
	})
	t.Run("stack being created does not own it yet", func(t *testing.T) {
		s := world(t)
		s.Region("us-east-1").AuditRoleArn = auditRole
		s.Region("us-east-1").Stacks["agentgate-use1-identity"] = []preflightstandin.StackResource{
			{LogicalID: "IdentityAccountAudit", Type: "AWS::IoT::AccountAuditConfiguration", Status: "CREATE_FAILED"},
		}
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTAudit, "us-east-1"), preflight.Fail)
	})
}

// withIdentity is exampleJSON with an identity section.
func withIdentity(identity string) string {
	return strings.Replace(exampleJSON, `"fleets": [`, `"identity": `+identity+`,
  "fleets": [`, 1)
}

// With identity.manageIotLogging / identity.manageDeviceDefenderAudit
// false the identity stacks create no such singleton, so an existing one
// owned by someone else is not in the way: the check says so without
// calling anything; the other switch's check runs as before.
func TestUnmanagedSingletons(t *testing.T) {
	const auditRole = "arn:aws:iam::111111111111:role/SecurityTeamAudit"
	owned := func(s *preflightstandin.Server) {
		for _, region := range []string{"eu-west-1", "us-east-1"} {
			s.Region(region).Logging = &preflightstandin.Logging{RoleArn: theirRole, DefaultLogLevel: "INFO"}
			s.Region(region).AuditRoleArn = auditRole
		}
	}
	t.Run("neither managed", func(t *testing.T) {
		s := world(t)
		owned(s)
		rep := run(t, s, decode(t, withIdentity(`{"manageIotLogging": false, "manageDeviceDefenderAudit": false}`)))
		for _, region := range []string{"eu-west-1", "us-east-1"} {
			expect(t, only(t, rep, preflight.CheckIoTLogging, region), preflight.OK, "left as it is (not managed by agentgate: identity.manageIotLogging = false)")
			expect(t, only(t, rep, preflight.CheckIoTAudit, region), preflight.OK, "left as it is (not managed by agentgate: identity.manageDeviceDefenderAudit = false)")
		}
		for _, op := range []string{"iot:GetV2LoggingOptions", "iot:DescribeAccountAuditConfiguration", "cloudformation:ListStackResources"} {
			if n := s.Calls(op); n != 0 {
				t.Errorf("%s called %d times for singletons agentgate does not manage", op, n)
			}
		}
		if rep.ExitCode() != preflight.ExitOK {
			t.Errorf("exit %d, want 0", rep.ExitCode())
		}
	})
	t.Run("audit managed, logging not", func(t *testing.T) {
		s := world(t)
		owned(s)
		rep := run(t, s, decode(t, withIdentity(`{"manageIotLogging": false}`)))
		expect(t, only(t, rep, preflight.CheckIoTLogging, "eu-west-1"), preflight.OK, "identity.manageIotLogging = false")
		expect(t, only(t, rep, preflight.CheckIoTAudit, "eu-west-1"), preflight.Fail, "Device Defender audit is already configured here", "set identity.manageDeviceDefenderAudit to false")
		if n := s.Calls("iot:GetV2LoggingOptions"); n != 0 {
			t.Errorf("GetV2LoggingOptions called %d times", n)
		}
	})
}

func TestHostedZone(t *testing.T) {
	for _, tc := range []struct {
		name   string
		zone   preflightstandin.HostedZone
		status preflight.Status
		want   []string
	}{
		{"missing", preflightstandin.HostedZone{ID: "ZOTHER", Name: "example.com."}, preflight.Fail,
			[]string{"account 111111111111 has no hosted zone Z0123456789EXAMPLE (NoSuchHostedZone)", "Fix: set dns.hostedZoneId to the ID of the public hosted zone of example.com (aws route53 list-hosted-zones-by-name --dns-name example.com --max-items 1)."}},
		{"private", preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "example.com.", Private: true}, preflight.Fail,
			[]string{"Z0123456789EXAMPLE (example.com) is a private hosted zone", "Fix: set dns.hostedZoneId"}},
		{"other name", preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "example.org."}, preflight.Fail,
			[]string{"hosted zone Z0123456789EXAMPLE is example.org, but dns.zoneName is example.com", "Fix: set dns.zoneName to example.org, or set dns.hostedZoneId"}},
		{"a parent of the configured zone", preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "com."}, preflight.Fail,
			[]string{"hosted zone Z0123456789EXAMPLE is com, but dns.zoneName is example.com"}},
		{"case and trailing dot do not matter", preflightstandin.HostedZone{ID: "Z0123456789EXAMPLE", Name: "Example.COM."}, preflight.OK,
			[]string{"public zone example.com holds agents.example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := preflightstandin.Start(account)
			t.Cleanup(s.Close)
			healthy(s)
			s.RemoveHostedZone("Z0123456789EXAMPLE")
			s.AddHostedZone(tc.zone)
			rep := run(t, s, example(t))
			expect(t, only(t, rep, preflight.CheckHostedZone, "Z0123456789EXAMPLE"), tc.status, tc.want...)
		})
	}
}

func TestIoTEndpoints(t *testing.T) {
	t.Run("not a host name", func(t *testing.T) {
		s := world(t)
		s.Region("eu-west-1").Endpoints[preflight.EndpointCredentialProvider] = "not a host; rm -rf /"
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTEndpoints, "eu-west-1"), preflight.Unknown,
			`iot:DescribeEndpoint: malformed answer from AWS (endpoint address "not a host; rm -rf /" is not a host name) (endpointType iot:CredentialProvider)`)
	})
	// The edge stack's lookup runs under its own role: only a service
	// control policy, which binds every principal of the account, makes a
	// denial here a denial there.
	t.Run("a permission these credentials lack is unknown", func(t *testing.T) {
		s := world(t)
		s.SetFault("iot:DescribeEndpoint", preflightstandin.Denied)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTEndpoints, "eu-west-1"), preflight.Unknown,
			"could not check: iot:DescribeEndpoint was denied (AccessDeniedException: User: arn:aws:iam::111111111111:user/preflight is not authorized to perform: iot:DescribeEndpoint because no identity-based policy allows",
			"(endpointType iot:Data-ATS); these credentials lack it, but the edge stack looks the endpoints up at deploy time under its own role, which it grants iot:DescribeEndpoint, so this says nothing about the deploy",
			"Fix: allow iot:DescribeEndpoint for these credentials")
	})
	t.Run("an explicit deny in the credentials' own policy is unknown", func(t *testing.T) {
		s := world(t)
		s.SetFault("iot:DescribeEndpoint", preflightstandin.DeniedExplicitly)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTEndpoints, "eu-west-1"), preflight.Unknown,
			"with an explicit deny in an identity-based policy", "under its own role", "Fix: allow iot:DescribeEndpoint for these credentials")
	})
	t.Run("a service control policy's deny is a failure", func(t *testing.T) {
		s := world(t)
		s.SetFault("iot:DescribeEndpoint", preflightstandin.DeniedBySCP)
		rep := run(t, s, example(t))
		expect(t, only(t, rep, preflight.CheckIoTEndpoints, "eu-west-1"), preflight.Fail,
			"iot:DescribeEndpoint was denied (AccessDeniedException: User: arn:aws:iam::111111111111:user/preflight is not authorized to perform: iot:DescribeEndpoint with an explicit deny in a service control policy)",
			"a service control policy denies it to every principal of the account, so the edge stack's lookup of the endpoints at deploy time fails too",
			"Fix: ask your organization's administrators to allow iot:DescribeEndpoint in eu-west-1 for account 111111111111 in the service control policies")
	})
}
