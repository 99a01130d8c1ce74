package credentials

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/agenterr"
)

const good = `{"credentials":{"accessKeyId":"ASIAEXAMPLE12345","secretAccessKey":"s3cr3t","sessionToken":"tok","expiration":"2026-11-29T10:00:00Z"}}`

func TestParseResponse(t *testing.T) {
	c, err := ParseResponse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessKeyID != "ASIAEXAMPLE12345" || c.SecretAccessKey != "s3cr3t" || c.SessionToken != "tok" || !c.CanExpire ||
		!c.Expires.Equal(time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)) || c.Source != Source {
		t.Fatalf("%+v", c)
	}
}

func TestParseResponseRejects(t *testing.T) {
	for in, want := range map[string]string{
		``:                     "not the credentials JSON",
		`[]`:                   "not the credentials JSON",
		`{}`:                   `no "credentials" object`,
		`{"credentials":null}`: `no "credentials" object`,
		strings.Replace(good, "ASIAEXAMPLE12345", "short", 1):            "is not an access key ID",
		strings.Replace(good, "ASIAEXAMPLE12345", "asia-lowercase!!", 1): "is not an access key ID",
		strings.Replace(good, `"s3cr3t"`, `""`, 1):                       "no secretAccessKey",
		strings.Replace(good, `"tok"`, `""`, 1):                          "no sessionToken",
		strings.Replace(good, "2026-11-29T10:00:00Z", "tomorrow", 1):     "expiration",
		`{"credentials":{"accessKeyId":1}}`:                              "not the credentials JSON",
	} {
		if _, err := ParseResponse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseResponse(%.60q) = %v, want %q", in, err, want)
		}
	}
}

func TestCheckSkew(t *testing.T) {
	server := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	date := server.Format("Mon, 02 Jan 2006 15:04:05 GMT")
	for _, tc := range []struct {
		local time.Time
		want  string
	}{
		{server.Add(4 * time.Minute), ""},
		{server.Add(-4 * time.Minute), ""},
		{server.Add(7 * time.Minute), "is 7m0s ahead of AWS's"},
		{server.Add(-2 * time.Hour), "is 2h0m0s behind AWS's"},
	} {
		err := checkSkew(date, tc.local)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.local, err)
			}
			continue
		}
		if !errors.Is(err, agenterr.ErrClockSkew) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.local, err, tc.want)
		}
	}
	if checkSkew("", server) != nil || checkSkew("garbage", server) != nil {
		t.Error("a missing or unreadable Date must not be treated as skew")
	}
}

func TestValidate(t *testing.T) {
	base := func() *Provider {
		return &Provider{Endpoint: "c1.credentials.iot.eu-west-1.amazonaws.com", RoleAlias: "agentgate-agent", ThingName: "dev-1"}
	}
	for _, tc := range []struct {
		mut  func(*Provider)
		want string
	}{
		{func(p *Provider) { p.Endpoint = "" }, "credentials endpoint is empty"},
		{func(p *Provider) { p.Endpoint = "https://c1.example/x" }, "must be a host name"},
		{func(p *Provider) { p.RoleAlias = "" }, "role alias is empty"},
		{func(p *Provider) { p.RoleAlias = "a/b" }, `role alias name "a/b"`},
		{func(p *Provider) {}, "no client certificate"},
	} {
		p := base()
		tc.mut(p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
}

func TestStatusError(t *testing.T) {
	err := statusError(403, []byte(`{"message":"Access Denied"}`), "alias", "dev-1")
	if !errors.Is(err, agenterr.ErrRefused) || !strings.Contains(err.Error(), `HTTP 403 "Access Denied"`) {
		t.Errorf("%v", err)
	}
	long := strings.Repeat("x", 5000)
	if err := statusError(500, []byte(long), "a", "t"); len(err.Error()) > 400 {
		t.Errorf("a hostile body is echoed whole: %d bytes", len(err.Error()))
	}
}

// FuzzParseResponse: no panic; accepted answers carry every field.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(`{"credentials":{}}`))
	f.Add([]byte(`{"credentials":{"accessKeyId":"AAAAAAAAAAAAAAAA","secretAccessKey":"x","sessionToken":"y","expiration":"2026-01-01T00:00:00+01:00"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseResponse(b)
		if err != nil {
			return
		}
		if c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" || c.Expires.IsZero() || !c.CanExpire {
			t.Fatalf("accepted incomplete credentials %+v", c)
		}
	})
}
