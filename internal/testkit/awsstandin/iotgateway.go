package awsstandin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/gorilla/websocket"
)

// IoTGateway stands in for AWS IoT Core's MQTT-over-WebSocket front door:
// a TLS server for the data endpoint's name that, like the real one,
// verifies the SigV4-presigned URL of GET /mqtt (service iotdevicegateway,
// signature over the host header and the empty payload, session token
// appended after signing) before it upgrades, and refuses with 403 and AWS's
// messages: a bad signature, an unknown or expired session token, a request
// time more than 5 minutes off. Like the real endpoint it also serves MQTT
// with a client certificate on the same port when the ClientHello offers
// ALPN x-amzn-mqtt-ca (the certificate must verify against the registered
// CAs). Accepted connections of both kinds are bridged, MQTT bytes
// unchanged, to a real MQTT broker's TCP listener.
type IoTGateway struct {
	// Addr is the TLS listener's host:port on 127.0.0.1.
	Addr string

	region, broker string
	creds          *CredentialsProvider
	srv            *http.Server
	offset         atomic.Int64 // gateway clock offset, ns
	accepted       atomic.Int64
	refused        atomic.Int64
	certConns      atomic.Int64
	ln             net.Listener
	// httpConns hands TLS connections to the http.Server; it is never
	// closed (handshake goroutines may still send after Close): done,
	// closed once by Close, ends both sides.
	httpConns chan net.Conn
	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	// toBroker, when set, replaces the TCP dial to the broker.
	toBroker func() (net.Conn, error)
	// certCheck: see certcheck.go.
	certCheck CertificateCheck
}

// SetBrokerDialer makes the gateway reach the broker through dial (e.g. an
// in-memory pipe into the broker) instead of a TCP connection to its
// address: a load test with thousands of agents saves two file
// descriptors per connection in its process.
func (g *IoTGateway) SetBrokerDialer(dial func() (net.Conn, error)) {
	g.mu.Lock()
	g.toBroker = dial
	g.mu.Unlock()
}

func (g *IoTGateway) dialBroker() (net.Conn, error) {
	g.mu.Lock()
	dial := g.toBroker
	g.mu.Unlock()
	if dial != nil {
		return dial()
	}
	return net.Dial("tcp", g.broker)
}

// ALPNCertificate selects certificate-authenticated MQTT on port 443.
const ALPNCertificate = "x-amzn-mqtt-ca"

// StartIoTGateway serves on 127.0.0.1 with cert (for the data endpoint's
// name), verifying signatures for region against credentials issued by
// creds and device certificates against deviceCAs, and bridges to
// brokerAddr.
func StartIoTGateway(cert tls.Certificate, deviceCAs *x509.CertPool, creds *CredentialsProvider, region, brokerAddr string) (*IoTGateway, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	g := &IoTGateway{Addr: ln.Addr().String(), region: region, broker: brokerAddr, creds: creds,
		conns: map[net.Conn]struct{}{}, ln: ln, httpConns: make(chan net.Conn), done: make(chan struct{})}
	g.srv = &http.Server{
		Handler:           http.HandlerFunc(g.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          quietLog(),
	}
	web := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	mqttCert := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{ALPNCertificate},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: deviceCAs}
	front := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if offers(h.SupportedProtos, ALPNCertificate) {
			return mqttCert, nil
		}
		return web, nil
	}}
	go g.srv.Serve(chanListener{c: g.httpConns, done: g.done, addr: ln.Addr()})
	go g.accept(front)
	return g, nil
}

func (g *IoTGateway) accept(front *tls.Config) {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			tc := tls.Server(c, front)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				c.Close()
				return
			}
			c.SetDeadline(time.Time{})
			if tc.ConnectionState().NegotiatedProtocol != ALPNCertificate {
				select {
				case g.httpConns <- tc:
				case <-g.done:
					tc.Close()
				}
				return
			}
			g.mu.Lock()
			check := g.certCheck
			g.mu.Unlock()
			if check != nil && check(tc.ConnectionState().PeerCertificates[0]) != nil {
				g.refused.Add(1)
				tc.Close()
				return
			}
			g.certConns.Add(1)
			up, err := g.dialBroker()
			if err != nil {
				tc.Close()
				return
			}
			g.track(tc, up)
			defer g.untrack(tc, up)
			go func() { io.Copy(up, tc); up.Close() }()
			io.Copy(tc, up)
			tc.Close()
		}()
	}
}

// CertificateConnections counts MQTT connections made with a device
// certificate and ALPN x-amzn-mqtt-ca.
func (g *IoTGateway) CertificateConnections() int64 { return g.certConns.Load() }

// chanListener hands TLS connections the front door classified as HTTP to
// the http.Server.
type chanListener struct {
	c    chan net.Conn
	done chan struct{}
	addr net.Addr
}

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return l.addr }

// Close stops the server and every bridged connection.
func (g *IoTGateway) Close() {
	g.closeOnce.Do(func() { close(g.done) })
	g.ln.Close()
	g.srv.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
}

// SetClockOffset moves the gateway's clock, to simulate an agent whose clock
// is off by -d.
func (g *IoTGateway) SetClockOffset(d time.Duration) { g.offset.Store(int64(d)) }

// Accepted and Refused count upgrade requests by outcome.
func (g *IoTGateway) Accepted() int64 { return g.accepted.Load() }

// Refused counts upgrade requests answered 403 or 400, and certificate
// connections a CertificateCheck refused.
func (g *IoTGateway) Refused() int64 { return g.refused.Load() }

const (
	gatewayService = "iotdevicegateway"
	// sha256("") in hex: the payload hash of a WebSocket upgrade.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxSkew     = 5 * time.Minute
)

var upgrader = websocket.Upgrader{
	Subprotocols: []string{"mqtt"},
	CheckOrigin:  func(*http.Request) bool { return true },
}

func (g *IoTGateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/mqtt" {
		g.refused.Add(1)
		http.NotFound(w, r)
		return
	}
	now := time.Now().Add(time.Duration(g.offset.Load()))
	if code, msg := g.verify(r, now); code != 0 {
		g.refused.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, msg)
		return
	}
	if !offers(websocket.Subprotocols(r), "mqtt") {
		g.refused.Add(1)
		http.Error(w, "WebSocket subprotocol mqtt is required", http.StatusBadRequest)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.refused.Add(1)
		return
	}
	g.accepted.Add(1)
	up, err := g.dialBroker()
	if err != nil {
		ws.Close()
		return
	}
	g.track(ws.NetConn(), up)
	go g.bridge(ws, up)
}

func (g *IoTGateway) track(cs ...net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		g.conns[c] = struct{}{}
	}
}

func (g *IoTGateway) untrack(cs ...net.Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range cs {
		delete(g.conns, c)
	}
}

// bridge copies WebSocket binary messages to the broker and broker bytes
// back as binary messages, until either side closes.
func (g *IoTGateway) bridge(ws *websocket.Conn, up net.Conn) {
	defer g.untrack(ws.NetConn(), up)
	defer ws.Close()
	defer up.Close()
	go func() {
		defer up.Close()
		defer ws.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(websocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		typ, rd, err := ws.NextReader()
		if err != nil {
			return
		}
		if typ != websocket.BinaryMessage {
			return // MQTT over WebSocket is binary frames only
		}
		// One pooled buffer per frame, and up hidden behind a plain Writer
		// so no ReadFrom allocates its own: io.Copy here allocated and
		// zeroed 32 KiB per MQTT packet, a third of the stand-in's CPU in
		// a 5,000-agent storm's profile.
		buf := frameBufs.Get().(*[]byte)
		_, err = io.CopyBuffer(writerOnly{up}, rd, *buf)
		frameBufs.Put(buf)
		if err != nil {
			return
		}
	}
}

// frameBufs are the buffers bridge copies one WebSocket frame with.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// writerOnly hides everything but Write, so io.CopyBuffer uses the buffer
// it is given.
type writerOnly struct{ io.Writer }

// verify recomputes the presigned URL's signature; it returns 0 when the
// request may upgrade, else a status and AWS's message for the failure.
func (g *IoTGateway) verify(r *http.Request, now time.Time) (int, string) {
	q := r.URL.Query()
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(k) == "" {
			return http.StatusForbidden, fmt.Sprintf("Missing required query parameter %s", k)
		}
	}
	if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" || q.Get("X-Amz-SignedHeaders") != "host" {
		return http.StatusForbidden, "Unsupported signing algorithm or signed headers"
	}
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return http.StatusForbidden, "X-Amz-Date is not in ISO 8601 basic format"
	}
	switch {
	case now.Sub(at) > maxSkew:
		return http.StatusForbidden, fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - 5 min.)",
			at.Format("20060102T150405Z"), now.Add(-maxSkew).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))
	case at.Sub(now) > maxSkew:
		return http.StatusForbidden, fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + 5 min.)",
			at.Format("20060102T150405Z"), now.Add(maxSkew).UTC().Format("20060102T150405Z"), now.UTC().Format("20060102T150405Z"))
	}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[1] != at.Format("20060102") || scope[2] != g.region || scope[3] != gatewayService || scope[4] != "aws4_request" {
		return http.StatusForbidden, fmt.Sprintf("Credential should be scoped to a valid region and service %s: %q", gatewayService, q.Get("X-Amz-Credential"))
	}
	issued, ok := g.creds.Lookup(scope[0])
	if !ok {
		return http.StatusForbidden, "The security token included in the request is invalid"
	}
	if q.Get("X-Amz-Security-Token") != issued.Token {
		return http.StatusForbidden, "The security token included in the request is invalid"
	}
	if !now.Before(issued.Expires) {
		return http.StatusForbidden, "The security token included in the request is expired"
	}
	// Recompute over the URL as received without the signature and the
	// token (appended after signing), with the host the client addressed.
	unsigned := url.Values{}
	for k, v := range q {
		if k != "X-Amz-Signature" && k != "X-Amz-Security-Token" {
			unsigned[k] = v
		}
	}
	u := url.URL{Scheme: "wss", Host: r.Host, Path: r.URL.Path, RawQuery: unsigned.Encode()}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u.String(), nil)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: scope[0], SecretAccessKey: issued.Secret}, req, emptySHA256, gatewayService, g.region, at)
	if err != nil {
		return http.StatusBadRequest, err.Error()
	}
	su, err := url.Parse(signed)
	if err != nil || su.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		return http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."
	}
	return 0, ""
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

func offers(protos []string, want string) bool {
	for _, p := range protos {
		if p == want {
			return true
		}
	}
	return false
}
