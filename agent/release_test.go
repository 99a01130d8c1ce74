package agent

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The release client never speaks plain http: neither a request to an
// http URL nor a redirect from https to http leaves the relay path with
// the SigV4 header in clear.
func TestHTTPClientRefusesPlainHTTP(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a plain-http request reached the server")
	}))
	defer plain.Close()
	a, err := New(baseConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.HTTPClient().Get(plain.URL)
	if err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Errorf("http URL: %v, want a plain-http refusal", err)
	}
	req, _ := http.NewRequest(http.MethodGet, plain.URL, nil)
	if err := httpsRedirectsOnly(req, nil); err == nil {
		t.Error("a redirect to http was followed")
	}
	secure, _ := http.NewRequest(http.MethodGet, "https://bucket.s3.eu-west-1.amazonaws.com/k", nil)
	if err := httpsRedirectsOnly(secure, nil); err != nil {
		t.Errorf("https redirect refused: %v", err)
	}
	if err := httpsRedirectsOnly(secure, make([]*http.Request, 10)); err == nil {
		t.Error("an 11th redirect was followed")
	}
}
