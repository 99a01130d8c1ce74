package presign

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestURLAppendsTheTokenAfterSigning(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "ASIAEXAMPLE12345", SecretAccessKey: "secret", SessionToken: "tok/en+="}
	at := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	s, err := URL(context.Background(), creds, "abc-ats.iot.eu-west-1.amazonaws.com", "eu-west-1", at)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "wss" || u.Host != "abc-ats.iot.eu-west-1.amazonaws.com" || u.Path != "/mqtt" {
		t.Errorf("url %s", s)
	}
	if q.Get("X-Amz-Credential") != "ASIAEXAMPLE12345/20261129/eu-west-1/iotdevicegateway/aws4_request" ||
		q.Get("X-Amz-Date") != "20261129T090000Z" || q.Get("X-Amz-SignedHeaders") != "host" || q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
		t.Errorf("signing parameters %v", q)
	}
	if q.Get("X-Amz-Security-Token") != "tok/en+=" {
		t.Errorf("token %q", q.Get("X-Amz-Security-Token"))
	}
	// After signing: the token is the last parameter, after the signature.
	if !strings.HasSuffix(s, "&X-Amz-Security-Token=tok%2Fen%2B%3D") || strings.Index(s, "X-Amz-Signature") > strings.Index(s, "X-Amz-Security-Token") {
		t.Errorf("token not appended after signing: %s", s)
	}
	// The signature does not depend on the token.
	creds.SessionToken = "other"
	s2, _ := URL(context.Background(), creds, "abc-ats.iot.eu-west-1.amazonaws.com", "eu-west-1", at)
	u2, _ := url.Parse(s2)
	if u2.Query().Get("X-Amz-Signature") != q.Get("X-Amz-Signature") {
		t.Error("the token was signed")
	}
	// But it does depend on the secret, the time and the host.
	for _, other := range []func() (string, error){
		func() (string, error) {
			c := creds
			c.SecretAccessKey = "other"
			return URL(context.Background(), c, "abc-ats.iot.eu-west-1.amazonaws.com", "eu-west-1", at)
		},
		func() (string, error) {
			return URL(context.Background(), creds, "abc-ats.iot.eu-west-1.amazonaws.com", "eu-west-1", at.Add(time.Second))
		},
		func() (string, error) {
			return URL(context.Background(), creds, "xyz-ats.iot.eu-west-1.amazonaws.com", "eu-west-1", at)
		},
	} {
		s3, err := other()
		if err != nil {
			t.Fatal(err)
		}
		u3, _ := url.Parse(s3)
		if u3.Query().Get("X-Amz-Signature") == q.Get("X-Amz-Signature") {
			t.Errorf("signature unchanged: %s", s3)
		}
	}
}

func TestURLRefusesMissingInputs(t *testing.T) {
	if _, err := URL(context.Background(), aws.Credentials{}, "h", "eu-west-1", time.Now()); err == nil {
		t.Error("no access key accepted")
	}
	if _, err := URL(context.Background(), aws.Credentials{AccessKeyID: "A", SecretAccessKey: "s"}, "h", "", time.Now()); err == nil {
		t.Error("no region accepted")
	}
}

func TestRegionFromEndpoint(t *testing.T) {
	for host, want := range map[string]string{
		"a1b2-ats.iot.eu-west-1.amazonaws.com":       "eu-west-1",
		"c1.credentials.iot.us-east-2.amazonaws.com": "us-east-2",
		"a1b2-ats.iot.cn-north-1.amazonaws.com.cn":   "cn-north-1",
		"A1B2-ATS.IOT.AP-SOUTHEAST-2.AMAZONAWS.COM":  "ap-southeast-2",
		"mqtt.example.com":                           "",
		"iot.amazonaws.com":                          "",
	} {
		got, ok := RegionFromEndpoint(host)
		if got != want || ok != (want != "") {
			t.Errorf("RegionFromEndpoint(%q) = %q %v, want %q", host, got, ok, want)
		}
	}
}
