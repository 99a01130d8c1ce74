package awsstandin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"
	"github.com/aws/smithy-go"
)

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// The thing-type lifecycle through the real SDK client: create, a second
// create refused, delete refused before deprecation, within five minutes of
// it and while a thing has the type, then allowed.
func TestThingTypeLifecycle(t *testing.T) {
	a := Start()
	defer a.Close()
	c := iot.NewFromConfig(Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL); o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a.SetIoTClock(func() time.Time { return now })
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("acme")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String("acme")}); code(err) != "ResourceAlreadyExistsException" {
		t.Errorf("second create: %v", err)
	}
	del := func() error {
		_, err := c.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String("acme")})
		return err
	}
	if err := del(); code(err) != "InvalidRequestException" {
		t.Errorf("delete before deprecation: %v", err)
	}
	if _, err := c.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String("acme")}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String("acme")})
	if err != nil || !d.ThingTypeMetadata.Deprecated || !d.ThingTypeMetadata.DeprecationDate.Equal(now) {
		t.Fatalf("describe: %+v %v", d, err)
	}
	now = now.Add(4 * time.Minute)
	if err := del(); code(err) != "InvalidRequestException" {
		t.Errorf("delete 4 minutes after deprecation: %v", err)
	}
	now = now.Add(time.Minute)
	a.AddThing("pc-1", "acme")
	if err := del(); code(err) != "InvalidRequestException" {
		t.Errorf("delete with a thing: %v", err)
	}
	a.mu.Lock()
	delete(a.things, "pc-1")
	a.mu.Unlock()
	if err := del(); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := del(); code(err) != "ResourceNotFoundException" {
		t.Errorf("delete again: %v", err)
	}
	l, err := c.ListThingTypes(ctx, &iot.ListThingTypesInput{})
	if err != nil || len(l.ThingTypes) != 0 {
		t.Errorf("list: %+v %v", l, err)
	}
}

// What enrolment created, torn down in AWS's order; each step out of order
// is refused the way the API reference says.
func TestCertificateAndThingTeardown(t *testing.T) {
	a := Start()
	defer a.Close()
	c := iot.NewFromConfig(Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL); o.RetryMaxAttempts = 1 })
	data := iotdataplane.NewFromConfig(Config(), func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(a.DataURL); o.RetryMaxAttempts = 1 })
	ctx := context.Background()
	id := "aa00000000000000000000000000000000000000000000000000000000000001"
	arn := a.Enrol("pc-1", "acme", id, "agentgate-agent")
	p, err := c.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String("pc-1")})
	if err != nil || len(p.Principals) != 1 || p.Principals[0] != arn {
		t.Fatalf("principals: %+v %v", p, err)
	}
	if d, err := c.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String("pc-1")}); err != nil || aws.ToString(d.ThingTypeName) != "acme" {
		t.Fatalf("describe thing: %v", err)
	}
	delCert := func() error {
		_, err := c.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)})
		return err
	}
	if err := delCert(); code(err) != "CertificateStateException" {
		t.Errorf("delete active: %v", err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusPendingActivation}); code(err) != "InvalidRequestException" {
		t.Errorf("PENDING_ACTIVATION: %v", err)
	}
	if _, err := c.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: iottypes.CertificateStatusRevoked}); err != nil {
		t.Fatal(err)
	}
	if d, err := c.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(id)}); err != nil || d.CertificateDescription.Status != iottypes.CertificateStatusRevoked {
		t.Fatalf("describe cert: %v", err)
	}
	if err := delCert(); code(err) != "DeleteConflictException" {
		t.Errorf("delete attached: %v", err)
	}
	if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("pc-1")}); code(err) != "InvalidRequestException" {
		t.Errorf("delete thing with principal: %v", err)
	}
	pol, err := c.ListAttachedPolicies(ctx, &iot.ListAttachedPoliciesInput{Target: aws.String(arn)})
	if err != nil || len(pol.Policies) != 1 || aws.ToString(pol.Policies[0].PolicyName) != "agentgate-agent" {
		t.Fatalf("policies: %+v %v", pol, err)
	}
	if _, err := c.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String("agentgate-agent"), Target: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String("pc-1"), Principal: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	if err := delCert(); err != nil {
		t.Errorf("delete cert: %v", err)
	}
	for i := 0; i < 2; i++ { // DeleteThing of a missing thing succeeds
		if _, err := c.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String("pc-1")}); err != nil {
			t.Errorf("delete thing %d: %v", i, err)
		}
	}
	if a.HasThing("pc-1") || a.CertificateStatus(id) != "" {
		t.Error("thing or certificate left")
	}

	// DeleteConnection: 404 when not connected, the hook sees the client ID.
	var cut []string
	a.OnDeleteConnection(func(id string) bool { cut = append(cut, id); return id == "pc-live" })
	if _, err := data.DeleteConnection(ctx, &iotdataplane.DeleteConnectionInput{ClientId: aws.String("pc-1")}); code(err) != "ResourceNotFoundException" {
		t.Errorf("not connected: %v", err)
	}
	if _, err := data.DeleteConnection(ctx, &iotdataplane.DeleteConnectionInput{ClientId: aws.String("pc-live"), CleanSession: true}); err != nil {
		t.Errorf("connected: %v", err)
	}
	if len(cut) != 2 || cut[1] != "pc-live" {
		t.Errorf("hook saw %q", cut)
	}
}

// Names with escaped slashes or traversal never reach another resource.
func TestControlPathsRefuseHostileNames(t *testing.T) {
	a := Start()
	defer a.Close()
	a.AddThingType("acme")
	c := iot.NewFromConfig(Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL); o.RetryMaxAttempts = 1 })
	for _, n := range []string{"../thing-types/acme", "acme/deprecate", "a%2Fb"} {
		if _, err := c.DeprecateThingType(context.Background(), &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(n)}); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
	if _, dep := a.ThingTypeState("acme"); dep {
		t.Error("a hostile name deprecated acme")
	}
}

// A method no operation of a control path serves is answered 404
// ResourceNotFoundException naming the method and path, and counts as no
// operation.
func TestControlPathsRefuseUnknownMethods(t *testing.T) {
	a := Start()
	defer a.Close()
	a.AddThingType("acme")
	a.Enrol("t1", "acme", "c1", "p1")
	for _, c := range []struct{ method, url, path string }{
		{http.MethodPatch, a.IoTURL, "/thing-types/acme"},
		{http.MethodPut, a.IoTURL, "/thing-types/acme"},
		{http.MethodPost, a.IoTURL, "/certificates/c1"},
		{http.MethodPatch, a.IoTURL, "/certificates/c1"},
		{http.MethodPut, a.IoTURL, "/things/t1/principals"},
		{http.MethodPost, a.IoTURL, "/things/t1/principals"},
		{http.MethodGet, a.DataURL, "/connections/t1"},
	} {
		req, err := http.NewRequest(c.method, c.url+c.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Message string }
		err = json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" ||
			body.Message != "no such operation "+c.method+" "+c.path {
			t.Errorf("%s %s: %d %q %+v %v", c.method, c.path, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body, err)
		}
	}
	for _, op := range []string{"DescribeThingType", "CreateThingType", "DeleteThingType", "DescribeCertificate", "UpdateCertificate",
		"DeleteCertificate", "ListThingPrincipals", "DetachThingPrincipal", "DeleteConnection"} {
		if n := a.Count(op); n != 0 {
			t.Errorf("%s counted %d times", op, n)
		}
	}
}
