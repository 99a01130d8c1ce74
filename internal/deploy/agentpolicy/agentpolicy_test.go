package agentpolicy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
	"github.com/agentgate/agentgate/internal/testkit/policymatrix"
)

const iotARN = "arn:aws:iot:eu-west-1:111111111111"

func params(objects string) agentpolicy.Params {
	return agentpolicy.Params{
		IoTARN:            iotARN,
		RoleAliasName:     "agentgate-agent",
		ReleaseChannels:   []string{"stable", "beta"},
		ReleaseObjectsARN: objects,
	}
}

func parse(t *testing.T, d agentpolicy.Document) *policyeval.Policy {
	t.Helper()
	p, err := policyeval.Parse(d.JSON())
	if err != nil {
		t.Fatalf("rendered policy does not parse: %v\n%s", err, d.JSON())
	}
	return p
}

// The rendered documents themselves pass the isolation matrix; the
// construct and stack tests run the same matrix on the synthesized ones.
func TestRenderedPoliciesIsolateAgents(t *testing.T) {
	for _, c := range []struct {
		name   string
		kind   policymatrix.Kind
		bucket string
		doc    func(agentpolicy.Params) agentpolicy.Document
	}{
		{"IoT policy", policymatrix.IoT, "", agentpolicy.IoTPolicy},
		{"role policy with bucket", policymatrix.Role, "arn:aws:s3:::artifacts", agentpolicy.RolePolicy},
		{"role policy without bucket", policymatrix.Role, "", agentpolicy.RolePolicy},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := params("")
			if c.bucket != "" {
				p.ReleaseObjectsARN = c.bucket + "/" + artifacts.ReleasePrefix + "*"
			}
			m := policymatrix.Matrix{Kind: c.kind, IoTARN: iotARN, RoleAliasName: p.RoleAliasName, ReleaseChannels: p.ReleaseChannels, BucketARN: c.bucket}
			allowed, denied := policymatrix.Run(t, m, parse(t, c.doc(p)))
			if allowed < 8 || denied < 50 {
				t.Errorf("matrix too small: %d allowed, %d denied", allowed, denied)
			}
		})
	}
}

// The two documents must give a SigV4 agent exactly what a certificate agent
// gets on MQTT: the statements differ only in their variables (and the
// role's S3 / the certificate's role-alias statement).
func TestBothDocumentsGrantTheSameMQTTAccess(t *testing.T) {
	iot := string(agentpolicy.IoTPolicy(params("")).JSON())
	role := string(agentpolicy.RolePolicy(params("")).JSON())
	iot = strings.NewReplacer(agentpolicy.IoTThingName, "N", agentpolicy.IoTThingTypeName, "T").Replace(iot)
	role = strings.NewReplacer(agentpolicy.CredsThingName, "N", agentpolicy.CredsThingTypeName, "T").Replace(role)
	var a, b agentpolicy.Document
	_ = json.Unmarshal([]byte(iot), &a)
	_ = json.Unmarshal([]byte(role), &b)
	a.Statement[0].Condition = nil                 // IsAttached exists only for certificates
	a.Statement = a.Statement[:len(a.Statement)-1] // AssumeRoleWithCertificate
	for i := range b.Statement {
		b.Statement[i].Sid = "" // the IoT policy omits statement IDs (size quota)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("MQTT statements differ:\n IoT  %s\n role %s", ja, jb)
	}
}

func TestNoMQTTWildcardsAndNoBareStar(t *testing.T) {
	for _, d := range []agentpolicy.Document{agentpolicy.IoTPolicy(params("")), agentpolicy.RolePolicy(params("arn:aws:s3:::b/releases/*"))} {
		for _, st := range d.Statement {
			for _, r := range st.Resource {
				if strings.ContainsAny(r, "+#") {
					t.Errorf("%s: resource %q contains an MQTT wildcard, which policies treat literally", st.Sid, r)
				}
				if r == "*" {
					t.Errorf("%s: resource is *", st.Sid)
				}
			}
			for _, a := range st.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s: action %q has a wildcard", st.Sid, a)
				}
			}
		}
	}
}

func TestValidate(t *testing.T) {
	if err := params("").Validate(); err != nil {
		t.Fatalf("valid params rejected: %v", err)
	}
	for name, c := range map[string]struct {
		mutate func(*agentpolicy.Params)
		want   string
	}{
		"empty ARN":        {func(p *agentpolicy.Params) { p.IoTARN = "" }, "IoT ARN prefix"},
		"trailing colon":   {func(p *agentpolicy.Params) { p.IoTARN += ":" }, "no trailing colon"},
		"alias with slash": {func(p *agentpolicy.Params) { p.RoleAliasName = "a/b" }, `role alias name "a/b"`},
		"alias too long":   {func(p *agentpolicy.Params) { p.RoleAliasName = strings.Repeat("a", 129) }, "1..128"},
		"no channels":      {func(p *agentpolicy.Params) { p.ReleaseChannels = nil }, "at least one release channel"},
		"wildcard channel": {func(p *agentpolicy.Params) { p.ReleaseChannels = []string{"#"} }, `release channel "#"`},
		"twice":            {func(p *agentpolicy.Params) { p.ReleaseChannels = []string{"a", "a"} }, "listed twice"},
	} {
		p := params("")
		c.mutate(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", name, err, c.want)
		}
	}
}

func TestThingTypeNameIsTheCustomerID(t *testing.T) {
	if got, err := agentpolicy.ThingTypeName("acme-01"); err != nil || got != "acme-01" {
		t.Errorf("ThingTypeName(acme-01) = %q, %v", got, err)
	}
	for _, bad := range []string{"", "agentgate", "a/b", "a+b", "a#", "a*", "a:b", strings.Repeat("x", 65)} {
		if _, err := agentpolicy.ThingTypeName(bad); err == nil {
			t.Errorf("ThingTypeName(%q) accepted", bad)
		}
	}
}

// recorder counts the failures Run reports instead of failing the test.
type recorder struct {
	testing.TB
	failures int
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failures++ }

// The matrix is not vacuous: policies with the classic mistakes fail it.
func TestMatrixCatchesLeakyPolicies(t *testing.T) {
	own := agentpolicy.IoTThingTypeName + "/" + agentpolicy.IoTThingName
	for name, resource := range map[string]string{
		"customer-wide subscribe":         iotARN + ":topicfilter/" + agentpolicy.IoTThingTypeName + "/*",
		"prefix without slash":            iotARN + ":topicfilter/" + own + "*",
		"any customer with this thing":    iotARN + ":topicfilter/*/" + agentpolicy.IoTThingName + "/*",
		"every topic filter":              iotARN + ":topicfilter/*",
		"MQTT wildcard mistaken as IAM's": iotARN + ":topicfilter/" + agentpolicy.IoTThingTypeName + "/+/config",
	} {
		t.Run(name, func(t *testing.T) {
			d := agentpolicy.IoTPolicy(params(""))
			d.Statement[1].Resource = []string{resource}
			r := &recorder{TB: t}
			policymatrix.Run(r, policymatrix.Matrix{Kind: policymatrix.IoT, IoTARN: iotARN, RoleAliasName: "agentgate-agent", ReleaseChannels: []string{"stable", "beta"}}, parse(t, d))
			if r.failures == 0 {
				t.Errorf("the matrix accepted a policy with subscribe resource %s", resource)
			}
		})
	}
}

// IoT policies are limited to 2,048 characters without whitespace (IoT
// Core quotas). Validate refuses parameters that would exceed it in the
// longest partition/region; the example configuration has ample room.
func TestIoTPolicyFitsTheSizeQuota(t *testing.T) {
	p := params("")
	t.Logf("example IoT policy: %d of %d characters", agentpolicy.IoTPolicySize(p), agentpolicy.MaxIoTPolicySize)
	max := 0
	for n := 1; ; n++ {
		p.ReleaseChannels = nil
		for i := 0; i < n; i++ {
			p.ReleaseChannels = append(p.ReleaseChannels, "channel-"+strings.Repeat("x", 8)+string(rune('a'+i%26))+strings.Repeat("y", i/26))
		}
		if err := p.Validate(); err != nil {
			if !strings.Contains(err.Error(), "AWS IoT allows 2048") {
				t.Fatalf("unexpected error: %v", err)
			}
			break
		}
		p.IoTARN = "arn:aws-us-gov:iot:ap-southeast-5:123456789012"
		if size := agentpolicy.IoTPolicySize(p); size > agentpolicy.MaxIoTPolicySize {
			t.Fatalf("Validate accepted %d channels giving %d characters", n, size)
		}
		p.IoTARN = iotARN
		max = n
	}
	// The direction split (subscribe down/ and config, publish up/) costs
	// about 190 characters over one open subtree; four channels still fit.
	if max < 4 {
		t.Errorf("only %d 17-character channels fit; want at least 4", max)
	}
	t.Logf("at most %d channels of 17 characters fit in the worst-case region", max)
}

// Attack: a thing of the reserved type "agentgate" named "releases" owns
// agentgate/releases/… as its own <customer>/<thing>/… subtree. Both
// documents must deny it every write there, whatever else they allow.
func TestReservedTypeThingCannotForgeReleaseAnnouncements(t *testing.T) {
	for _, c := range []struct {
		name      string
		doc       agentpolicy.Document
		nameKey   string
		typeKey   string
		extraKeys map[string]string
	}{
		{"IoT policy", agentpolicy.IoTPolicy(params("")), "iot:Connection.Thing.ThingName", "iot:Connection.Thing.ThingTypeName", map[string]string{agentpolicy.IoTIsAttachedKey: "true"}},
		{"role policy", agentpolicy.RolePolicy(params("arn:aws:s3:::b/releases/*")), "credentials-iot:ThingName", "credentials-iot:ThingTypeName", nil},
	} {
		ctx := map[string]string{c.nameKey: "releases", c.typeKey: topics.ReservedCustomerID}
		for k, v := range c.extraKeys {
			ctx[k] = v
		}
		p := parse(t, c.doc)
		for _, action := range []string{"iot:Publish", "iot:RetainPublish"} {
			for _, topic := range []string{topics.ReleaseTopic("stable"), topics.ReleaseTopic("beta"), topics.ReleaseTopic("new"), topics.ReservedCustomerID + "/x"} {
				req := policyeval.Request{Action: action, Resource: iotARN + ":topic/" + topic, Context: ctx}
				if d := policyeval.Evaluate(req, p); d != policyeval.ExplicitDeny {
					t.Errorf("%s: %s on %s by thing agentgate/releases = %v, want an explicit deny", c.name, action, topic, d)
				}
			}
		}
	}
}

// Announcements pin the build's versionId, and a versioned download is
// s3:GetObjectVersion: the agent role must grant it on the release prefix
// (and nowhere else).
func TestAgentRoleCanDownloadTheAnnouncedVersion(t *testing.T) {
	p := parse(t, agentpolicy.RolePolicy(params("arn:aws:s3:::artifacts/"+artifacts.ReleasePrefix+"*")))
	ctx := map[string]string{"credentials-iot:ThingName": "a", "credentials-iot:ThingTypeName": "x"}
	for resource, want := range map[string]bool{
		"arn:aws:s3:::artifacts/" + artifacts.ReleasePrefix + "stable/1.2.3/linux-arm64/agent": true,
		"arn:aws:s3:::artifacts/configs/x/a.json":                                              false,
		"arn:aws:s3:::other/" + artifacts.ReleasePrefix + "stable/1.2.3/linux-arm64/agent":     false,
	} {
		if got := policyeval.Evaluate(policyeval.Request{Action: "s3:GetObjectVersion", Resource: resource, Context: ctx}, p).Allowed(); got != want {
			t.Errorf("s3:GetObjectVersion on %s allowed=%v, want %v", resource, got, want)
		}
	}
}
