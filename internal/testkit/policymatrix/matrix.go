// Package policymatrix holds the isolation matrix that every level of
// agentgate's tests runs against the agent policies: the rendered
// documents (package agentpolicy), the identity construct's template and
// the synthesized app. Thing A of customer X must reach its own topics and
// nothing of thing B (same customer) or of customer Y; '+'/'#' tricks,
// missing identity and S3 outside the release prefix must all be denied.
// It also resolves the CloudFormation intrinsics CDK leaves in templates.
package policymatrix

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
	"github.com/agentgate/agentgate/internal/testkit/policyeval"
)

// Kind says which policy is under test and hence which variables a
// request's context carries.
type Kind int

const (
	// IoT is the certificate's IoT policy (iot:Connection.Thing.* variables).
	IoT Kind = iota
	// Role is the IAM policy of the role behind the role alias (credentials-iot:* variables).
	Role
)

func (k Kind) String() string {
	if k == IoT {
		return "IoT policy"
	}
	return "role policy"
}

// Matrix describes the world the cases are built for.
type Matrix struct {
	Kind Kind
	// IoTARN is "arn:<partition>:iot:<region>:<account>".
	IoTARN string
	// RoleAliasName is the alias the IoT policy must let the certificate use.
	RoleAliasName string
	// ReleaseChannels are the configured channels.
	ReleaseChannels []string
	// BucketARN and ReleasePrefix describe the artifacts bucket; empty
	// BucketARN means the policy must grant no S3 access at all.
	BucketARN     string
	ReleasePrefix string
}

// The cast. Thing names are globally unique; "agent-a2" shares a prefix with
// "agent-a" and customer Y reuses X's naming to catch prefix confusions.
const (
	CustomerX = "custx"
	CustomerY = "custy"
	ThingA    = "agent-a"
	ThingA2   = "agent-a2"
	ThingB    = "agent-b"
	ThingYB   = "agent-yb"
)

// Case is one request and whether it must be allowed.
type Case struct {
	Name    string
	Request policyeval.Request
	Allow   bool
}

// Identity is the context a request of thing A of customer X carries.
func (m Matrix) Identity() map[string]string {
	if m.Kind == IoT {
		return map[string]string{
			"iot:Connection.Thing.ThingName":     ThingA,
			"iot:Connection.Thing.ThingTypeName": CustomerX,
			agentpolicy.IoTIsAttachedKey:         "true",
		}
	}
	return map[string]string{
		"credentials-iot:ThingName":        ThingA,
		"credentials-iot:ThingTypeName":    CustomerX,
		"credentials-iot:AwsCertificateId": "0123456789abcdef",
	}
}

// noThingName is the context when the thing name is unknown: a role
// session without the x-amzn-iot-thingname header, or a certificate that is
// not attached to any thing.
func (m Matrix) noThingName() map[string]string {
	if m.Kind == IoT {
		return map[string]string{agentpolicy.IoTIsAttachedKey: "false"}
	}
	return map[string]string{"credentials-iot:AwsCertificateId": "0123456789abcdef"}
}

// reservedThing is the context of a thing named "releases" whose thing type
// is the reserved customer ID: its own topic subtree would be the release root.
func (m Matrix) reservedThing() map[string]string {
	name := strings.TrimPrefix(topics.ReleaseRoot, topics.ReservedCustomerID+"/")
	if m.Kind == IoT {
		return map[string]string{
			"iot:Connection.Thing.ThingName":     name,
			"iot:Connection.Thing.ThingTypeName": topics.ReservedCustomerID,
			agentpolicy.IoTIsAttachedKey:         "true",
		}
	}
	return map[string]string{
		"credentials-iot:ThingName":        name,
		"credentials-iot:ThingTypeName":    topics.ReservedCustomerID,
		"credentials-iot:AwsCertificateId": "0123456789abcdef",
	}
}

// untyped is the context of thing A created without a thing type.
func (m Matrix) untyped() map[string]string {
	ctx := m.Identity()
	delete(ctx, "iot:Connection.Thing.ThingTypeName")
	delete(ctx, "credentials-iot:ThingTypeName")
	return ctx
}

// Cases returns the whole matrix.
func (m Matrix) Cases() []Case {
	id := m.Identity()
	var cs []Case
	add := func(allow bool, name, action, resource string, ctx map[string]string) {
		cs = append(cs, Case{Name: name, Request: policyeval.Request{Action: action, Resource: resource, Context: ctx}, Allow: allow})
	}
	res := func(kind, rest string) string { return m.IoTARN + ":" + kind + "/" + rest }
	own := topics.ThingPrefix(CustomerX, ThingA)

	// Thing A's own world.
	add(true, "A connects as itself", "iot:Connect", res("client", ThingA), id)
	add(true, "A subscribes exactly to its config", "iot:Subscribe", res("topicfilter", topics.ConfigTopic(CustomerX, ThingA)), id)
	up, down := topics.UpPrefix(CustomerX, ThingA), topics.DownPrefix(CustomerX, ThingA)
	add(true, "A subscribes to its down subtree X/A/down/#", "iot:Subscribe", res("topicfilter", down+"/#"), id)
	add(true, "A subscribes to X/A/down/+", "iot:Subscribe", res("topicfilter", down+"/+"), id)
	add(true, "A subscribes exactly to its command topic", "iot:Subscribe", res("topicfilter", topics.DownTopic(CustomerX, ThingA, "command")), id)
	add(true, "A receives its config", "iot:Receive", res("topic", topics.ConfigTopic(CustomerX, ThingA)), id)
	add(true, "A receives a command", "iot:Receive", res("topic", topics.DownTopic(CustomerX, ThingA, "command")), id)
	add(true, "A publishes telemetry on up/", "iot:Publish", res("topic", topics.UpTopic(CustomerX, ThingA, "telemetry")), id)
	add(true, "A publishes a command result on up/", "iot:Publish", res("topic", topics.UpTopic(CustomerX, ThingA, "result")), id)
	// Its status (client version) goes to the presence table keyed by the
	// topic's customer and thing: A may announce its own, nobody else's.
	add(true, "A publishes its status on up/", "iot:Publish", res("topic", status.Topic(CustomerX, ThingA)), id)
	for _, tp := range []string{
		status.Topic(CustomerX, ThingB), status.Topic(CustomerX, ThingA2), status.Topic(CustomerY, ThingYB), status.Topic(CustomerY, ThingA),
		CustomerX + "/+/up/" + status.Subject, "+/+/up/" + status.Subject, topics.DownTopic(CustomerX, ThingA, status.Subject),
	} {
		add(false, "A publishes a status as "+tp, "iot:Publish", res("topic", tp), id)
	}
	add(false, "A retain-publishes its status", "iot:RetainPublish", res("topic", status.Topic(CustomerX, ThingA)), id)
	add(false, "A subscribes to another agent's status", "iot:Subscribe", res("topicfilter", status.Topic(CustomerX, ThingB)), id)
	add(false, "A receives another agent's status", "iot:Receive", res("topic", status.Topic(CustomerX, ThingB)), id)

	// The direction split: A never writes into what it receives and never
	// subscribes to what it sends.
	for _, tp := range []string{
		topics.DownTopic(CustomerX, ThingA, "command"), down + "/x/y", own + "/telemetry", own + "/cmd/restart", own + "/upx",
		own + "/downx", own + "/" + topics.UpLevel, own + "/" + topics.DownLevel, own, topics.ConfigTopic(CustomerX, ThingA) + "/x",
	} {
		add(false, "A publishes to "+tp+" (not under up/)", "iot:Publish", res("topic", tp), id)
	}
	for _, f := range []string{
		own + "/#", own + "/+", up + "/#", up + "/+", topics.UpTopic(CustomerX, ThingA, "telemetry"), own + "/+/telemetry",
		own + "/+/#", own + "/telemetry", own + "/" + topics.DownLevel, own + "/downx/#",
	} {
		add(false, "A subscribes to "+f+" (not down/ or config)", "iot:Subscribe", res("topicfilter", f), id)
	}
	add(false, "A retain-publishes on up/", "iot:RetainPublish", res("topic", topics.UpTopic(CustomerX, ThingA, "telemetry")), id)

	// Basic Ingest: only its own telemetry topic behind the telemetry rule.
	add(true, "A sends telemetry through Basic Ingest", "iot:Publish", res("topic", telemetry.BasicIngestTopic(CustomerX, ThingA)), id)
	for _, tp := range []string{
		telemetry.BasicIngestTopic(CustomerX, ThingB), telemetry.BasicIngestTopic(CustomerY, ThingYB), telemetry.BasicIngestTopic(CustomerY, ThingA),
		telemetry.BasicIngestTopic(CustomerX, ThingA2), telemetry.BasicIngestPrefix + up + "/status", telemetry.BasicIngestPrefix + down + "/command",
		telemetry.BasicIngestPrefix + topics.ConfigTopic(CustomerX, ThingA), "$aws/rules/other_rule/" + topics.UpTopic(CustomerX, ThingA, "telemetry"),
		"$aws/rules/" + telemetry.RuleName, "$aws/rules/" + telemetry.RuleName + "/" + topics.ReleaseTopic("stable"),
		"$aws/things/" + ThingA + "/shadow/update", "$aws/events/presence/connected/" + ThingA,
	} {
		add(false, "A publishes to "+tp, "iot:Publish", res("topic", tp), id)
	}
	for _, ch := range m.ReleaseChannels {
		add(true, "A subscribes exactly to release channel "+ch, "iot:Subscribe", res("topicfilter", topics.ReleaseTopic(ch)), id)
		add(true, "A receives release channel "+ch, "iot:Receive", res("topic", topics.ReleaseTopic(ch)), id)
		add(false, "A publishes to release channel "+ch+" (read-only)", "iot:Publish", res("topic", topics.ReleaseTopic(ch)), id)
		add(false, "A retains on release channel "+ch, "iot:RetainPublish", res("topic", topics.ReleaseTopic(ch)), id)
	}

	// Its own configuration is written by the control plane only.
	add(false, "A publishes to its own config", "iot:Publish", res("topic", topics.ConfigTopic(CustomerX, ThingA)), id)
	add(false, "A retain-publishes to its own config", "iot:RetainPublish", res("topic", topics.ConfigTopic(CustomerX, ThingA)), id)

	// Impersonation.
	for _, thing := range []string{ThingB, ThingA2, ThingYB, CustomerX, "agent-", "*", "+", "#"} {
		add(false, "A connects as "+thing, "iot:Connect", res("client", thing), id)
	}

	// Other things' and customers' topics, and wildcard tricks.
	for _, f := range []string{
		topics.ConfigTopic(CustomerX, ThingB), topics.ThingPrefix(CustomerX, ThingB) + "/#",
		topics.ConfigTopic(CustomerX, ThingA2), topics.ThingPrefix(CustomerX, ThingA2) + "/#",
		topics.ConfigTopic(CustomerY, ThingYB), topics.ThingPrefix(CustomerY, ThingYB) + "/#",
		topics.ConfigTopic(CustomerY, ThingA), // A's name under another customer
		CustomerX + "/#", CustomerX + "/+/config", CustomerX + "/+/#", "+/" + ThingA + "/config", "+/" + ThingA + "/#",
		"+/+/config", "+/#", "#", CustomerY + "/#", own, CustomerX + "/" + ThingA + "+/#", CustomerX + "/" + ThingA + "#",
		topics.ReleaseRoot + "/#", topics.ReleaseRoot + "/+", "agentgate/#", topics.ReleaseTopic("no-such-channel"),
		topics.UpPrefix(CustomerX, ThingB) + "/#", topics.UpTopic(CustomerX, ThingB, "telemetry"), topics.DownPrefix(CustomerX, ThingB) + "/#",
		topics.UpPrefix(CustomerX, ThingA2) + "/#", topics.DownPrefix(CustomerX, ThingA2) + "/#",
		topics.UpPrefix(CustomerY, ThingYB) + "/#", topics.DownPrefix(CustomerY, ThingYB) + "/#", topics.DownPrefix(CustomerY, ThingA) + "/#",
		CustomerX + "/+/up/#", CustomerX + "/+/down/#", "+/+/up/#", "+/+/down/#", "+/" + ThingA + "/down/#",
		"$aws/rules/#", "$aws/rules/telemetry/" + topics.UpPrefix(CustomerX, ThingB) + "/#",
		"$aws/things/" + ThingB + "/shadow/#", "$aws/events/#",
	} {
		add(false, "A subscribes to "+f, "iot:Subscribe", res("topicfilter", f), id)
	}
	for _, tp := range []string{
		topics.ConfigTopic(CustomerX, ThingB), topics.ConfigTopic(CustomerX, ThingA2), topics.ConfigTopic(CustomerY, ThingYB),
		topics.ConfigTopic(CustomerY, ThingA), CustomerX + "/" + ThingB + "/cmd", CustomerX + "/+/config", "$aws/things/" + ThingB + "/shadow/update",
		topics.UpTopic(CustomerX, ThingB, "telemetry"), topics.DownTopic(CustomerX, ThingB, "command"),
		topics.UpTopic(CustomerX, ThingA2, "telemetry"), topics.DownTopic(CustomerX, ThingA2, "command"),
		topics.UpTopic(CustomerY, ThingYB, "telemetry"), topics.DownTopic(CustomerY, ThingYB, "command"),
		topics.UpTopic(CustomerY, ThingA, "telemetry"), topics.DownTopic(CustomerY, ThingA, "command"),
		CustomerX + "/+/up/telemetry", CustomerX + "/+/down/command",
	} {
		add(false, "A receives "+tp, "iot:Receive", res("topic", tp), id)
		add(false, "A publishes to "+tp, "iot:Publish", res("topic", tp), id)
	}
	// Resource-type confusion: a topic ARN for Subscribe, a filter for Receive.
	add(false, "A subscribes with a topic ARN", "iot:Subscribe", res("topic", topics.ConfigTopic(CustomerX, ThingA)), id)
	add(false, "A receives via a topicfilter ARN of B", "iot:Receive", res("topicfilter", topics.ConfigTopic(CustomerX, ThingB)), id)

	// Release announcements are the control plane's: a thing whose type is
	// the reserved customer ID and whose name is "releases" has
	// <type>/<name>/… = agentgate/releases/… as its own subtree, so only an
	// explicit Deny keeps it from forging them (control-plane validation is
	// the only other thing that reserves the name).
	forger := m.reservedThing()
	for _, ch := range append(append([]string(nil), m.ReleaseChannels...), "no-such-channel") {
		add(false, "reserved-type thing publishes on release channel "+ch, "iot:Publish", res("topic", topics.ReleaseTopic(ch)), forger)
		add(false, "reserved-type thing retains on release channel "+ch, "iot:RetainPublish", res("topic", topics.ReleaseTopic(ch)), forger)
	}
	add(false, "reserved-type thing publishes below agentgate/", "iot:Publish", res("topic", topics.ReservedCustomerID+"/releases/x/y"), forger)
	add(false, "reserved-type thing publishes on its own up/ below agentgate/", "iot:Publish", res("topic", topics.UpTopic(topics.ReservedCustomerID, "releases", "telemetry")), forger)

	// Control-plane actions: an agent must never move itself to another
	// customer (UpdateThing changes the thing type) or touch the registry.
	add(false, "A changes its own thing type", "iot:UpdateThing", res("thing", ThingA), id)
	add(false, "A attaches a policy", "iot:AttachPolicy", res("cert", "0123456789abcdef"), id)

	// No identity: the variables do not resolve.
	none := m.noThingName()
	add(false, "no thing name: connect as A", "iot:Connect", res("client", ThingA), none)
	add(false, "no thing name: subscribe to A's config", "iot:Subscribe", res("topicfilter", topics.ConfigTopic(CustomerX, ThingA)), none)
	add(false, "no thing name: subscribe to /A/config", "iot:Subscribe", res("topicfilter", "/"+ThingA+"/config"), none)
	add(false, "no thing name: subscribe to //config", "iot:Subscribe", res("topicfilter", "//config"), none)
	add(false, "no thing name: receive A's config", "iot:Receive", res("topic", topics.ConfigTopic(CustomerX, ThingA)), none)
	add(false, "no thing name: publish as A", "iot:Publish", res("topic", topics.UpTopic(CustomerX, ThingA, "telemetry")), none)
	add(false, "no thing name: publish to //up/telemetry", "iot:Publish", res("topic", "//up/telemetry"), none)
	add(false, "no thing name: Basic Ingest as //", "iot:Publish", res("topic", telemetry.BasicIngestPrefix+"//up/telemetry"), none)
	add(false, "no thing name: subscribe to //down/#", "iot:Subscribe", res("topicfilter", "//down/#"), none)
	// A thing without a type gets none of its topics (documented limit).
	untyped := m.untyped()
	add(false, "untyped thing: subscribe to its config", "iot:Subscribe", res("topicfilter", topics.ConfigTopic(CustomerX, ThingA)), untyped)
	add(false, "untyped thing: receive its config", "iot:Receive", res("topic", topics.ConfigTopic(CustomerX, ThingA)), untyped)
	add(false, "untyped thing: subscribe to /A/config", "iot:Subscribe", res("topicfilter", "/"+ThingA+"/config"), untyped)
	add(false, "untyped thing: publish to /A/up/telemetry", "iot:Publish", res("topic", "/"+ThingA+"/up/telemetry"), untyped)
	if m.Kind == IoT {
		detached := m.Identity()
		detached[agentpolicy.IoTIsAttachedKey] = "false"
		add(false, "certificate not attached to A: connect as A", "iot:Connect", res("client", ThingA), detached)
		add(true, "certificate gets role credentials", "iot:AssumeRoleWithCertificate", res("rolealias", m.RoleAliasName), id)
		add(false, "certificate uses another role alias", "iot:AssumeRoleWithCertificate", res("rolealias", m.RoleAliasName+"-admin"), id)
	} else {
		add(false, "role session uses a role alias", "iot:AssumeRoleWithCertificate", res("rolealias", m.RoleAliasName), id)
	}

	// S3: only GetObject and GetObjectVersion (announcements pin a
	// versionId) below the release prefix, only from the role.
	bucket := m.BucketARN
	if bucket == "" {
		bucket = "arn:aws:s3:::any-artifacts-bucket"
	}
	prefix := m.ReleasePrefix
	if prefix == "" {
		prefix = artifacts.ReleasePrefix
	}
	release := bucket + "/" + prefix + "1.2.3/linux-arm64/agent.tar.gz"
	add(m.Kind == Role && m.BucketARN != "", "A downloads a release", "s3:GetObject", release, id)
	add(m.Kind == Role && m.BucketARN != "", "A downloads a release without a thing name", "s3:GetObject", release, none)
	add(m.Kind == Role && m.BucketARN != "", "A downloads the announced version of a release", "s3:GetObjectVersion", release, id)
	for _, key := range []string{
		"config/" + CustomerX + "/" + ThingA + ".json", "config/" + CustomerY + "/" + ThingYB + ".json",
		strings.TrimSuffix(prefix, "/"), strings.TrimSuffix(prefix, "/") + "-private/x", "x/" + prefix + "y",
	} {
		add(false, "A reads s3 "+key, "s3:GetObject", bucket+"/"+key, id)
		add(false, "A reads a version of s3 "+key, "s3:GetObjectVersion", bucket+"/"+key, id)
	}
	add(false, "A uploads a release", "s3:PutObject", release, id)
	add(false, "A deletes a release", "s3:DeleteObject", release, id)
	add(false, "A lists the bucket", "s3:ListBucket", bucket, id)
	add(false, "A reads another bucket", "s3:GetObject", "arn:aws:s3:::other-bucket/"+prefix+"x", id)
	add(false, "A reads a version in another bucket", "s3:GetObjectVersion", "arn:aws:s3:::other-bucket/"+prefix+"x", id)
	add(false, "A deletes a release version", "s3:DeleteObjectVersion", release, id)
	return cs
}

// Run evaluates every case against policies and fails t for each wrong
// decision. It returns the counts of allowed and denied cases checked.
func Run(t testing.TB, m Matrix, policies ...*policyeval.Policy) (allowed, denied int) {
	t.Helper()
	for _, c := range m.Cases() {
		d := policyeval.Evaluate(c.Request, policies...)
		if d.Allowed() != c.Allow {
			t.Errorf("%s: %s: %s on %s = %v, want allowed=%v", m.Kind, c.Name, c.Request.Action, c.Request.Resource, d, c.Allow)
		}
		if c.Allow {
			allowed++
		} else {
			denied++
		}
	}
	return allowed, denied
}

// Resolve replaces the CloudFormation intrinsics CDK emits (Ref, Fn::Join,
// Fn::GetAtt, Fn::ImportValue, Fn::GetStackOutput) in a template fragment
// with values: a Ref looks up the logical ID or pseudo parameter
// ("AWS::Partition"), a GetAtt looks up "LogicalID.Attribute", an import
// looks up "import:<name>", a stack output "output:<OutputName>". A missing
// value is an error naming it.
func Resolve(v any, values map[string]string) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				switch fn {
				case "Ref":
					return lookup(values, fmt.Sprint(arg))
				case "Fn::GetAtt":
					parts, _ := arg.([]any)
					if len(parts) != 2 {
						return nil, fmt.Errorf("Fn::GetAtt %v: want [id, attribute]", arg)
					}
					return lookup(values, fmt.Sprintf("%v.%v", parts[0], parts[1]))
				case "Fn::ImportValue":
					name, err := Resolve(arg, values)
					if err != nil {
						return nil, err
					}
					return lookup(values, fmt.Sprint("import:", name))
				case "Fn::GetStackOutput":
					// {"StackName": …, "OutputName": …[, "Region", "RoleArn"]}
					ref, _ := arg.(map[string]any)
					name, err := Resolve(ref["OutputName"], values)
					if err != nil {
						return nil, err
					}
					return lookup(values, fmt.Sprint("output:", name))
				case "Fn::Join":
					parts, _ := arg.([]any)
					if len(parts) != 2 {
						return nil, fmt.Errorf("Fn::Join %v: want [separator, list]", arg)
					}
					list, _ := parts[1].([]any)
					var out []string
					for _, p := range list {
						r, err := Resolve(p, values)
						if err != nil {
							return nil, err
						}
						s, ok := r.(string)
						if !ok {
							return nil, fmt.Errorf("Fn::Join element %v is not a string", r)
						}
						out = append(out, s)
					}
					return strings.Join(out, fmt.Sprint(parts[0])), nil
				}
				if strings.HasPrefix(fn, "Fn::") {
					return nil, fmt.Errorf("intrinsic %s is not supported by this resolver", fn)
				}
			}
		}
		out := map[string]any{}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			r, err := Resolve(x[k], values)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := Resolve(e, values)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

func lookup(values map[string]string, key string) (string, error) {
	v, ok := values[key]
	if !ok {
		return "", fmt.Errorf("no value for %s", key)
	}
	return v, nil
}

// FromTemplate finds the agent policies in a CloudFormation template (as
// decoded JSON): the one AWS::IoT::Policy, and the inline policy of the one
// role that trusts credentials.iot.amazonaws.com. Intrinsics are resolved
// with values (see Resolve) before parsing.
func FromTemplate(tmpl map[string]any, values map[string]string) (iot, role *policyeval.Policy, err error) {
	parse := func(id string, doc any) (*policyeval.Policy, error) {
		resolved, err := Resolve(doc, values)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		b, _ := json.Marshal(resolved)
		p, err := policyeval.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", id, err, b)
		}
		return p, nil
	}
	resources, _ := tmpl["Resources"].(map[string]any)
	roleID := ""
	ids := make([]string, 0, len(resources))
	for id := range resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r, _ := resources[id].(map[string]any)
		props, _ := r["Properties"].(map[string]any)
		switch r["Type"] {
		case "AWS::IoT::Policy":
			if iot != nil {
				return nil, nil, fmt.Errorf("more than one AWS::IoT::Policy (%s)", id)
			}
			if iot, err = parse(id, props["PolicyDocument"]); err != nil {
				return nil, nil, err
			}
		case "AWS::IAM::Role":
			trust, _ := json.Marshal(props["AssumeRolePolicyDocument"])
			if !strings.Contains(string(trust), `"credentials.iot.amazonaws.com"`) {
				continue
			}
			if role != nil {
				return nil, nil, fmt.Errorf("more than one role trusts the credentials provider (%s)", id)
			}
			ps, _ := props["Policies"].([]any)
			if len(ps) != 1 {
				return nil, nil, fmt.Errorf("%s: %d inline policies, want exactly the agent policy", id, len(ps))
			}
			doc, _ := ps[0].(map[string]any)
			if role, err = parse(id, doc["PolicyDocument"]); err != nil {
				return nil, nil, err
			}
			roleID = id
		}
	}
	// A policy attached from elsewhere would widen the agent role behind
	// the matrix's back: there must be none.
	for _, id := range ids {
		r, _ := resources[id].(map[string]any)
		if t := r["Type"]; t != "AWS::IAM::Policy" && t != "AWS::IAM::ManagedPolicy" {
			continue
		}
		b, _ := json.Marshal(r["Properties"].(map[string]any)["Roles"])
		if roleID != "" && strings.Contains(string(b), `{"Ref":"`+roleID+`"}`) {
			return nil, nil, fmt.Errorf("%s attaches more permissions to the agent role %s", id, roleID)
		}
	}
	if iot == nil || role == nil {
		return nil, nil, errors.New("agent IoT policy or agent role not found")
	}
	return iot, role, nil
}
