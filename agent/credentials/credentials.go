// Package credentials gets temporary AWS credentials from the AWS IoT
// credentials provider with the agent's X.509 certificate, as
// aws.CredentialsProvider so aws.CredentialsCache (and any AWS SDK client)
// can use it.
//
// Wire format (AWS IoT developer guide, "Authorizing direct calls to AWS
// services"): GET https://<prefix>.credentials.iot.<region>.amazonaws.com/role-aliases/<alias>/credentials
// over mutual TLS with the device certificate and the header
// x-amzn-iot-thingname, answered by
// {"credentials":{"accessKeyId","secretAccessKey","sessionToken","expiration"}}.
// The thing-name header is what makes ${credentials-iot:ThingName} and
// ${credentials-iot:ThingTypeName} resolve in the role's policy, so it is
// always sent.
package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/contract/rolealias"
	"github.com/agentgate/agentgate/contract/topics"
)

// ThingNameHeader carries the agent's thing name to the credentials provider.
const ThingNameHeader = "x-amzn-iot-thingname"

// Source is aws.Credentials.Source for credentials from this package.
const Source = "IoTCredentialsProvider"

// MaxResponseBytes bounds the provider's answer (a real one is ~1.5 KB).
const MaxResponseBytes = 64 << 10

// MaxClockSkew is how far the local clock may differ from AWS's before
// SigV4 signatures are refused.
const MaxClockSkew = 5 * time.Minute

// DefaultTimeout bounds one credentials request.
const DefaultTimeout = 15 * time.Second

// Provider retrieves credentials for one thing through one role alias.
type Provider struct {
	// Endpoint is the account's credentials-provider host (with an
	// optional :port), e.g. c2abc.credentials.iot.eu-west-1.amazonaws.com.
	Endpoint string
	// RoleAlias is the role alias name.
	RoleAlias string
	// ThingName is sent as x-amzn-iot-thingname.
	ThingName string
	// Certificate is the device certificate and key.
	Certificate tls.Certificate
	// RootCAs verify the provider's certificate; nil means the system pool.
	RootCAs *x509.CertPool
	// Dialer reaches the endpoint (through the relay); nil dials directly.
	Dialer *netpath.Dialer
	// Now is the local clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// Validate reports a configuration that cannot work, naming the field.
func (p *Provider) Validate() error {
	switch {
	case p.Endpoint == "":
		return fmt.Errorf("credentials endpoint is empty")
	case strings.ContainsAny(p.Endpoint, "/?#@ "):
		return fmt.Errorf("credentials endpoint %q must be a host name (with optional :port), not a URL", p.Endpoint)
	case p.RoleAlias == "":
		return fmt.Errorf("role alias is empty")
	case !rolealias.ValidName(p.RoleAlias):
		return rolealias.ValidateName(p.RoleAlias)
	case len(p.Certificate.Certificate) == 0:
		return fmt.Errorf("%w: no client certificate configured", agenterr.ErrBadCertificate)
	}
	return topics.ValidateThingName(p.ThingName)
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Retrieve implements aws.CredentialsProvider: one request, no retries (the
// caller's reconnect loop backs off).
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if err := p.Validate(); err != nil {
		return aws.Credentials{}, err
	}
	host := p.Endpoint
	if h, _, err := net.SplitHostPort(p.Endpoint); err == nil {
		host = h
	}
	dialer := p.Dialer
	if dialer == nil {
		dialer = &netpath.Dialer{}
	}
	tr := &http.Transport{
		DialContext: dialer.DialContext,
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{p.Certificate},
			RootCAs:      p.RootCAs,
			ServerName:   host,
			MinVersion:   tls.VersionTLS12,
		},
		// One request an hour: never keep an idle connection through the relay.
		DisableKeepAlives:     true,
		ResponseHeaderTimeout: p.timeout(),
		ForceAttemptHTTP2:     false,
	}
	defer tr.CloseIdleConnections()
	timeout := p.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := url.URL{Scheme: "https", Host: p.Endpoint, Path: "/role-aliases/" + p.RoleAlias + "/credentials"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return aws.Credentials{}, err
	}
	req.Header.Set(ThingNameHeader, p.ThingName)
	sent := p.now()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // the URL is in the message already
		}
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: %w", p.Endpoint, dialer.ClassifyTLS(p.Endpoint, err, true))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: reading the answer: %w", p.Endpoint, dialer.ClassifyTLS(p.Endpoint, err, true))
	}
	if err := checkSkew(resp.Header.Get("Date"), sent); err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: %w", p.Endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: %w", p.Endpoint, statusError(resp.StatusCode, body, p.RoleAlias, p.ThingName))
	}
	if len(body) > MaxResponseBytes {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: answer exceeds %d bytes", p.Endpoint, MaxResponseBytes)
	}
	creds, err := ParseResponse(body)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: %w", p.Endpoint, err)
	}
	if now := p.now(); !creds.Expires.After(now) {
		return aws.Credentials{}, fmt.Errorf("credentials provider %s: %w: credentials expired at %s but the local clock says %s: check the local clock (NTP) and the role alias's credentialDurationSeconds",
			p.Endpoint, agenterr.ErrCredentialsExpired, creds.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return creds, nil
}

func (p *Provider) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

// checkSkew compares the server's Date header with the local time the request
// was sent: SigV4 refuses signatures more than 5 minutes off, so a skewed
// clock is reported here, where the cause is plain, rather than as a
// signature error later.
func checkSkew(date string, local time.Time) error {
	if date == "" {
		return nil
	}
	server, err := http.ParseTime(date)
	if err != nil {
		return nil
	}
	skew := local.Sub(server)
	if skew > MaxClockSkew+time.Second || -skew > MaxClockSkew+time.Second {
		dir := "ahead of"
		if skew < 0 {
			dir, skew = "behind", -skew
		}
		return fmt.Errorf("%w: the local clock (%s) is %s %s AWS's (Date: %s); SigV4 allows %s: fix NTP",
			agenterr.ErrClockSkew, local.UTC().Format(time.RFC3339), skew.Round(time.Second), dir, date, MaxClockSkew)
	}
	return nil
}

func statusError(code int, body []byte, alias, thing string) error {
	var msg struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &msg)
	text := msg.Message
	if text == "" {
		text = strings.TrimSpace(string(body))
	}
	if len(text) > 300 {
		text = text[:300] + "…"
	}
	switch code {
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("%w: HTTP %d %q: check that the certificate's IoT policy allows iot:AssumeRoleWithCertificate on role alias %q, that thing %q exists and is attached to the certificate, and that the role trusts credentials.iot.amazonaws.com",
			agenterr.ErrRefused, code, text, alias, thing)
	case http.StatusNotFound:
		return fmt.Errorf("%w: HTTP 404 %q: role alias %q does not exist in this account and region", agenterr.ErrRefused, text, alias)
	}
	return fmt.Errorf("HTTP %d %q", code, text)
}

// ParseResponse decodes the credentials provider's answer.
func ParseResponse(b []byte) (aws.Credentials, error) {
	var r struct {
		Credentials *struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
			Expiration      string `json:"expiration"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return aws.Credentials{}, fmt.Errorf("answer is not the credentials JSON: %w", err)
	}
	c := r.Credentials
	switch {
	case c == nil:
		return aws.Credentials{}, fmt.Errorf("answer has no \"credentials\" object")
	case !accessKeyPattern.MatchString(c.AccessKeyID):
		return aws.Credentials{}, fmt.Errorf("answer's accessKeyId %.40q is not an access key ID", c.AccessKeyID)
	case c.SecretAccessKey == "":
		return aws.Credentials{}, fmt.Errorf("answer has no secretAccessKey")
	case c.SessionToken == "":
		return aws.Credentials{}, fmt.Errorf("answer has no sessionToken")
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("answer's expiration: %w", err)
	}
	return aws.Credentials{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Source: Source, CanExpire: true, Expires: exp,
	}, nil
}

var accessKeyPattern = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
