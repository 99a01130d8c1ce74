package presign

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestURLKnownAnswer derives the presigned URL's signature independently of
// the SDK signer, straight from the SigV4 specification (query-string
// authentication: canonical request, string to sign, derived signing key),
// for fixed credentials and time, and checks URL against it.
func TestURLKnownAnswer(t *testing.T) {
	const (
		host   = "a1b2c3-ats.iot.eu-west-1.amazonaws.com"
		akid   = "ASIAKNOWNANSWER00001"
		secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
		token  = "IQoJb3JpZ2luX2VjE+/=token"
		region = "eu-west-1"
	)
	at := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	got, err := URL(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}, host, region, at)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "wss" || u.Host != host || u.Path != "/mqtt" {
		t.Fatalf("URL %s", got)
	}
	q := u.Query()
	// The token is appended after signing, unsigned, at the end.
	if q.Get("X-Amz-Security-Token") != token || !strings.HasSuffix(got, "&X-Amz-Security-Token="+url.QueryEscape(token)) {
		t.Errorf("token parameter: %s", got)
	}
	scope := "20261129/" + region + "/iotdevicegateway/aws4_request"
	want := map[string]string{
		"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
		"X-Amz-Credential":    akid + "/" + scope,
		"X-Amz-Date":          "20261129T090000Z",
		"X-Amz-SignedHeaders": "host",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	// Canonical query string: every parameter except the signature and the
	// (unsigned) token, names and values URI-encoded (RFC 3986 unreserved
	// characters kept), sorted by name.
	var names []string
	for k := range q {
		if k != "X-Amz-Signature" && k != "X-Amz-Security-Token" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var pairs []string
	for _, k := range names {
		pairs = append(pairs, uriEncode(k)+"="+uriEncode(q.Get(k)))
	}
	canonicalRequest := strings.Join([]string{
		"GET", "/mqtt", strings.Join(pairs, "&"),
		"host:" + host + "\n", "host",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	}, "\n")
	crHash := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := "AWS4-HMAC-SHA256\n20261129T090000Z\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	key := mac([]byte("AWS4"+secret), "20261129")
	key = mac(key, region)
	key = mac(key, "iotdevicegateway")
	key = mac(key, "aws4_request")
	signature := hex.EncodeToString(mac(key, stringToSign))
	if q.Get("X-Amz-Signature") != signature {
		t.Errorf("signature %s, want %s (derived from the spec)\ncanonical request:\n%s", q.Get("X-Amz-Signature"), signature, canonicalRequest)
	}
}

func mac(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// uriEncode is SigV4's UriEncode: every byte except A-Z a-z 0-9 - _ . ~ as
// %XX (upper-case hex).
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}
