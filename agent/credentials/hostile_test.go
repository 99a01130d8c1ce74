package credentials

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/agent/netpath"
	"github.com/agentgate/agentgate/internal/testkit/testpki"
)

// TestHostileProviderAnswers: a provider (or something impersonating it
// with a trusted certificate) that answers badly gets a clear error, never
// credentials, and cannot make the agent read without bound or forever.
func TestHostileProviderAnswers(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	const host = "c1.credentials.iot.eu-west-1.amazonaws.com"
	serverCert, err := ca.Leaf(host)
	if err != nil {
		t.Fatal(err)
	}
	device, err := ca.ClientLeaf("dev-1")
	if err != nil {
		t.Fatal(err)
	}
	expired := `{"credentials":{"accessKeyId":"ASIAEXAMPLE12345","secretAccessKey":"s","sessionToken":"t","expiration":"2020-01-01T00:00:00Z"}}`
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
		is      error
	}{
		{"over 64 KiB", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"credentials":{"accessKeyId":"` + strings.Repeat("A", 70<<10) + `"}}`))
		}, "answer exceeds 65536 bytes", nil},
		{"endless body", func(w http.ResponseWriter, _ *http.Request) {
			chunk := []byte(strings.Repeat("x", 32<<10))
			for range 1000 { // 32 MB if nobody stops reading
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "answer exceeds 65536 bytes", nil},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte("<html>captive portal</html>"))
		}, "not the credentials JSON", nil},
		{"fields missing", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"credentials":{"expiration":"2030-01-01T00:00:00Z"}}`))
		}, "is not an access key ID", nil},
		{"expired, unparsable Date", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Date", "yesterday-ish")
			w.Write([]byte(expired))
		}, "credentials expired at 2020-01-01T00:00:00Z", agenterr.ErrCredentialsExpired},
		{"slow-loris body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.Write([]byte(`{"credentials":`))
			w.(http.Flusher).Flush()
			<-r.Context().Done() // never finishes
		}, "context deadline exceeded", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(tc.handler)
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool}
			srv.StartTLS()
			defer srv.Close()
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			p := &Provider{Endpoint: host, RoleAlias: "agentgate-agent", ThingName: "dev-1", Certificate: device, RootCAs: ca.Pool,
				Dialer:  &netpath.Dialer{RelayName: "127.0.0.1", RelayPort: port},
				Timeout: time.Second} // bounds the slow-loris case; the others answer at once
			creds, err := p.Retrieve(context.Background())
			if err == nil {
				t.Fatalf("got credentials %+v", creds)
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
