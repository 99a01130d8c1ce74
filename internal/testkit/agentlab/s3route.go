package agentlab

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// ArtifactsHost is the regional virtual-hosted S3 host of bucket, the name
// agents reach the artifacts bucket by (and the relay routes by SNI).
func ArtifactsHost(bucket string) string { return bucket + ".s3." + Region + ".amazonaws.com" }

// artifactsFront is the artifacts bucket's S3 endpoint in the lab: TLS with
// a certificate for ArtifactsHost from the lab's CA, in front of the S3
// stand-in (virtual-hosted requests rewritten to its path style). It admits
// only requests signed (SigV4 Authorization header, service s3) with an
// access key the credentials-provider stand-in issued, i.e. the agents' role
// credentials; it checks the key, not the signature (the IoT gateway
// stand-in verifies full signatures; here the point is whose key it is).
type artifactsFront struct {
	bucket string
	creds  interface {
		Lookup(string) (awsstandin.IssuedCredentials, bool)
	}
	mu     sync.Mutex
	things map[string]int
	denied int
}

// startArtifacts starts the S3 stand-in and its TLS front for bucket and
// returns the relay route SNI=HOST:PORT.
func (l *Lab) startArtifacts(bucket string) (string, error) {
	l.S3 = awsstandin.Start()
	l.closers = append(l.closers, l.S3.Close)
	l.ArtifactsHost = ArtifactsHost(bucket)
	cert, err := l.CA.Leaf(l.ArtifactsHost)
	if err != nil {
		return "", err
	}
	target, err := url.Parse(l.S3.S3URL)
	if err != nil {
		return "", err
	}
	f := &artifactsFront{bucket: bucket, creds: l.Creds, things: map[string]int{}}
	l.artifacts = f
	proxy := httputil.NewSingleHostReverseProxy(target)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !f.admit(r) {
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>not signed with agent role credentials</Message></Error>`))
				return
			}
			r.URL.Path = "/" + bucket + r.URL.Path
			r.URL.RawPath = ""
			r.Host = target.Host
			proxy.ServeHTTP(w, r)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	l.closers = append(l.closers, func() { srv.Close() })
	return l.ArtifactsHost + "=" + ln.Addr().String(), nil
}

// admit checks the Host and that the request is signed with issued role
// credentials, counting requests per thing.
func (f *artifactsFront) admit(r *http.Request) bool {
	host, _, _ := strings.Cut(r.Host, ":")
	auth := r.Header.Get("Authorization")
	_, cred, _ := strings.Cut(auth, "Credential=")
	scope := strings.Split(strings.SplitN(cred, ",", 2)[0], "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	if host != ArtifactsHost(f.bucket) || !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || len(scope) != 5 || scope[2] != Region || scope[3] != "s3" {
		f.denied++
		return false
	}
	issued, ok := f.creds.Lookup(scope[0])
	if !ok {
		f.denied++
		return false
	}
	f.things[issued.Thing]++
	return true
}

// ArtifactRequests is how many S3 requests the artifacts front admitted
// for thing, and how many it denied in all.
func (l *Lab) ArtifactRequests(thing string) (admitted, denied int) {
	if l.artifacts == nil {
		return 0, 0
	}
	l.artifacts.mu.Lock()
	defer l.artifacts.mu.Unlock()
	return l.artifacts.things[thing], l.artifacts.denied
}
