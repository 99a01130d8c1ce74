// Package agentpolicy renders the two policy documents that confine an
// agent to its own topics, from the shared topic layout (package topics):
//
//   - IoTPolicy: the AWS IoT policy attached to every agent certificate.
//     It authorizes agents that connect with the certificate (MQTT over TLS
//     on 443 with ALPN x-amzn-mqtt-ca) and lets the certificate call the
//     credentials provider (iot:AssumeRoleWithCertificate on the role alias).
//   - RolePolicy: the IAM policy of the role behind the role alias. It
//     authorizes agents that connect with SigV4 over WebSocket, and their S3
//     downloads of agent releases.
//
// One document of each serves every customer: a thing's customer is its
// thing type (thing type name == customer ID, thing name == device ID), so
// the policies address <customer>/<thing>/… with the thing policy
// variables (${iot:Connection.Thing.ThingTypeName}/${iot:Connection.Thing.ThingName})
// or the credentials-provider variables
// (${credentials-iot:ThingTypeName}/${credentials-iot:ThingName}). Onboarding
// a customer is a CreateThingType call, never a redeploy. See docs/identity.md.
//
// The package has no CDK dependency: the identity construct puts these
// documents into the template, and tests evaluate the very same documents.
package agentpolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/agentgate/agentgate/contract/rolealias"
	"github.com/agentgate/agentgate/contract/telemetry"
	"github.com/agentgate/agentgate/contract/topics"
)

// Policy variables. The iot:Connection.Thing.* ones resolve in IoT policies
// for certificate connections; the credentials-iot:* ones resolve in IAM
// policies of a role assumed through the credentials provider, and only
// when the agent sent the x-amzn-iot-thingname header.
const (
	IoTThingName       = "${iot:Connection.Thing.ThingName}"
	IoTThingTypeName   = "${iot:Connection.Thing.ThingTypeName}"
	IoTIsAttachedKey   = "iot:Connection.Thing.IsAttached"
	CredsThingName     = "${credentials-iot:ThingName}"
	CredsThingTypeName = "${credentials-iot:ThingTypeName}"
)

// Params are the inputs of both documents.
type Params struct {
	// IoTARN is the ARN prefix of IoT resources without the trailing colon:
	// "arn:<partition>:iot:<region>:<account>". It may contain CDK tokens.
	IoTARN string
	// RoleAliasName is the role alias agents exchange their certificate at.
	RoleAliasName string
	// ReleaseChannels are the channels agents may read announcements of.
	ReleaseChannels []string
	// ReleaseObjectsARN is the ARN of the release objects agents may
	// download, e.g. "arn:aws:s3:::bucket/releases/*". Empty: no S3 access.
	ReleaseObjectsARN string
}

// Validate reports every invalid parameter.
func (p Params) Validate() error {
	var errs []error
	if p.IoTARN == "" || strings.HasSuffix(p.IoTARN, ":") {
		errs = append(errs, fmt.Errorf("IoT ARN prefix %q must look like arn:<partition>:iot:<region>:<account> (no trailing colon)", p.IoTARN))
	}
	if err := rolealias.ValidateName(p.RoleAliasName); err != nil {
		errs = append(errs, err)
	}
	if len(p.ReleaseChannels) == 0 {
		errs = append(errs, errors.New("at least one release channel is required"))
	}
	seen := map[string]bool{}
	for _, ch := range p.ReleaseChannels {
		if err := topics.ValidateChannel(ch); err != nil {
			errs = append(errs, err)
		} else if seen[ch] {
			errs = append(errs, fmt.Errorf("release channel %q is listed twice", ch))
		}
		seen[ch] = true
	}
	if len(errs) == 0 {
		worst := p
		worst.IoTARN = worstCaseIoTARN
		if size := IoTPolicySize(worst); size > MaxIoTPolicySize {
			errs = append(errs, fmt.Errorf("the IoT policy would be %d characters (without whitespace) with %d release channels; AWS IoT allows %d: use fewer or shorter channels or a shorter role alias name", size, len(p.ReleaseChannels), MaxIoTPolicySize))
		}
	}
	return errors.Join(errs...)
}

// MaxIoTPolicySize is AWS IoT's limit on a policy document, in characters
// without whitespace.
const MaxIoTPolicySize = 2048

// worstCaseIoTARN is as long as an IoT ARN prefix gets (longest partition
// and region names), so Validate's size check holds in every region even
// when the real prefix is still a CDK token.
const worstCaseIoTARN = "arn:aws-us-gov:iot:ap-southeast-5:123456789012"

// IoTPolicySize is the size of IoTPolicy(p) as AWS IoT counts it.
func IoTPolicySize(p Params) int {
	return len(strings.Join(strings.Fields(string(IoTPolicy(p).JSON())), ""))
}

// Document is an IAM/IoT policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a Document.
type Statement struct {
	Sid       string                       `json:"Sid,omitempty"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// JSON returns the document as JSON.
func (d Document) JSON() []byte {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err) // only strings and maps of strings: cannot fail
	}
	return b
}

// Map returns the document as generic JSON values (what CDK L1 properties take).
func (d Document) Map() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(d.JSON(), &m); err != nil {
		panic(err)
	}
	return m
}

// variables are the two variables that name a thing and its customer.
type variables struct{ customer, thing string }

var (
	iotVars   = variables{customer: IoTThingTypeName, thing: IoTThingName}
	credsVars = variables{customer: CredsThingTypeName, thing: CredsThingName}
)

// IoTPolicy is the IoT policy of every agent certificate.
func IoTPolicy(p Params) Document {
	d := agentStatements(p, iotVars)
	// Connect only as the thing the certificate is attached to.
	d.Statement[0].Condition = map[string]map[string]string{"Bool": {IoTIsAttachedKey: "true"}}
	d.Statement = append(d.Statement, Statement{
		Sid:      "RoleCredentials",
		Effect:   "Allow",
		Action:   []string{"iot:AssumeRoleWithCertificate"},
		Resource: []string{p.IoTARN + ":rolealias/" + p.RoleAliasName},
	})
	// The IoT policy goes without statement IDs: they are optional, and the
	// ~190 characters they cost are two release channels of the 2,048
	// (the role policy, with no such quota, keeps them).
	for i := range d.Statement {
		d.Statement[i].Sid = ""
	}
	return d
}

// RolePolicy is the IAM policy of the role behind the role alias.
func RolePolicy(p Params) Document {
	d := agentStatements(p, credsVars)
	if p.ReleaseObjectsARN != "" {
		// Announcements pin the object's versionId, and downloading a
		// version is s3:GetObjectVersion.
		d.Statement = append(d.Statement, Statement{
			Sid:      "DownloadReleases",
			Effect:   "Allow",
			Action:   []string{"s3:GetObject", "s3:GetObjectVersion"},
			Resource: []string{p.ReleaseObjectsARN},
		})
	}
	return d
}

// agentStatements are the MQTT statements both documents share; the first
// one is always Connect.
func agentStatements(p Params, v variables) Document {
	own := v.customer + "/" + v.thing    // topics.ThingPrefix with variables
	up := own + "/" + topics.UpLevel     // topics.UpPrefix with variables
	down := own + "/" + topics.DownLevel // topics.DownPrefix with variables
	arn := func(kind, rest string) string { return p.IoTARN + ":" + kind + "/" + rest }
	var releaseFilters []string
	for _, ch := range p.ReleaseChannels {
		releaseFilters = append(releaseFilters, arn("topicfilter", topics.ReleaseTopic(ch)))
	}
	return Document{Version: "2012-10-17", Statement: []Statement{
		{
			Sid:      "ConnectAsSelf",
			Effect:   "Allow",
			Action:   []string{"iot:Connect"},
			Resource: []string{arn("client", v.thing)},
		},
		{
			// The direction split (package topics): an agent subscribes to
			// and receives only what is sent to it, <customer>/<thing>/down/…
			// and its exact config topic, and publishes only under
			// <customer>/<thing>/up/…, so it can never write into its own
			// command or configuration stream and never receives its own
			// telemetry. '*' is an IAM wildcard and never crosses into
			// another thing: IDs cannot contain '/', so <customer>/<thing>/down/
			// is a whole prefix; '+' and '#' are literal here.
			Sid:    "SubscribeOwnDown",
			Effect: "Allow",
			Action: []string{"iot:Subscribe"},
			Resource: []string{
				arn("topicfilter", down+"/*"),
				arn("topicfilter", own+"/"+topics.ConfigSubject),
			},
		},
		{
			// Receive is checked per delivered message, and the agent's
			// subscriptions (above) can only match its down/ topics and its
			// config topic, so one pattern suffices and keeps the IoT policy
			// under its size quota: even a message on its own up/ topics
			// could reach it only through a filter it may not hold.
			Sid:      "ReceiveOwn",
			Effect:   "Allow",
			Action:   []string{"iot:Receive"},
			Resource: []string{arn("topic", own+"/*")},
		},
		{
			// Its own up/ topics, and its own telemetry topic through Basic
			// Ingest ($aws/rules/<rule>/<customer>/<thing>/up/telemetry,
			// package telemetry): the exact topic, so Basic Ingest reaches
			// only the telemetry rule and only with the agent's own prefix.
			Sid:    "PublishOwnUp",
			Effect: "Allow",
			Action: []string{"iot:Publish"},
			Resource: []string{
				arn("topic", up+"/*"),
				arn("topic", telemetry.BasicIngestPrefix+up+"/"+telemetry.Subject),
			},
		},
		{
			// Everything below the reserved customer ID (the release
			// announcements) is the control plane's, denied explicitly so no
			// Allow can outweigh it: a thing of that type named "releases"
			// would otherwise own agentgate/releases/… as
			// <customer>/<thing>/…, and only the control plane's validation
			// keeps the type from existing. The agent's own config topic
			// needs no Deny: PublishOwnUp allows nothing outside up/.
			Sid:      "NoControlPlaneWrite",
			Effect:   "Deny",
			Action:   []string{"iot:Publish", "iot:RetainPublish"},
			Resource: []string{arn("topic", topics.ReservedCustomerID+"/*")},
		},
		{
			// Exact filters only: retained announcements reach exact
			// subscriptions only, and no filter may cover another channel.
			Sid:      "SubscribeReleases",
			Effect:   "Allow",
			Action:   []string{"iot:Subscribe"},
			Resource: releaseFilters,
		},
		{
			// Receive is checked per delivered message, and messages arrive
			// only through the exact subscriptions above; one pattern keeps
			// the IoT policy under its size quota as channels are added.
			Sid:      "ReceiveReleases",
			Effect:   "Allow",
			Action:   []string{"iot:Receive"},
			Resource: []string{arn("topic", topics.ReleaseRoot+"/*")},
		},
	}}
}

// ConfigTopicsARN is the ARN pattern of every agent's exact config topic
// (<customer>/<thing>/config), for the trusted config publisher. IAM's '*'
// also spans '/', so the pattern also covers deeper topics ending in
// /config and a release channel named "config"; no agent holds it.
func ConfigTopicsARN(iotARN string) string {
	return iotARN + ":topic/*/*/" + topics.ConfigSubject
}

// ReleaseTopicARNs are the exact topic ARNs of the release channels, for the
// release publisher.
func ReleaseTopicARNs(iotARN string, channels []string) []string {
	var out []string
	for _, ch := range channels {
		out = append(out, iotARN+":topic/"+topics.ReleaseTopic(ch))
	}
	return out
}

// ThingTypeName is the thing type of a customer's agents: the customer ID
// itself, after validation. The control plane creates it (CreateThingType)
// when a customer is onboarded and lists the customer's agents with
// ListThings(thingTypeName).
func ThingTypeName(customerID string) (string, error) {
	if err := topics.ValidateCustomerID(customerID); err != nil {
		return "", err
	}
	return customerID, nil
}
