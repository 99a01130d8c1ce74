package awsstandin

import (
	"context"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/agentgate/agentgate/agent/presign"
)

// TestGatewayVerifiesPresignedURLs: the stand-in is only worth something if
// it refuses what IoT refuses; each broken URL gets AWS's message.
func TestGatewayVerifiesPresignedURLs(t *testing.T) {
	const host = "abc-ats.iot.eu-west-1.amazonaws.com"
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	creds := &CredentialsProvider{issued: map[string]IssuedCredentials{
		"ASIAGOOD00000001": {Secret: "secret-1", Token: "token-1", Expires: now.Add(time.Hour)},
		"ASIAOLD000000001": {Secret: "secret-2", Token: "token-2", Expires: now.Add(-time.Second)},
	}}
	g := &IoTGateway{region: "eu-west-1", creds: creds}
	sign := func(akid, secret, token string, at time.Time) string {
		s, err := presign.URL(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}, host, "eu-west-1", at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign("ASIAGOOD00000001", "secret-1", "token-1", now)
	// What a client that signs the token (instead of appending it) sends.
	req := httptest.NewRequest("GET", "https://"+host+"/mqtt", nil)
	tokenSigned, _, err := v4.NewSigner().PresignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: "ASIAGOOD00000001", SecretAccessKey: "secret-1", SessionToken: "token-1"}, req, presign.EmptyPayloadHash, "iotdevicegateway", "eu-west-1", now)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, url, want string
	}{
		{"valid", good, ""},
		{"tampered signature", strings.Replace(good, "X-Amz-Signature=", "X-Amz-Signature=0", 1), "does not match the signature you provided"},
		{"token signed", tokenSigned, "does not match the signature you provided"},
		{"wrong secret", sign("ASIAGOOD00000001", "guess", "token-1", now), "does not match the signature you provided"},
		{"6 min old", sign("ASIAGOOD00000001", "secret-1", "token-1", now.Add(-6*time.Minute)), "Signature expired: 20261129T085400Z is now earlier than 20261129T085500Z"},
		{"6 min ahead", sign("ASIAGOOD00000001", "secret-1", "token-1", now.Add(6*time.Minute)), "Signature not yet current"},
		{"unknown key", sign("ASIAUNKNOWN00001", "x", "token-1", now), "security token included in the request is invalid"},
		{"token of another key", sign("ASIAGOOD00000001", "secret-1", "token-2", now), "security token included in the request is invalid"},
		{"no token", sign("ASIAGOOD00000001", "secret-1", "", now), "security token included in the request is invalid"},
		{"expired token", sign("ASIAOLD000000001", "secret-2", "token-2", now), "security token included in the request is expired"},
		{"other service", strings.Replace(good, "iotdevicegateway", "iotdata", 1), "Credential should be scoped"},
		{"no date", dropParam(t, good, "X-Amz-Date"), "Missing required query parameter X-Amz-Date"},
		{"garbage date", setParam(t, good, "X-Amz-Date", "yesterday"), "ISO 8601"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", tc.url, nil)
		code, msg := g.verify(r, now)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("%s: refused %d %s", tc.name, code, msg)
			}
			continue
		}
		if code != 403 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %d %q, want 403 %q", tc.name, code, msg, tc.want)
		}
	}
}

func dropParam(t *testing.T, raw, k string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del(k)
	u.RawQuery = q.Encode()
	return u.String()
}

func setParam(t *testing.T, raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}
