// Package enroll enrols an agent by AWS IoT fleet provisioning by claim,
// through the relay, with nothing but a claim certificate and an install
// token:
//
//  1. a key pair is generated on this host (and kept: the private key never
//     leaves it);
//  2. over MQTT with the claim certificate (TLS on the relay's port, ALPN
//     x-amzn-mqtt-ca, client ID provisioning.ClaimClientID(agent ID)), a CSR
//     goes to CreateCertificateFromCsr and the certificate comes back with
//     its ownership token;
//  3. RegisterThing with the ownership token, the agent ID and the install
//     token: the vendor's pre-provisioning hook checks the token, IoT
//     creates the thing (name = agent ID, type = the token's customer) and
//     activates the certificate with the agents' policy;
//  4. the result is written to Dir: key.pem, cert.pem and enrollment.json
//     (files 0600 in a 0700 directory, each written to a temporary file
//     and renamed).
//
// A request IoT refuses for the account's rate (a throttling rejection,
// provisioning.ErrorResponse.Throttled) is sent again, unchanged, on the
// same connection after a full-jitter backoff (contract/backoff), at most
// Config.ThrottleRetries times and within the enrolment's Timeout; then
// Enrol gives up with ErrThrottled. A throttled request did nothing, so
// sending it again is safe.
//
// Enrol is idempotent: the agent ID, the key and the certificate received
// in step 2 are stored before the next step, so a second run after a crash
// finishes the same enrolment (same agent ID, same key) or starts it
// cleanly, and never asks for a second thing. Once enrollment.json exists,
// Enrol returns it without touching the network.
//
// Topics and payloads: contract/provisioning (AWS IoT developer guide,
// "Device provisioning MQTT API").
package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/backoff"
	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/contract/topics"
)

// ALPN is the protocol IoT Core needs for certificate MQTT on port 443.
const ALPN = netpath.IoTCertificateALPN

// Files in Config.Dir.
const (
	KeyFile     = "key.pem"
	CertFile    = "cert.pem"
	ResultFile  = "enrollment.json"
	pendingFile = "pending.json"
	agentFile   = "agent.json"
)

// Defaults.
const (
	// DefaultTimeout bounds the whole enrolment.
	DefaultTimeout = 60 * time.Second
	// OwnershipTokenLifetime is how long CreateCertificateFromCsr's
	// ownership token is valid (one hour); a stored certificate older than
	// PendingReuse is not used again.
	OwnershipTokenLifetime = time.Hour
	PendingReuse           = 50 * time.Minute
	// MaxSessionBytes bounds everything read from the broker in one enrolment.
	MaxSessionBytes = 256 << 10
)

// Errors Enrol wraps, so callers can tell the cases apart.
var (
	// ErrToken: the install token is malformed or oversize (checked before connecting).
	ErrToken = errors.New("install token invalid")
	// ErrRefused: RegisterThing was answered ACCESS_DENIED: the vendor's
	// hook refused the token (reused, expired, revoked, another customer's,
	// rate-limited) or the agent ID is taken.
	ErrRefused = errors.New("enrolment refused")
	// ErrRejected: IoT rejected a request for another reason.
	ErrRejected = errors.New("enrolment request rejected")
	// ErrCertificate: the certificate IoT returned is not for this host's key.
	ErrCertificate = errors.New("certificate does not match the local key")
	// ErrConnection: the MQTT connection failed or ended early.
	ErrConnection = errors.New("enrolment connection failed")
	// ErrState: the state directory holds another enrolment or is unusable.
	ErrState = errors.New("enrolment state")
	// ErrThrottled: IoT kept refusing a request for the account's rate
	// until the retries or the time ran out; the enrolment kept in Dir
	// continues on the next run.
	ErrThrottled = errors.New("enrolment throttled")
)

// Config configures Enrol.
type Config struct {
	// IoTEndpoint is the IoT data endpoint host[:port] (default port 443).
	IoTEndpoint string
	// ClaimCertificate is the installer's claim certificate and key.
	ClaimCertificate tls.Certificate
	// RootCAs verify AWS's certificates; nil means the system pool.
	RootCAs *x509.CertPool
	// Dialer reaches the endpoint through the relay; nil dials directly.
	Dialer *netpath.Dialer
	// TemplateName is the provisioning template; default provisioning.DefaultTemplateName.
	TemplateName string
	// Token is the install token.
	Token string
	// AgentID is the thing name to ask for; empty: one is generated once
	// and kept in Dir.
	AgentID string
	// ExpectedCustomerID, when set, makes the hook refuse a token of another
	// customer and Enrol check the result.
	ExpectedCustomerID string
	// Dir keeps the key, certificate and state.
	Dir string
	// Timeout bounds the enrolment; default DefaultTimeout.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Attempts is how many connections Enrol makes when one fails
	// (ErrConnection) before it gives up, waiting a full-jitter backoff
	// (contract/backoff) between them; default DefaultAttempts. Retrying is
	// safe: every attempt continues the enrolment kept in Dir.
	Attempts int
	// ThrottleRetries is how many times a request IoT throttled is sent
	// again before Enrol gives up (ErrThrottled); default
	// DefaultThrottleRetries. The waits between them are full jitter over
	// ThrottleBackoff doubling up to ThrottleBackoffMax (defaults
	// DefaultThrottleBackoff, DefaultThrottleBackoffMax).
	ThrottleRetries                     int
	ThrottleBackoff, ThrottleBackoffMax time.Duration
}

// DefaultAttempts and the backoff between attempts.
const (
	DefaultAttempts = 3
	backoffBase     = time.Second
	backoffMax      = 10 * time.Second
	// DefaultThrottleRetries, DefaultThrottleBackoff and
	// DefaultThrottleBackoffMax: with full jitter the expected wait over
	// all retries is half the sum of the windows, about 32 s, within
	// DefaultTimeout.
	DefaultThrottleRetries    = 12
	DefaultThrottleBackoff    = 250 * time.Millisecond
	DefaultThrottleBackoffMax = 8 * time.Second
)

// Result is a finished enrolment (enrollment.json).
type Result struct {
	AgentID       string    `json:"agentId"`
	CustomerID    string    `json:"customerId"`
	CertificateID string    `json:"certificateId"`
	EnrolledAt    time.Time `json:"enrolledAt"`
	// CertFile and KeyFile are the paths of the agent's certificate and key.
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
	// AlreadyEnrolled is true when Enrol found a finished enrolment.
	AlreadyEnrolled bool `json:"-"`
}

// pending is a certificate received and not yet registered.
type pending struct {
	AgentID        string    `json:"agentId"`
	CertificateID  string    `json:"certificateId"`
	CertificatePEM string    `json:"certificatePem"`
	OwnershipToken string    `json:"certificateOwnershipToken"`
	ReceivedAt     time.Time `json:"receivedAt"`
}

// Load reads a finished enrolment from dir.
func Load(dir string) (Result, error) {
	var r Result
	b, err := readBounded(filepath.Join(dir, ResultFile), 64<<10)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: %s: %v", ErrState, ResultFile, err)
	}
	if topics.ValidateThingName(r.AgentID) != nil || topics.ValidateCustomerID(r.CustomerID) != nil {
		return r, fmt.Errorf("%w: %s names agent %q of customer %q", ErrState, ResultFile, r.AgentID, r.CustomerID)
	}
	return r, nil
}

// Enrol runs (or finishes, or reports) the enrolment kept in cfg.Dir.
func Enrol(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TemplateName == "" {
		cfg.TemplateName = provisioning.DefaultTemplateName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ThrottleRetries <= 0 {
		cfg.ThrottleRetries = DefaultThrottleRetries
	}
	if cfg.ThrottleBackoff <= 0 {
		cfg.ThrottleBackoff = DefaultThrottleBackoff
	}
	if cfg.ThrottleBackoffMax <= 0 {
		cfg.ThrottleBackoffMax = DefaultThrottleBackoffMax
	}
	if cfg.Dir == "" {
		return Result{}, fmt.Errorf("%w: no directory", ErrState)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrState, err)
	}
	if r, err := Load(cfg.Dir); err == nil {
		if cfg.AgentID != "" && cfg.AgentID != r.AgentID {
			return r, fmt.Errorf("%w: %s is already enrolled as %s, not %s: use another directory", ErrState, cfg.Dir, r.AgentID, cfg.AgentID)
		}
		r.AlreadyEnrolled = true
		return r, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return Result{}, err
	}
	if _, err := provisioning.ParseToken(cfg.Token); err != nil {
		return Result{}, fmt.Errorf("%w: %v: check that the whole token was copied (agt1.<32 hex>.<43 characters>)", ErrToken, err)
	}
	if cfg.ExpectedCustomerID != "" {
		if err := topics.ValidateCustomerID(cfg.ExpectedCustomerID); err != nil {
			return Result{}, err
		}
	}
	if err := provisioning.ValidateTemplateName(cfg.TemplateName); err != nil {
		return Result{}, err
	}
	if len(cfg.ClaimCertificate.Certificate) == 0 {
		return Result{}, errors.New("no claim certificate configured")
	}
	agentID, err := agentIDFor(cfg)
	if err != nil {
		return Result{}, err
	}
	key, err := loadOrCreateKey(filepath.Join(cfg.Dir, KeyFile))
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	attempts := cfg.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	for n := 0; ; n++ {
		r, err := attempt(ctx, cfg, agentID, key)
		if err == nil || !errors.Is(err, ErrConnection) || n+1 >= attempts {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, err
		case <-time.After(backoff.FullJitter(backoffBase, backoffMax, n)):
		}
	}
}

// attempt is one connection's worth of the enrolment.
func attempt(ctx context.Context, cfg Config, agentID string, key *ecdsa.PrivateKey) (Result, error) {
	s, err := connect(ctx, cfg, agentID)
	if err != nil {
		return Result{}, err
	}
	defer s.close()
	return s.enrol(ctx, cfg, agentID, key)
}

// agentIDFor returns the agent ID this directory enrols: the stored one,
// else cfg.AgentID or a new random one, stored before any request.
func agentIDFor(cfg Config) (string, error) {
	path := filepath.Join(cfg.Dir, agentFile)
	var stored struct {
		AgentID string `json:"agentId"`
	}
	b, err := readBounded(path, 4<<10)
	switch {
	case err == nil:
		if json.Unmarshal(b, &stored) != nil || provisioning.ValidateAgentID(stored.AgentID) != nil {
			return "", fmt.Errorf("%w: %s is damaged: remove the directory to start over", ErrState, path)
		}
		if cfg.AgentID != "" && cfg.AgentID != stored.AgentID {
			return "", fmt.Errorf("%w: %s is enrolling agent %s, not %s: finish that one or use another directory", ErrState, cfg.Dir, stored.AgentID, cfg.AgentID)
		}
		return stored.AgentID, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", err
	}
	id := cfg.AgentID
	if id == "" {
		var r [12]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		id = "agent-" + hex.EncodeToString(r[:])
	}
	if err := provisioning.ValidateAgentID(id); err != nil {
		return "", err
	}
	stored.AgentID = id
	b, _ = json.Marshal(stored)
	return id, writeAtomic(path, b)
}

func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := readBounded(path, 16<<10)
	if err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%w: %s is not PEM", ErrState, path)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrState, path, err)
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not an ECDSA key", ErrState, path)
		}
		return ec, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return k, writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// session is one MQTT connection with the claim certificate.
type session struct {
	c        *paho.Client
	template string
	inbox    chan *paho.Publish
}

func connect(ctx context.Context, cfg Config, agentID string) (*session, error) {
	host, port, err := net.SplitHostPort(cfg.IoTEndpoint)
	if err != nil {
		host, port = cfg.IoTEndpoint, "443"
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 || strings.ContainsAny(cfg.IoTEndpoint, "/?#@ ") {
		return nil, fmt.Errorf("iot endpoint %q must be host[:port]", cfg.IoTEndpoint)
	}
	d := cfg.Dialer
	if d == nil {
		d = &netpath.Dialer{}
	}
	addrs, err := d.Resolve(ctx, host, port)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnection, err)
	}
	raw, err := d.DialAddrs(ctx, "tcp", net.JoinHostPort(host, port), addrs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnection, err)
	}
	tc := tls.Client(raw, &tls.Config{Certificates: []tls.Certificate{cfg.ClaimCertificate}, RootCAs: cfg.RootCAs, ServerName: host, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("%w: %v", ErrConnection, d.ClassifyTLS(host, err, true))
	}
	s := &session{template: cfg.TemplateName, inbox: make(chan *paho.Publish, 8)}
	s.c = paho.NewClient(paho.ClientConfig{
		Conn: packets.NewThreadSafeConn(&budgetConn{Conn: tc, left: MaxSessionBytes}),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case s.inbox <- pr.Packet:
			default: // unsolicited flood: dropped; the one awaited answer is early in the queue
			}
			return true, nil
		}},
	})
	ack, err := s.c.Connect(ctx, &paho.Connect{ClientID: provisioning.ClaimClientID(agentID), CleanStart: true, KeepAlive: 30,
		Properties: &paho.ConnectProperties{MaximumPacketSize: ptr(uint32(provisioning.MaxMessageBytes + 1024))}})
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("%w: MQTT CONNECT as %s: %v", ErrConnection, provisioning.ClaimClientID(agentID), err)
	}
	if ack.ReasonCode != 0 {
		tc.Close()
		return nil, fmt.Errorf("%w: MQTT CONNECT refused (reason %d): is the claim certificate active with the claim policy attached?", ErrConnection, ack.ReasonCode)
	}
	t := cfg.TemplateName
	var subs []paho.SubscribeOptions
	for _, topic := range []string{provisioning.CreateFromCSRAccepted, provisioning.CreateFromCSRRejected, provisioning.ProvisionAccepted(t), provisioning.ProvisionRejected(t)} {
		subs = append(subs, paho.SubscribeOptions{Topic: topic, QoS: 1})
	}
	// Subscribe before the first request: IoT sends each answer once.
	sa, err := s.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	if err == nil {
		for _, rc := range sa.Reasons {
			if rc >= 0x80 {
				err = fmt.Errorf("subscription refused (reason %d): is the claim policy attached?", rc)
			}
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%w: %v", ErrConnection, err)
	}
	return s, nil
}

func ptr[T any](v T) *T { return &v }

func (s *session) close() {
	_ = s.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// call publishes payload to topic and returns the answer on accepted or
// rejected (a rejection as provisioning.ErrorResponse).
func (s *session) call(ctx context.Context, topic, accepted, rejected string, payload any) ([]byte, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	// paho waits for the PUBACK until its packet timeout even when the
	// connection is gone; stop waiting when the client shuts down.
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-s.c.Done():
			stop()
		case <-pctx.Done():
		}
	}()
	if _, err := s.c.Publish(pctx, &paho.Publish{Topic: topic, QoS: 1, Payload: b}); err != nil {
		return nil, fmt.Errorf("%w: publish %s: %v", ErrConnection, topic, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no answer on %s: %v", ErrConnection, accepted, ctx.Err())
		case <-s.c.Done():
			return nil, fmt.Errorf("%w: the connection ended before the answer on %s", ErrConnection, accepted)
		case p := <-s.inbox:
			switch p.Topic {
			case accepted:
				return p.Payload, nil
			case rejected:
				e, err := provisioning.ParseErrorResponse(p.Payload)
				if err != nil {
					return nil, fmt.Errorf("%w: unreadable rejection on %s: %v", ErrRejected, rejected, err)
				}
				return nil, e
			}
		}
	}
}

// callRetrying is call, sending the request again after a full-jitter
// backoff while IoT throttles it, within cfg's bounds.
func (s *session) callRetrying(ctx context.Context, cfg Config, op, topic, accepted, rejected string, payload any) ([]byte, error) {
	for n := 0; ; n++ {
		raw, err := s.call(ctx, topic, accepted, rejected, payload)
		var rej provisioning.ErrorResponse
		if !errors.As(err, &rej) || !rej.Throttled() {
			return raw, err
		}
		if n >= cfg.ThrottleRetries {
			return nil, fmt.Errorf("%w: %s throttled %d times (%v): the account's provisioning rate is used up; run the enrolment again later", ErrThrottled, op, n+1, rej)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s throttled (%v) and the enrolment's time ran out: run it again later", ErrThrottled, op, rej)
		case <-time.After(backoff.FullJitter(cfg.ThrottleBackoff, cfg.ThrottleBackoffMax, n)):
		}
	}
}

func (s *session) enrol(ctx context.Context, cfg Config, agentID string, key *ecdsa.PrivateKey) (Result, error) {
	pendingPath := filepath.Join(cfg.Dir, pendingFile)
	p, reused := loadPending(pendingPath, agentID, key, cfg.Now())
	for attempt := 0; ; attempt++ {
		if !reused {
			var err error
			if p, err = s.createCertificate(ctx, cfg, agentID, key, pendingPath); err != nil {
				return Result{}, err
			}
		}
		params := map[string]string{provisioning.ParamAgentID: agentID, provisioning.ParamInstallToken: strings.TrimSpace(cfg.Token)}
		if cfg.ExpectedCustomerID != "" {
			params[provisioning.ParamExpectedCustomerID] = cfg.ExpectedCustomerID
		}
		t := cfg.TemplateName
		raw, err := s.callRetrying(ctx, cfg, "RegisterThing", provisioning.ProvisionTopic(t), provisioning.ProvisionAccepted(t), provisioning.ProvisionRejected(t),
			provisioning.RegisterThingRequest{CertificateOwnershipToken: p.OwnershipToken, Parameters: params})
		var rej provisioning.ErrorResponse
		switch {
		case errors.As(err, &rej) && rej.ErrorCode == provisioning.ErrorCodeAccessDenied:
			return Result{}, fmt.Errorf("%w: %v: the vendor's check refused install token for agent %s (used up, expired, revoked, another customer's, the agent ID taken, or too many enrolments this minute); ask the vendor for a new token", ErrRefused, rej, agentID)
		case errors.As(err, &rej) && reused && attempt == 0:
			// The stored certificate's ownership token was not accepted
			// (expired, or already used by a registration whose answer was
			// lost): start over with a new certificate for the same key
			// and agent ID.
			os.Remove(pendingPath)
			reused = false
			continue
		case errors.As(err, &rej):
			return Result{}, fmt.Errorf("%w: RegisterThing: %v", ErrRejected, rej)
		case err != nil:
			return Result{}, err
		}
		resp, err := provisioning.ParseRegisterThingResponse(raw)
		if err != nil {
			return Result{}, fmt.Errorf("%w: RegisterThing answer: %v", ErrRejected, err)
		}
		customer := resp.DeviceConfiguration[provisioning.ParamCustomerID]
		if resp.ThingName != agentID || topics.ValidateCustomerID(customer) != nil {
			return Result{}, fmt.Errorf("%w: registered thing %q of customer %q, asked for %q", ErrRejected, resp.ThingName, customer, agentID)
		}
		if cfg.ExpectedCustomerID != "" && customer != cfg.ExpectedCustomerID {
			return Result{}, fmt.Errorf("%w: enrolled for customer %q, expected %q", ErrRejected, customer, cfg.ExpectedCustomerID)
		}
		certPath := filepath.Join(cfg.Dir, CertFile)
		if err := writeAtomic(certPath, []byte(p.CertificatePEM)); err != nil {
			return Result{}, err
		}
		r := Result{AgentID: agentID, CustomerID: customer, CertificateID: p.CertificateID, EnrolledAt: cfg.Now().UTC(),
			CertFile: certPath, KeyFile: filepath.Join(cfg.Dir, KeyFile)}
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := writeAtomic(filepath.Join(cfg.Dir, ResultFile), append(b, '\n')); err != nil {
			return Result{}, err
		}
		os.Remove(pendingPath)
		return r, nil
	}
}

func (s *session) createCertificate(ctx context.Context, cfg Config, agentID string, key *ecdsa.PrivateKey, path string) (pending, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: agentID}}, key)
	if err != nil {
		return pending{}, err
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	raw, err := s.callRetrying(ctx, cfg, "CreateCertificateFromCsr", provisioning.CreateFromCSRTopic, provisioning.CreateFromCSRAccepted, provisioning.CreateFromCSRRejected,
		provisioning.CreateCertificateFromCSRRequest{CertificateSigningRequest: string(csr)})
	var rej provisioning.ErrorResponse
	if errors.As(err, &rej) {
		return pending{}, fmt.Errorf("%w: CreateCertificateFromCsr: %v", ErrRejected, rej)
	}
	if err != nil {
		return pending{}, err
	}
	resp, err := provisioning.ParseCreateCertificateResponse(raw)
	if err != nil {
		return pending{}, fmt.Errorf("%w: CreateCertificateFromCsr answer: %v", ErrRejected, err)
	}
	if err := matchesKey(resp.CertificatePEM, key); err != nil {
		return pending{}, err
	}
	p := pending{AgentID: agentID, CertificateID: resp.CertificateID, CertificatePEM: resp.CertificatePEM, OwnershipToken: resp.CertificateOwnershipToken, ReceivedAt: cfg.Now().UTC()}
	b, _ := json.Marshal(p)
	return p, writeAtomic(path, b)
}

// matchesKey checks that certPEM is a certificate of key's public key.
func matchesKey(certPEM string, key *ecdsa.PrivateKey) error {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fmt.Errorf("%w: the answer holds no PEM certificate", ErrCertificate)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCertificate, err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return ErrCertificate
	}
	return nil
}

// loadPending returns a stored certificate that can still be registered.
func loadPending(path, agentID string, key *ecdsa.PrivateKey, now time.Time) (pending, bool) {
	var p pending
	b, err := readBounded(path, 64<<10)
	if err != nil || json.Unmarshal(b, &p) != nil || p.AgentID != agentID || p.OwnershipToken == "" ||
		matchesKey(p.CertificatePEM, key) != nil || now.Sub(p.ReceivedAt) > PendingReuse || now.Before(p.ReceivedAt) {
		return pending{}, false
	}
	return p, true
}

// writeAtomic writes path with mode 0600 through a temporary file in the
// same directory, synced and renamed, so a crash leaves the old file or the
// new one, never a part.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%w: %s is %d bytes; at most %d expected", ErrState, path, st.Size(), max)
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	if err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	return b, nil
}

// budgetConn fails reads once left bytes have been read: a broker (or a
// hostile middlebox) cannot make an enrolment read without bound.
type budgetConn struct {
	net.Conn
	mu   sync.Mutex
	left int
}

func (c *budgetConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	left := c.left
	c.mu.Unlock()
	if left <= 0 {
		return 0, fmt.Errorf("%w: more than %d bytes from the broker", ErrConnection, MaxSessionBytes)
	}
	if len(p) > left {
		p = p[:left]
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.left -= n
	c.mu.Unlock()
	return n, err
}
