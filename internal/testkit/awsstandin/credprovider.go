package awsstandin

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CredentialsProvider stands in for the AWS IoT credentials provider
// (GET /role-aliases/<alias>/credentials over mutual TLS). Like the real
// one it demands a client certificate signed by a trusted CA and the
// x-amzn-iot-thingname header naming the thing attached to that certificate
// (here: the certificate's subject common name), and answers
// {"credentials":{"accessKeyId","secretAccessKey","sessionToken","expiration"}}.
// The credentials it issues are remembered so IoTGateway can verify
// signatures made with them.
type CredentialsProvider struct {
	// Addr is the TLS listener's host:port on 127.0.0.1.
	Addr string
	// RoleAlias is the only alias it knows.
	RoleAlias string

	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	duration time.Duration
	expired  bool
	forget   bool
	issued   map[string]IssuedCredentials
	requests map[string]int // by thing, successful or not
	total    atomic.Int64
	// certCheck: see certcheck.go.
	certCheck CertificateCheck
}

// IssuedCredentials are one answer's credentials and who got them.
type IssuedCredentials struct {
	Secret, Token, Thing string
	Expires              time.Time
}

// StartCredentialsProvider serves on 127.0.0.1 with serverCert (issued for
// the credentials endpoint's name), trusting client certificates from
// clientCAs, for one role alias. Credentials last duration.
func StartCredentialsProvider(serverCert tls.Certificate, clientCAs *x509.CertPool, roleAlias string, duration time.Duration) (*CredentialsProvider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &CredentialsProvider{Addr: ln.Addr().String(), RoleAlias: roleAlias, ln: ln, duration: duration,
		issued: map[string]IssuedCredentials{}, requests: map[string]int{}}
	p.srv = &http.Server{
		Handler: http.HandlerFunc(p.serve),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{serverCert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientCAs,
			MinVersion:   tls.VersionTLS12,
		},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          quietLog(),
	}
	go p.srv.ServeTLS(ln, "", "")
	return p, nil
}

// Close stops the server.
func (p *CredentialsProvider) Close() { p.srv.Close() }

// SetExpiredAnswers makes every later answer carry credentials that expired
// a minute ago (on), or normal ones (off).
func (p *CredentialsProvider) SetExpiredAnswers(on bool) { p.mu.Lock(); p.expired = on; p.mu.Unlock() }

// Revoke forgets every credential issued to thing, so the IoT gateway
// stand-in refuses them ("The security token included in the request is
// invalid"), as IoT refuses credentials whose role session was revoked. It
// returns how many were forgotten.
func (p *CredentialsProvider) Revoke(thing string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.issued {
		if c.Thing == thing {
			delete(p.issued, k)
			n++
		}
	}
	return n
}

// SetForgetIssued makes every later answer carry credentials the IoT
// gateway stand-in does not know (on), so every upgrade signed with them is
// refused, or normal ones (off).
func (p *CredentialsProvider) SetForgetIssued(on bool) { p.mu.Lock(); p.forget = on; p.mu.Unlock() }

// Total is how many requests it received for any thing (answered or
// refused after the TLS handshake).
func (p *CredentialsProvider) Total() int64 { return p.total.Load() }

// Requests is how many requests named thing (answered or refused after the
// TLS handshake).
func (p *CredentialsProvider) Requests(thing string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[thing]
}

// Lookup returns the credentials issued under an access key ID.
func (p *CredentialsProvider) Lookup(accessKeyID string) (IssuedCredentials, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.issued[accessKeyID]
	return c, ok
}

func (p *CredentialsProvider) serve(w http.ResponseWriter, r *http.Request) {
	thing := r.Header.Get("x-amzn-iot-thingname")
	p.total.Add(1)
	p.mu.Lock()
	p.requests[thing]++
	duration, expired, forget, check := p.duration, p.expired, p.forget, p.certCheck
	p.mu.Unlock()
	alias, ok := strings.CutPrefix(r.URL.Path, "/role-aliases/")
	alias, ok2 := strings.CutSuffix(alias, "/credentials")
	switch {
	case r.Method != http.MethodGet || !ok || !ok2:
		awsMessage(w, http.StatusNotFound, "Not Found")
		return
	case alias != p.RoleAlias:
		awsMessage(w, http.StatusNotFound, "Role alias does not exist")
		return
	case thing == "":
		// Without the header the real service still answers, but the
		// role's ${credentials-iot:ThingName} policies would not resolve;
		// agentgate's agents must send it, so the stand-in insists.
		awsMessage(w, http.StatusBadRequest, "x-amzn-iot-thingname header is required by this stand-in")
		return
	}
	cn := r.TLS.PeerCertificates[0].Subject.CommonName
	if thing != cn {
		awsMessage(w, http.StatusForbidden, "Access Denied")
		return
	}
	if check != nil && check(r.TLS.PeerCertificates[0]) != nil {
		awsMessage(w, http.StatusForbidden, "Access Denied")
		return
	}
	exp := time.Now().Add(duration)
	if expired {
		exp = time.Now().Add(-time.Minute)
	}
	c := IssuedCredentials{Secret: randomHex(20), Token: "IQoJb3JpZ2luX2VjE" + randomHex(64), Thing: thing, Expires: exp.UTC().Truncate(time.Second)}
	akid := "ASIA" + strings.ToUpper(randomHex(8))
	if !forget {
		p.mu.Lock()
		p.issued[akid] = c
		p.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"credentials": map[string]string{
		"accessKeyId": akid, "secretAccessKey": c.Secret, "sessionToken": c.Token,
		"expiration": c.Expires.Format(time.RFC3339),
	}})
}

func awsMessage(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"message\":%q}\n", msg)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
