package preflight

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/agentgate/agentgate/constructs/endpointdiscovery"
	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
	"github.com/agentgate/agentgate/stacks"
)

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// contractConfig has a fleet of three zones (three NAT gateways) with
// three static addresses, and a standby fleet of two zones.
const contractConfig = `{
  "project": "agentgate",
  "dns": {"zoneName": "example.com", "hostedZoneId": "Z0123456789EXAMPLE", "recordName": "agents.example.com", "healthSni": "health.agents.example.com", "region": "eu-central-1"},
  "fleets": [
    {"name": "euw1", "account": "111111111111", "region": "eu-west-1", "availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"], "staticIpCount": 3, "weight": 100},
    {"name": "use1", "account": "111111111111", "region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1b"], "weight": 0, "vpcCidr": "10.41.0.0/16"}
  ]
}`

type manifest struct {
	Artifacts map[string]struct {
		Type        string `json:"type"`
		Environment string `json:"environment"`
		Properties  struct {
			TemplateFile                  string `json:"templateFile"`
			RequiresBootstrapStackVersion int    `json:"requiresBootstrapStackVersion"`
		} `json:"properties"`
	} `json:"artifacts"`
}

type template struct {
	Parameters map[string]struct {
		Default string `json:"Default"`
	} `json:"Parameters"`
	Rules     map[string]json.RawMessage `json:"Rules"`
	Resources map[string]struct {
		Type       string `json:"Type"`
		Properties struct {
			Tags []struct{ Key, Value string } `json:"Tags"`
		} `json:"Properties"`
	} `json:"Resources"`
}

// TestCDKContract synthesizes the app with the pinned CDK and checks every
// fact preflight assumes about it: which environments stacks deploy to,
// the bootstrap version and parameter the templates require, how many
// Elastic IPs and NAT gateways a fleet allocates and how they are tagged,
// that the identity stack holds the IoT singletons, and the endpoint types
// the edge stack discovers.
func TestCDKContract(t *testing.T) {
	cfg, err := deployconfig.Decode(strings.NewReader(contractConfig))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := map[string]any{"aws:cdk:bundling-stacks": []string{}}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir), Context: &ctx})
	stacks.Build(app, cfg)
	app.Synth(nil)

	var m manifest
	readJSON(t, filepath.Join(dir, "manifest.json"), &m)
	envs := map[string]bool{}
	templates := map[string]template{}
	for name, a := range m.Artifacts {
		if a.Type != "aws:cloudformation:stack" {
			continue
		}
		envs[strings.TrimPrefix(a.Environment, "aws://")] = true
		if v := a.Properties.RequiresBootstrapStackVersion; v != MinBootstrapVersion {
			t.Errorf("stack %s requires bootstrap version %d; MinBootstrapVersion is %d", name, v, MinBootstrapVersion)
		}
		var tpl template
		readJSON(t, filepath.Join(dir, a.Properties.TemplateFile), &tpl)
		templates[name] = tpl
		checkBootstrapRule(t, name, tpl)
	}
	var gotEnvs []string
	for e := range envs {
		gotEnvs = append(gotEnvs, e)
	}
	slices.Sort(gotEnvs)
	wantEnvs := slices.Sorted(slices.Values(Environments(cfg)))
	if !slices.Equal(gotEnvs, wantEnvs) {
		t.Errorf("stacks deploy to %v; preflight checks the bootstrap of %v", gotEnvs, wantEnvs)
	}
	if a := m.Artifacts[cfg.StackName("", "dns-alarms")]; a.Environment != "aws://111111111111/"+DNSAlarmsRegion {
		t.Errorf("DNS alarms stack deploys to %s, want region %s", a.Environment, DNSAlarmsRegion)
	}

	for _, f := range cfg.Fleets {
		network := stackTemplate(t, templates, cfg.StackName(f.Name, networkStack))
		addresses := stackTemplate(t, templates, cfg.StackName(f.Name, addressesStack))
		identity := stackTemplate(t, templates, cfg.StackName(f.Name, identityStack))
		if n := count(network, "AWS::EC2::NatGateway"); n != NATGateways(f) {
			t.Errorf("fleet %s: %d NAT gateways synthesized; NATGateways says %d", f.Name, n, NATGateways(f))
		}
		if n := count(network, "AWS::EC2::EIP") + count(addresses, "AWS::EC2::EIP"); n != ElasticIPs(f) {
			t.Errorf("fleet %s: %d Elastic IPs synthesized; ElasticIPs says %d", f.Name, n, ElasticIPs(f))
		}
		for stack, tpl := range map[string]template{"network": network, "addresses": addresses} {
			for id, r := range tpl.Resources {
				if r.Type != "AWS::EC2::EIP" {
					continue
				}
				tags := map[string]string{}
				for _, tag := range r.Properties.Tags {
					tags[tag.Key] = tag.Value
				}
				// Without CloudFormation's own stack-name tag, the tags the
				// stacks set must identify the address as the fleet's.
				if !ownedByFleet(tags, cfg, f) {
					t.Errorf("fleet %s: %s address %s (tags %v) is not recognized as the fleet's", f.Name, stack, id, tags)
				}
				for _, other := range cfg.Fleets {
					if other.Name != f.Name && ownedByFleet(tags, cfg, other) {
						t.Errorf("fleet %s: %s address %s is taken for fleet %s's", f.Name, stack, id, other.Name)
					}
				}
			}
		}
		for _, typ := range []string{loggingResourceType, auditResourceType} {
			if count(identity, typ) != 1 {
				t.Errorf("fleet %s: identity stack has %d %s; the singleton check assumes one", f.Name, count(identity, typ), typ)
			}
		}
	}
	if endpointdiscovery.DataATS != EndpointDataATS || endpointdiscovery.CredentialProvider != EndpointCredentialProvider {
		t.Errorf("endpoint types drifted: edge stack discovers %q and %q", endpointdiscovery.DataATS, endpointdiscovery.CredentialProvider)
	}
}

// TestCDKContractUnmanagedSingletons: with identity.manageIotLogging and
// identity.manageDeviceDefenderAudit false, which makes the singleton checks
// pass without looking, the identity stack the app builds holds neither
// singleton.
func TestCDKContractUnmanagedSingletons(t *testing.T) {
	doc := strings.Replace(contractConfig, `"fleets": [`, `"identity": {"manageIotLogging": false, "manageDeviceDefenderAudit": false},
  "fleets": [`, 1)
	cfg, err := deployconfig.Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir)})
	f := cfg.Fleets[0]
	name := cfg.StackName(f.Name, identityStack)
	stacks.NewIdentityStack(app, name, &stacks.IdentityStackProps{
		StackProps: awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String(f.Account), Region: jsii.String(f.Region)}},
		Fleet:      f, Identity: cfg.Identity, Topics: cfg.Topics,
	})
	app.Synth(nil)
	var m manifest
	readJSON(t, filepath.Join(dir, "manifest.json"), &m)
	var tpl template
	readJSON(t, filepath.Join(dir, m.Artifacts[name].Properties.TemplateFile), &tpl)
	if len(tpl.Resources) == 0 {
		t.Fatalf("stack %s synthesized no resources", name)
	}
	for _, typ := range []string{loggingResourceType, auditResourceType} {
		if n := count(tpl, typ); n != 0 {
			t.Errorf("identity stack has %d %s although the configuration leaves it alone", n, typ)
		}
	}
}

// checkBootstrapRule reads the template's bootstrap-version parameter and
// rule: the parameter is /cdk-bootstrap/<default qualifier>/version, and
// the rule rejects exactly the versions below MinBootstrapVersion.
func checkBootstrapRule(t *testing.T, stack string, tpl template) {
	t.Helper()
	if got := tpl.Parameters["BootstrapVersion"].Default; got != BootstrapParameter(DefaultQualifier) {
		t.Errorf("%s: BootstrapVersion parameter %q, want %q", stack, got, BootstrapParameter(DefaultQualifier))
	}
	var rule struct {
		Assertions []struct {
			Assert struct {
				Not []struct {
					Contains []json.RawMessage `json:"Fn::Contains"`
				} `json:"Fn::Not"`
			} `json:"Assert"`
		} `json:"Assertions"`
	}
	if err := json.Unmarshal(tpl.Rules["CheckBootstrapVersion"], &rule); err != nil || len(rule.Assertions) != 1 ||
		len(rule.Assertions[0].Assert.Not) != 1 || len(rule.Assertions[0].Assert.Not[0].Contains) != 2 {
		t.Fatalf("%s: CheckBootstrapVersion rule has an unexpected shape (%v): %s", stack, err, tpl.Rules["CheckBootstrapVersion"])
	}
	var rejected []string
	if err := json.Unmarshal(rule.Assertions[0].Assert.Not[0].Contains[0], &rejected); err != nil {
		t.Fatalf("%s: rejected versions: %v", stack, err)
	}
	var want []string
	for v := 1; v < MinBootstrapVersion; v++ {
		want = append(want, strconv.Itoa(v))
	}
	if !slices.Equal(rejected, want) {
		t.Errorf("%s: the template rejects bootstrap versions %v; MinBootstrapVersion %d means %v", stack, rejected, MinBootstrapVersion, want)
	}
}

func stackTemplate(t *testing.T, templates map[string]template, name string) template {
	t.Helper()
	tpl, ok := templates[name]
	if !ok {
		t.Fatalf("no stack %s synthesized; preflight looks it up by that name", name)
	}
	return tpl
}

func count(tpl template, typ string) int {
	n := 0
	for _, r := range tpl.Resources {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(fmt.Errorf("%s: %w", path, err))
	}
}
