// Package provisionstandin serves AWS IoT's fleet-provisioning MQTT API
// inside a mochi-mqtt broker, as the AWS IoT developer guide documents it
// ("Device provisioning MQTT API",
// https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html),
// so the agent's enrolment runs end to end in the lab:
//
//   - CreateCertificateFromCsr on $aws/certificates/create-from-csr/json:
//     the CSR's signature is checked, the certificate is signed by the
//     lab's CA (so the gateway stand-in accepts it), PENDING_ACTIVATION,
//     with an ownership token valid for one hour;
//   - RegisterThing on $aws/provisioning-templates/<name>/provision/json:
//     the ownership token must name a pending certificate; the
//     pre-provisioning hook is called with the documented input (and a
//     refusal, failure or late answer gives ACCESS_DENIED); the parameter
//     overrides are added to the parameters; the template body
//     (agentpolicy.ProvisioningTemplateBody) is evaluated: thing name and
//     thing type from their Refs (an existing thing keeps its type:
//     DO_NOTHING), the certificate ACTIVE and attached;
//   - when Limit (or LimitAtDocumentedRates) set a rate for an operation,
//     requests above it are answered on …/rejected with status 429 and
//     ThrottlingException (provisioning.ErrorCodeThrottling) and not
//     handled: a token bucket per operation, one for the whole stand-in
//     (it is one AWS account and region), refilled on the Now clock;
//   - answers go to the requesting connection only, on …/accepted or
//     …/rejected ({statusCode, errorCode, errorMessage}), and only if it
//     subscribed to that topic first ("If you don't subscribe to the
//     response topics before you publish a request, you might not receive
//     the results"); requests from a client ID without the claim prefix are
//     dropped and the client disconnected, as the claim policy would.
//
// Unverified details it has to choose: answers are QoS 0; the error codes
// and messages of rejections other than ACCESS_DENIED; the certificate ID
// is the hex SHA-256 of the certificate's DER; an ownership token is good
// for one RegisterThing and stays good after a RegisterThing that failed;
// a template naming a thing type that does not exist fails RegisterThing
// (400 ResourceNotFound) after the hook admitted it; how IoT throttles
// (the rejection's status and code, a token bucket, its burst of one
// second's worth of requests) and whether the MQTT API shares the quota
// of the control-plane API of the same name.
package provisionstandin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/deploy/agentpolicy"
)

// HookTimeout is IoT's limit for the pre-provisioning hook.
const HookTimeout = 5 * time.Second

// Default request rates (transactions per second, per account and region)
// of the operations the stand-in serves, from the "AWS IoT Throttling
// Limits" table of the AWS IoT developer guide's limits page
// (https://docs.aws.amazon.com/iot/latest/developerguide/limits-iot.html,
// source awsdocs/aws-iot-docs doc_source/limits-iot.md), which now points
// to the AWS IoT Core endpoints and quotas page
// (https://docs.aws.amazon.com/general/latest/gr/iot-core.html; Service
// Quotas "CreateCertificateFromCsr API TPS" L-01BCDDCA, "RegisterThing
// API TPS" L-C0B2EF8B). The table names the control-plane APIs; that the
// MQTT API of the same name shares the figure is unverified, and the
// current values on the quotas page could not be read: unverified.
// CreateKeysAndCertificate ("CreateKeysAndCertificate API TPS",
// L-40B55430) is not in that table and not served (agentgate never lets
// AWS generate an agent's key): no figure, unverified.
const (
	CreateCertificateFromCsrTPS = 15
	RegisterThingTPS            = 10
)

// Signer signs a certificate template for pub (the lab's CA).
type Signer func(tmpl *x509.Certificate, pub any) ([]byte, error)

// Thing is a thing the stand-in created or was told about.
type Thing struct {
	Name, Type   string
	Certificates []string
}

// StandIn is the mochi hook.
type StandIn struct {
	mqtt.HookBase
	// Template is the template name served; Policy the agent policy it attaches.
	Template, Policy string
	// TemplateARN is sent to the hook.
	TemplateARN string
	// ClaimCertificateID is sent to the hook as claimCertificateId.
	ClaimCertificateID string
	// Hook is the pre-provisioning hook, called as IoT calls the Lambda.
	Hook func(context.Context, json.RawMessage) (provisioning.HookResponse, error)
	// Sign issues certificates.
	Sign Signer
	// OnThing is told about every thing created (e.g. to register it with
	// the IoT control-plane stand-in the hook asks).
	OnThing func(Thing)
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu         sync.Mutex
	types      map[string]bool
	things     map[string]*Thing
	pending    map[string]*cert // by ownership token
	certs      map[string]*cert // by certificate ID
	dropAnswer map[string]int   // operation → answers to withhold (the connection is cut instead)
	dropBefore map[string]int   // operation → requests to cut before handling
	// TamperCertificates makes CreateCertificateFromCsr return a
	// certificate for another key than the CSR's (a hostile middle).
	TamperCertificates bool
	// Rewrite, when set, replaces each answer before it is sent (a
	// hostile or broken broker): op, the answer and its status in, the
	// payload to send and whether it goes to the rejected topic out.
	Rewrite func(op string, answer []byte, status int) ([]byte, bool)
	// OnThrottle, when set, is called after each request throttled (its
	// rejection sent), with the operation.
	OnThrottle func(op string)
	calls      map[string]int
	throttled  map[string]int
	limits     map[string]*bucket
}

// bucket is a token bucket: rate tokens a second up to burst; a request
// takes one.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

type cert struct {
	id, pem, status string
	expires         time.Time
}

// New returns a stand-in; add it with Broker.AddHook(s, nil).
func New(template, policy, templateARN string, hook func(context.Context, json.RawMessage) (provisioning.HookResponse, error), sign Signer) *StandIn {
	return &StandIn{Template: template, Policy: policy, TemplateARN: templateARN, ClaimCertificateID: "claimcertificate0", Hook: hook, Sign: sign,
		types: map[string]bool{}, things: map[string]*Thing{}, pending: map[string]*cert{}, certs: map[string]*cert{}, dropAnswer: map[string]int{}, dropBefore: map[string]int{}, calls: map[string]int{},
		throttled: map[string]int{}, limits: map[string]*bucket{}}
}

// ID names the hook.
func (s *StandIn) ID() string { return "fleet-provisioning-standin" }

// Provides selects OnPublish.
func (s *StandIn) Provides(b byte) bool { return b == mqtt.OnPublish }

// AddThingType registers a customer's thing type (CreateThingType).
func (s *StandIn) AddThingType(name string) { s.mu.Lock(); s.types[name] = true; s.mu.Unlock() }

// AddThing registers an existing thing.
func (s *StandIn) AddThing(name, thingType string) {
	s.mu.Lock()
	s.things[name] = &Thing{Name: name, Type: thingType}
	s.mu.Unlock()
}

// Things returns every thing, by name.
func (s *StandIn) Things() map[string]Thing {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]Thing{}
	for k, v := range s.things {
		out[k] = Thing{Name: v.Name, Type: v.Type, Certificates: append([]string(nil), v.Certificates...)}
	}
	return out
}

// CertificateStatus is a certificate's status ("" when unknown).
func (s *StandIn) CertificateStatus(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.certs[id]; c != nil {
		return c.status
	}
	return ""
}

// Calls counts requests by operation ("CreateCertificateFromCsr", "RegisterThing").
func (s *StandIn) Calls(op string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[op] }

// Throttled counts requests of op answered ThrottlingException (they are
// counted by Calls too).
func (s *StandIn) Throttled(op string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.throttled[op] }

// Limit throttles op ("CreateCertificateFromCsr", "RegisterThing") to
// perSecond requests a second with bursts of up to burst (at least 1),
// measured on the Now clock; the bucket starts full. perSecond ≤ 0
// removes the limit.
func (s *StandIn) Limit(op string, perSecond float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond <= 0 {
		delete(s.limits, op)
		return
	}
	b := float64(max(burst, 1))
	s.limits[op] = &bucket{rate: perSecond, burst: b, tokens: b, last: s.now()}
}

// LimitAtDocumentedRates throttles both operations at their documented
// default rates, with bursts of one second's worth.
func (s *StandIn) LimitAtDocumentedRates() {
	s.Limit("CreateCertificateFromCsr", CreateCertificateFromCsrTPS, CreateCertificateFromCsrTPS)
	s.Limit("RegisterThing", RegisterThingTPS, RegisterThingTPS)
}

// admit takes a token for op, or counts it throttled; s.mu held.
func (s *StandIn) admit(op string) bool {
	b := s.limits[op]
	if b == nil {
		return true
	}
	if now := s.now(); now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < 1 {
		s.throttled[op]++
		return false
	}
	b.tokens--
	return true
}

// CutAfter makes the next n requests of op complete (a RegisterThing
// registers) and then cut the client's connection instead of answering:
// an answer lost to a crash or a network failure.
func (s *StandIn) CutAfter(op string, n int) { s.mu.Lock(); s.dropAnswer[op] += n; s.mu.Unlock() }

// CutBefore makes the next n requests of op cut the client's connection
// before anything is done: the client crashed or lost the network just
// as it sent them.
func (s *StandIn) CutBefore(op string, n int) { s.mu.Lock(); s.dropBefore[op] += n; s.mu.Unlock() }

func (s *StandIn) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// OnPublish serves the provisioning topics and lets everything else through.
func (s *StandIn) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	var op, accepted, rejected string
	switch pk.TopicName {
	case provisioning.CreateFromCSRTopic:
		op, accepted, rejected = "CreateCertificateFromCsr", provisioning.CreateFromCSRAccepted, provisioning.CreateFromCSRRejected
	case provisioning.ProvisionTopic(s.Template):
		op, accepted, rejected = "RegisterThing", provisioning.ProvisionAccepted(s.Template), provisioning.ProvisionRejected(s.Template)
	default:
		if strings.HasPrefix(pk.TopicName, "$aws/") {
			return pk, packets.ErrRejectPacket // not served here; never delivered
		}
		return pk, nil
	}
	if !strings.HasPrefix(cl.ID, provisioning.ClaimClientIDPrefix) {
		cl.Stop(errors.New("not authorized by the claim policy"))
		return pk, packets.ErrRejectPacket
	}
	s.mu.Lock()
	s.calls[op]++
	before := s.dropBefore[op] > 0
	if before {
		s.dropBefore[op]--
	}
	admitted := before || s.admit(op)
	s.mu.Unlock()
	if before {
		cl.Stop(errors.New("connection cut by the test"))
		return pk, packets.ErrRejectPacket
	}
	var answer []byte
	var status int
	switch {
	case !admitted:
		answer, status = reject(provisioning.StatusThrottled, provisioning.ErrorCodeThrottling, "Rate exceeded")
	case op == "CreateCertificateFromCsr":
		answer, status = s.CreateCertificate(pk.Payload)
	default:
		answer, status = s.registerThing(cl.ID, pk.Payload)
	}
	s.mu.Lock()
	cut := admitted && s.dropAnswer[op] > 0
	if cut {
		s.dropAnswer[op]--
	}
	s.mu.Unlock()
	if cut {
		cl.Stop(errors.New("connection cut by the test"))
		return pk, packets.ErrRejectPacket
	}
	topic := accepted
	if status != 0 {
		topic = rejected
	}
	if s.Rewrite != nil {
		var toRejected bool
		answer, toRejected = s.Rewrite(op, answer, status)
		topic = accepted
		if toRejected {
			topic = rejected
		}
	}
	if _, subscribed := cl.State.Subscriptions.Get(topic); subscribed {
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: answer})
	}
	if !admitted && s.OnThrottle != nil {
		s.OnThrottle(op)
	}
	return pk, packets.CodeSuccessIgnore // acknowledged, never delivered to subscribers
}

func reject(status int, code, msg string) ([]byte, int) {
	b, _ := json.Marshal(provisioning.ErrorResponse{StatusCode: status, ErrorCode: code, ErrorMessage: msg})
	return b, status
}

// CreateCertificate handles one CreateCertificateFromCsr payload and
// returns the answer and its status (0: accepted).
func (s *StandIn) CreateCertificate(payload []byte) ([]byte, int) {
	req, err := provisioning.ParseCreateCertificateRequest(payload)
	if err != nil {
		return reject(400, "InvalidPayload", err.Error())
	}
	blk, _ := pem.Decode([]byte(req.CertificateSigningRequest))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return reject(400, "InvalidCSR", "the CSR is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return reject(400, "InvalidCSR", err.Error())
	}
	if err := csr.CheckSignature(); err != nil {
		return reject(400, "InvalidCSR", "signature: "+err.Error())
	}
	pub := csr.PublicKey
	if s.TamperCertificates {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pub = &other.PublicKey
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	now := s.now()
	der, err := s.Sign(&x509.Certificate{
		SerialNumber: serial, Subject: csr.Subject, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, pub)
	if err != nil {
		return reject(500, "InternalFailure", err.Error())
	}
	sum := sha256.Sum256(der)
	var tok [32]byte
	rand.Read(tok[:])
	c := &cert{id: hex.EncodeToString(sum[:]), pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), status: "PENDING_ACTIVATION", expires: now.Add(time.Hour)}
	token := hex.EncodeToString(tok[:])
	s.mu.Lock()
	s.pending[token] = c
	s.certs[c.id] = c
	s.mu.Unlock()
	b, _ := json.Marshal(provisioning.CreateCertificateFromCSRResponse{CertificateID: c.id, CertificatePEM: c.pem, CertificateOwnershipToken: token})
	return b, 0
}

func (s *StandIn) registerThing(clientID string, payload []byte) ([]byte, int) {
	req, err := provisioning.ParseRegisterThingRequest(payload)
	if err != nil {
		return reject(400, "InvalidPayload", err.Error())
	}
	s.mu.Lock()
	c := s.pending[req.CertificateOwnershipToken]
	s.mu.Unlock()
	if c == nil || !s.now().Before(c.expires) {
		return reject(400, "InvalidCertificateOwnershipToken", "the certificate ownership token is not valid")
	}
	ev, _ := json.Marshal(provisioning.HookEvent{ClaimCertificateID: s.ClaimCertificateID, CertificateID: c.id, CertificatePEM: c.pem,
		TemplateARN: s.TemplateARN, ClientID: clientID, Parameters: req.Parameters})
	ctx, cancel := context.WithTimeout(context.Background(), HookTimeout)
	resp, err := s.Hook(ctx, ev)
	cancel()
	if err != nil || !resp.AllowProvisioning {
		return reject(403, provisioning.ErrorCodeAccessDenied, "Access denied by the pre-provisioning hook")
	}
	params := map[string]string{"AWS::IoT::Certificate::Id": c.id}
	for k, v := range req.Parameters {
		params[k] = v
	}
	for k, v := range resp.ParameterOverrides {
		params[k] = v
	}
	body := agentpolicy.ProvisioningTemplateBody(s.Policy)
	ref := func(v any) string {
		m, _ := v.(map[string]any)
		name, _ := m["Ref"].(string)
		return params[name]
	}
	props := body["Resources"].(map[string]any)["thing"].(map[string]any)["Properties"].(map[string]any)
	name, thingType := ref(props["ThingName"]), ref(props["ThingTypeName"])
	devCfg := map[string]string{}
	for k, v := range body["DeviceConfiguration"].(map[string]any) {
		devCfg[k] = ref(v)
	}
	s.mu.Lock()
	if !s.types[thingType] {
		s.mu.Unlock()
		return reject(400, "ResourceNotFound", "thing type "+thingType+" does not exist")
	}
	t := s.things[name]
	created := t == nil
	if created {
		t = &Thing{Name: name, Type: thingType}
		s.things[name] = t
	} // else DO_NOTHING: the existing thing keeps its type
	t.Certificates = append(t.Certificates, c.id)
	c.status = "ACTIVE"
	delete(s.pending, req.CertificateOwnershipToken)
	snapshot := Thing{Name: t.Name, Type: t.Type}
	s.mu.Unlock()
	if created && s.OnThing != nil {
		s.OnThing(snapshot)
	}
	b, _ := json.Marshal(provisioning.RegisterThingResponse{ThingName: name, DeviceConfiguration: devCfg})
	return bytes.TrimSpace(b), 0
}
