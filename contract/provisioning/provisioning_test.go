package provisioning

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The topic names exactly as the Device provisioning MQTT API page spells
// them for the json payload format.
func TestTopicsAreAWSs(t *testing.T) {
	for got, want := range map[string]string{
		CreateFromCSRTopic:          "$aws/certificates/create-from-csr/json",
		CreateFromCSRAccepted:       "$aws/certificates/create-from-csr/json/accepted",
		CreateFromCSRRejected:       "$aws/certificates/create-from-csr/json/rejected",
		ProvisionTopic("tmpl_1"):    "$aws/provisioning-templates/tmpl_1/provision/json",
		ProvisionAccepted("tmpl_1"): "$aws/provisioning-templates/tmpl_1/provision/json/accepted",
		ProvisionRejected("tmpl_1"): "$aws/provisioning-templates/tmpl_1/provision/json/rejected",
	} {
		if got != want {
			t.Errorf("topic %q, want %q", got, want)
		}
	}
}

func TestTemplateNameRule(t *testing.T) {
	for _, ok := range []string{DefaultTemplateName, "a", strings.Repeat("x", 36), "A_b-9"} {
		if err := ValidateTemplateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("x", 37), "a/b", "a+b", "a#", "a b", "é", "a.b"} {
		if ValidateTemplateName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got := TemplateNameFromARN("arn:aws:iot:eu-west-1:111111111111:provisioningtemplate/agentgate-agents"); got != "agentgate-agents" {
		t.Errorf("name from ARN = %q", got)
	}
	for _, bad := range []string{"", "arn:aws:iot:eu-west-1:1:thing/x", "arn:aws:s3:eu-west-1:1:provisioningtemplate/x", "arn:aws:iot:r:1:provisioningtemplate/a/b", "provisioningtemplate/x"} {
		if got := TemplateNameFromARN(bad); got != "" {
			t.Errorf("%q gave %q", bad, got)
		}
	}
}

func TestPayloadsRoundTripAWSExamples(t *testing.T) {
	// Field names as the API page's payload examples spell them.
	r, err := ParseCreateCertificateResponse([]byte(`{"certificateId":"abc","certificatePem":"-----BEGIN CERTIFICATE-----","certificateOwnershipToken":"tok"}`))
	if err != nil || r.CertificateID != "abc" || r.CertificateOwnershipToken != "tok" {
		t.Fatalf("%+v %v", r, err)
	}
	reg, err := ParseRegisterThingRequest([]byte(`{"certificateOwnershipToken":"tok","parameters":{"AgentId":"a1","InstallToken":"x"}}`))
	if err != nil || reg.Parameters[ParamAgentID] != "a1" {
		t.Fatalf("%+v %v", reg, err)
	}
	resp, err := ParseRegisterThingResponse([]byte(`{"deviceConfiguration":{"k":"v"},"thingName":"a1"}`))
	if err != nil || resp.ThingName != "a1" {
		t.Fatalf("%+v %v", resp, err)
	}
	e, err := ParseErrorResponse([]byte(`{"statusCode":403,"errorCode":"ACCESS_DENIED","errorMessage":"no"}`))
	if err != nil || e.StatusCode != 403 || e.ErrorCode != ErrorCodeAccessDenied || !strings.Contains(e.Error(), "ACCESS_DENIED") {
		t.Fatalf("%+v %v", e, err)
	}
	csr, err := ParseCreateCertificateRequest([]byte(`{"certificateSigningRequest":"-----BEGIN CERTIFICATE REQUEST-----"}`))
	if err != nil || csr.CertificateSigningRequest == "" {
		t.Fatalf("%+v %v", csr, err)
	}
}

func TestPayloadsRefuseHostileInput(t *testing.T) {
	big := strings.Repeat("x", MaxFieldBytes+1)
	many := `{"certificateOwnershipToken":"t","parameters":{`
	for i := 0; i <= MaxParameters; i++ {
		if i > 0 {
			many += ","
		}
		many += `"p` + strings.Repeat("1", i) + `":"v"`
	}
	many += `}}`
	cases := map[string]func() error{
		"oversize message": func() error {
			_, err := ParseRegisterThingRequest(bytes.Repeat([]byte(" "), MaxMessageBytes+1))
			return err
		},
		"not JSON": func() error { _, err := ParseRegisterThingRequest([]byte(`{`)); return err },
		"array":    func() error { _, err := ParseRegisterThingRequest([]byte(`[]`)); return err },
		"trailing data": func() error {
			_, err := ParseRegisterThingRequest([]byte(`{"certificateOwnershipToken":"t"} {}`))
			return err
		},
		"missing ownership token": func() error { _, err := ParseRegisterThingRequest([]byte(`{"parameters":{}}`)); return err },
		"oversize parameter": func() error {
			_, err := ParseRegisterThingRequest([]byte(`{"certificateOwnershipToken":"t","parameters":{"a":"` + big + `"}}`))
			return err
		},
		"too many parameters": func() error { _, err := ParseRegisterThingRequest([]byte(many)); return err },
		"parameter not a string": func() error {
			_, err := ParseRegisterThingRequest([]byte(`{"certificateOwnershipToken":"t","parameters":{"a":1}}`))
			return err
		},
		"missing certificate": func() error {
			_, err := ParseCreateCertificateResponse([]byte(`{"certificateId":"a","certificateOwnershipToken":"t"}`))
			return err
		},
		"oversize certificate": func() error {
			_, err := ParseCreateCertificateResponse([]byte(`{"certificateId":"a","certificatePem":"` + strings.Repeat("x", MaxCertificateBytes+1) + `","certificateOwnershipToken":"t"}`))
			return err
		},
		"thing name with a slash": func() error { _, err := ParseRegisterThingResponse([]byte(`{"thingName":"x/y"}`)); return err },
		"thing name wildcard":     func() error { _, err := ParseRegisterThingResponse([]byte(`{"thingName":"#"}`)); return err },
		"empty CSR": func() error {
			_, err := ParseCreateCertificateRequest([]byte(`{"certificateSigningRequest":""}`))
			return err
		},
		"oversize error message":     func() error { _, err := ParseErrorResponse([]byte(`{"errorMessage":"` + big + `"}`)); return err },
		"hook: oversize event":       func() error { _, err := ParseHookEvent(bytes.Repeat([]byte(" "), MaxHookEventBytes+1)); return err },
		"hook: no claim certificate": func() error { _, err := ParseHookEvent([]byte(`{"certificateId":"c","templateArn":"a"}`)); return err },
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseRegisterThingRequest(bytes.Repeat([]byte(" "), MaxMessageBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize: %v, want ErrTooLarge", err)
	}
}

func TestHookEventAsAWSDocumentsIt(t *testing.T) {
	// The documented input example, with a realistic template ARN.
	e, err := ParseHookEvent([]byte(`{
	  "claimCertificateId" : "string",
	  "certificateId" : "string",
	  "certificatePem" : "string",
	  "templateArn" : "arn:aws:iot:us-east-1:1234567890:provisioningtemplate/MyTemplate",
	  "clientId" : "221a6d10-9c7f-42f1-9153-e52e6fc869c1",
	  "parameters" : { "string" : "string" }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if TemplateNameFromARN(e.TemplateARN) != "MyTemplate" || e.Parameters["string"] != "string" || e.ClientID == "" {
		t.Fatalf("%+v", e)
	}
}

func TestTokenFormat(t *testing.T) {
	tok, err := NewToken(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := tok.String()
	if len(s) != TokenLen || !strings.HasPrefix(s, "agt1.") {
		t.Fatalf("token %q", s)
	}
	back, err := ParseToken(" " + s + "\n")
	if err != nil || back != tok {
		t.Fatalf("parse %q: %+v %v", s, back, err)
	}
	other, _ := NewToken(nil)
	if other == tok {
		t.Fatal("two tokens are equal")
	}
	h := SecretHash(tok.Secret)
	if strings.Contains(h, tok.Secret) || !SecretMatches(h, tok.Secret) || SecretMatches(h, other.Secret) || SecretMatches("", tok.Secret) {
		t.Fatal("hash check wrong")
	}
	if _, err := NewToken(bytes.NewReader(make([]byte, 10))); err == nil {
		t.Fatal("short randomness accepted")
	}
	for _, bad := range []string{"", "agt1", "agt2." + tok.ID + "." + tok.Secret, "agt1." + strings.ToUpper(tok.ID) + "." + tok.Secret,
		"agt1." + tok.ID + "." + tok.Secret + "x", "agt1." + tok.ID + "." + tok.Secret[:42] + "=", "agt1." + tok.ID + "." + strings.Repeat("+", 43),
		"agt1." + tok.ID[:31] + "g." + tok.Secret, "agt1." + tok.ID + tok.Secret, "agt1.." + tok.ID + tok.Secret} {
		if _, err := ParseToken(bad); !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("%q: %v, want malformed", bad, err)
		}
	}
	if _, err := ParseToken(strings.Repeat("a", MaxTokenInput+1)); !errors.Is(err, ErrTokenOversize) {
		t.Errorf("oversize: %v", err)
	}
}

func FuzzParseToken(f *testing.F) {
	tok, _ := NewToken(bytes.NewReader(bytes.Repeat([]byte{7}, 48)))
	f.Add(tok.String())
	f.Add("agt1.0.0")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok || !ValidTokenID(tok.ID) {
			t.Fatalf("accepted %q but round trip gave %+v %v", s, again, err)
		}
	})
}

func FuzzParseHookEvent(f *testing.F) {
	f.Add([]byte(`{"claimCertificateId":"c","certificateId":"d","templateArn":"arn:aws:iot:r:1:provisioningtemplate/t","parameters":{"AgentId":"a"}}`))
	f.Add([]byte(`{"parameters":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseHookEvent(b)
		if err != nil {
			return
		}
		if len(b) > MaxHookEventBytes || e.ClaimCertificateID == "" || e.TemplateARN == "" || len(e.Parameters) > MaxParameters {
			t.Fatalf("accepted %q", b)
		}
		for k, v := range e.Parameters {
			if k == "" || len(k) > MaxFieldBytes || len(v) > MaxFieldBytes {
				t.Fatalf("accepted parameter %q", k)
			}
		}
	})
}

func FuzzParseDeviceMessages(f *testing.F) {
	f.Add([]byte(`{"certificateId":"a","certificatePem":"p","certificateOwnershipToken":"t"}`))
	f.Add([]byte(`{"thingName":"agent-1","deviceConfiguration":{}}`))
	f.Add([]byte(`{"statusCode":400,"errorCode":"InvalidParameters","errorMessage":"x"}`))
	f.Add([]byte(`{"certificateOwnershipToken":"t","parameters":{"AgentId":"a"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := ParseCreateCertificateResponse(b); err == nil && (r.CertificatePEM == "" || len(r.CertificatePEM) > MaxCertificateBytes) {
			t.Fatalf("certificate response %q", b)
		}
		if r, err := ParseRegisterThingResponse(b); err == nil && strings.ContainsAny(r.ThingName, "/+#$*") {
			t.Fatalf("thing name %q", r.ThingName)
		}
		if r, err := ParseRegisterThingRequest(b); err == nil && len(r.Parameters) > MaxParameters {
			t.Fatalf("request %q", b)
		}
		_, _ = ParseErrorResponse(b)
	})
}

// A rate rejection is told apart from every other: by status 429 or by a
// throttling error code; refusals and bad requests are not retried.
func TestThrottledRejections(t *testing.T) {
	for _, c := range []struct {
		e    ErrorResponse
		want bool
	}{
		{ErrorResponse{StatusCode: 429, ErrorCode: ErrorCodeThrottling}, true},
		{ErrorResponse{StatusCode: 400, ErrorCode: "ThrottlingException"}, true}, // the control plane's status
		{ErrorResponse{StatusCode: 429}, true},
		{ErrorResponse{StatusCode: 400, ErrorCode: "TooManyRequestsException"}, true},
		{ErrorResponse{StatusCode: 503, ErrorCode: "throttled"}, true},
		{ErrorResponse{StatusCode: 403, ErrorCode: ErrorCodeAccessDenied}, false},
		{ErrorResponse{StatusCode: 400, ErrorCode: "InvalidCertificateOwnershipToken"}, false},
		{ErrorResponse{StatusCode: 500, ErrorCode: "InternalFailure"}, false},
		{ErrorResponse{}, false},
	} {
		if got := c.e.Throttled(); got != c.want {
			t.Errorf("%+v: Throttled() = %v, want %v", c.e, got, c.want)
		}
	}
}

// An agent ID is enrollable only if its claim client ID fits IoT's limit.
func TestValidateAgentID(t *testing.T) {
	ok := strings.Repeat("a", MaxAgentIDLen)
	if err := ValidateAgentID(ok); err != nil || len(ClaimClientID(ok)) != MaxClientIDLen {
		t.Errorf("%d-byte ID: %v (client ID %d bytes)", len(ok), err, len(ClaimClientID(ok)))
	}
	for _, bad := range []string{ok + "a", strings.Repeat("a", 128), "", "a/b", "a:b", "+"} {
		if ValidateAgentID(bad) == nil {
			t.Errorf("ValidateAgentID(%.20q) accepted", bad)
		}
	}
}
