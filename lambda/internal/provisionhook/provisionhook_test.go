package provisionhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
	"github.com/agentgate/agentgate/internal/tokenstore"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
	"github.com/agentgate/agentgate/lambda/internal/provisionhook"
)

const templateARN = "arn:aws:iot:eu-west-1:111111111111:provisioningtemplate/" + provisioning.DefaultTemplateName

type world struct {
	h     *provisionhook.Handler
	store *tokenstore.Store
	aws   *awsstandin.AWS
	db    *awsstandin.DynamoDB
	logs  *syncbuf.Buffer
	now   time.Time
	mu    sync.Mutex
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{aws: awsstandin.Start(), db: awsstandin.StartDynamoDB(), logs: &syncbuf.Buffer{}, now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	t.Cleanup(func() { w.aws.Close(); w.db.Close() })
	w.db.CreateTable("tokens", tokenstore.KeyAttribute)
	cfg := awsstandin.Config()
	w.store = &tokenstore.Store{
		DB:    dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(w.db.URL) }),
		Table: "tokens",
		Now:   func() time.Time { w.mu.Lock(); defer w.mu.Unlock(); return w.now },
	}
	w.h = &provisionhook.Handler{
		Store:         w.store,
		IoT:           iot.NewFromConfig(cfg, func(o *iot.Options) { o.BaseEndpoint = aws.String(w.aws.IoTURL) }),
		Template:      provisioning.DefaultTemplateName,
		RatePerMinute: 5,
		Log:           slog.New(slog.NewJSONHandler(w.logs, nil)),
		Metrics:       &lambdakit.Metrics{W: &bytes.Buffer{}, Namespace: "t", Service: "t"},
	}
	return w
}

func (w *world) issue(t testing.TB, customer string, uses int) provisioning.Token {
	t.Helper()
	return w.issueFor(t, customer, uses, time.Hour)
}

func (w *world) issueFor(t testing.TB, customer string, uses int, validity time.Duration) provisioning.Token {
	t.Helper()
	tok, _, err := w.store.Issue(context.Background(), tokenstore.IssueParams{Customer: customer, Validity: validity, MaxUses: uses})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func event(params map[string]string) json.RawMessage {
	b, _ := json.Marshal(provisioning.HookEvent{
		ClaimCertificateID: "claimcert", CertificateID: "newcert", CertificatePEM: "-----BEGIN CERTIFICATE-----",
		TemplateARN: templateARN, ClientID: "enroll-x", Parameters: params,
	})
	return b
}

func params(agent string, tok provisioning.Token) map[string]string {
	return map[string]string{provisioning.ParamAgentID: agent, provisioning.ParamInstallToken: tok.String()}
}

// decide runs the handler and returns its answer and the logged reason.
func (w *world) decide(t testing.TB, raw json.RawMessage) (provisioning.HookResponse, string) {
	t.Helper()
	before := len(w.logs.String())
	resp, _ := w.h.Handle(context.Background(), raw)
	line := w.logs.String()[before:]
	var rec struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(line)), &rec); err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	return resp, rec.Reason
}

func TestAdmitsAValidTokenAndSetsTheCustomerFromTheRecord(t *testing.T) {
	w := newWorld(t)
	tok := w.issue(t, "acme", 1)
	p := params("agent-1", tok)
	p[provisioning.ParamExpectedCustomerID] = "acme"
	resp, reason := w.decide(t, event(p))
	if !resp.AllowProvisioning || reason != "" || resp.ParameterOverrides[provisioning.ParamCustomerID] != "acme" || len(resp.ParameterOverrides) != 1 {
		t.Fatalf("%+v %q", resp, reason)
	}
	rec, _ := w.store.Get(context.Background(), tok.ID)
	if rec.Uses != 1 || !rec.Admitted("agent-1") {
		t.Fatalf("record after admission: %+v", rec)
	}
	// The response is exactly the documented output shape.
	b, _ := json.Marshal(resp)
	if string(b) != `{"allowProvisioning":true,"parameterOverrides":{"CustomerId":"acme"}}` {
		t.Fatalf("response %s", b)
	}
}

func TestRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	used := w.issue(t, "acme", 1)
	if resp, _ := w.decide(t, event(params("agent-used", used))); !resp.AllowProvisioning {
		t.Fatal("first use refused")
	}
	revoked := w.issue(t, "acme", 3)
	if err := w.store.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	good := w.issue(t, "acme", 3)
	forged := good
	forged.Secret = strings.Repeat("A", 43)
	w.aws.AddThing("agent-of-globex", "globex")
	w.aws.AddThing("agent-of-acme", "acme")
	withCustomer := params("agent-2", good)
	withCustomer[provisioning.ParamCustomerID] = "globex"
	extra := params("agent-2", good)
	extra["ThingTypeName"] = "globex"
	wrongCustomer := params("agent-2", good)
	wrongCustomer[provisioning.ParamExpectedCustomerID] = "globex"
	otherTemplate := event(params("agent-2", good))
	otherTemplate = json.RawMessage(strings.Replace(string(otherTemplate), "/"+provisioning.DefaultTemplateName, "/other-template", 1))
	for name, c := range map[string]struct {
		raw  json.RawMessage
		want provisioning.Reason
	}{
		"replayed token (a second agent)": {event(params("agent-other", used)), provisioning.ReasonTokenUsedUp},
		"revoked token":                   {event(params("agent-2", revoked)), provisioning.ReasonTokenRevoked},
		"forged secret":                   {event(params("agent-2", forged)), provisioning.ReasonTokenUnknown},
		"wrong customer":                  {event(wrongCustomer), provisioning.ReasonWrongCustomer},
		"device sends CustomerId":         {event(withCustomer), provisioning.ReasonBadParameters},
		"device sends another parameter":  {event(extra), provisioning.ReasonBadParameters},
		"agent ID with a slash":           {event(params("x/y", good)), provisioning.ReasonBadParameters},
		"agent ID wildcard":               {event(params("#", good)), provisioning.ReasonBadParameters},
		"no agent ID":                     {event(map[string]string{provisioning.ParamInstallToken: good.String()}), provisioning.ReasonBadParameters},
		"malformed token":                 {event(map[string]string{provisioning.ParamAgentID: "a", provisioning.ParamInstallToken: "agt1.nope"}), provisioning.ReasonTokenMalformed},
		"oversize token":                  {event(map[string]string{provisioning.ParamAgentID: "a", provisioning.ParamInstallToken: strings.Repeat("t", 1000)}), provisioning.ReasonTokenOversize},
		"no token":                        {event(map[string]string{provisioning.ParamAgentID: "a"}), provisioning.ReasonTokenMalformed},
		"another customer's agent ID":     {event(params("agent-of-globex", good)), provisioning.ReasonAgentTaken},
		"another agent of this customer":  {event(params("agent-of-acme", good)), provisioning.ReasonAgentTaken},
		"other template":                  {otherTemplate, provisioning.ReasonWrongTemplate},
		"not JSON":                        {json.RawMessage(`{`), provisioning.ReasonMalformedEvent},
		"oversize event":                  {json.RawMessage(`{"x":"` + strings.Repeat("a", provisioning.MaxHookEventBytes) + `"}`), provisioning.ReasonMalformedEvent},
	} {
		resp, reason := w.decide(t, c.raw)
		if resp.AllowProvisioning || reason != string(c.want) || resp.ParameterOverrides != nil {
			t.Errorf("%s: %+v reason %q, want refused with %q", name, resp, reason, c.want)
		}
	}
	if rec, _ := w.store.Get(ctx, good.ID); rec.Uses != 0 {
		t.Errorf("refusals consumed %d uses of the good token", rec.Uses)
	}
	w.mu.Lock()
	w.now = w.now.Add(2 * time.Hour)
	w.mu.Unlock()
	if resp, reason := w.decide(t, event(params("agent-3", good))); resp.AllowProvisioning || reason != string(provisioning.ReasonTokenExpired) {
		t.Errorf("expired: %+v %q", resp, reason)
	}
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

// An enrolment interrupted after the hook admitted it is repeated with the
// same token and agent ID within the retry window: admitted again without
// a second use (but counted against the rate), whether IoT created the
// thing already or not; never another thing.
func TestInterruptedEnrolmentIsRepeatable(t *testing.T) {
	w := newWorld(t)
	tok := w.issueFor(t, "acme", 1, 48*time.Hour)
	for i := 0; i < 2; i++ {
		if resp, reason := w.decide(t, event(params("agent-1", tok))); !resp.AllowProvisioning {
			t.Fatalf("attempt %d refused: %q", i, reason)
		}
	}
	w.aws.AddThing("agent-1", "acme") // RegisterThing completed this time
	w.advance(tokenstore.RetryWindow - time.Minute)
	if resp, reason := w.decide(t, event(params("agent-1", tok))); !resp.AllowProvisioning {
		t.Fatalf("after the thing exists, within the window: %q", reason)
	}
	if rec, _ := w.store.Get(context.Background(), tok.ID); rec.Uses != 1 {
		t.Fatalf("uses %d", rec.Uses)
	}
	if resp, _ := w.decide(t, event(params("agent-2", tok))); resp.AllowProvisioning {
		t.Fatal("a second agent admitted with a single-use token")
	}
}

// A repeat later than the retry window after admission is refused, even
// though the token is still valid.
func TestRepeatOutsideTheRetryWindowIsRefused(t *testing.T) {
	w := newWorld(t)
	tok := w.issueFor(t, "acme", 1, 7*24*time.Hour)
	if resp, reason := w.decide(t, event(params("agent-1", tok))); !resp.AllowProvisioning {
		t.Fatalf("first: %q", reason)
	}
	w.advance(tokenstore.RetryWindow + time.Second)
	if resp, reason := w.decide(t, event(params("agent-1", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonRetryWindowOver) {
		t.Fatalf("repeat after the window: %+v %q", resp, reason)
	}
	w.aws.AddThing("agent-1", "acme")
	if resp, reason := w.decide(t, event(params("agent-1", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonRetryWindowOver) {
		t.Fatalf("repeat after the window, thing created: %+v %q", resp, reason)
	}
}

// Repeats are counted against the customer's rate like first enrolments:
// a used-up token cannot be replayed for free.
func TestRepeatsAreRateLimited(t *testing.T) {
	w := newWorld(t)
	w.h.RatePerMinute = 2
	tok := w.issue(t, "acme", 1)
	for i := 0; i < 2; i++ {
		if resp, reason := w.decide(t, event(params("agent-1", tok))); !resp.AllowProvisioning {
			t.Fatalf("attempt %d: %q", i, reason)
		}
	}
	if resp, reason := w.decide(t, event(params("agent-1", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonRateLimited) {
		t.Fatalf("third in a minute: %+v %q", resp, reason)
	}
}

// Two customers' tokens ask for one new agent ID before its thing exists:
// one is admitted, the other refused, and the loser's use is not taken.
// (Before the ownership record both were admitted, and the second
// RegisterThing attached the loser's certificate to the winner's thing.)
func TestTwoCustomersRaceForOneAgentID(t *testing.T) {
	w := newWorld(t)
	acme, globex := w.issue(t, "acme", 1), w.issue(t, "globex", 1)
	if resp, reason := w.decide(t, event(params("pc-42", acme))); !resp.AllowProvisioning {
		t.Fatalf("first: %q", reason)
	}
	resp, reason := w.decide(t, event(params("pc-42", globex)))
	if resp.AllowProvisioning || reason != string(provisioning.ReasonAgentTaken) {
		t.Fatalf("second customer: %+v %q", resp, reason)
	}
	if rec, _ := w.store.Get(context.Background(), globex.ID); rec.Uses != 0 || rec.Admitted("pc-42") {
		t.Fatalf("the refused token: %+v", rec)
	}
	if resp, reason := w.decide(t, event(params("pc-43", globex))); !resp.AllowProvisioning {
		t.Fatalf("the refused token for another ID: %q", reason)
	}

	// Truly concurrent: many customers, one new ID, exactly one admitted.
	var toks []provisioning.Token
	for i := 0; i < 8; i++ {
		toks = append(toks, w.issue(t, fmt.Sprintf("customer-%d", i), 1))
	}
	w.h.RatePerMinute = 1000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var admitted []string
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := w.h.Handle(context.Background(), event(params("pc-99", tok)))
			if resp.AllowProvisioning {
				mu.Lock()
				admitted = append(admitted, resp.ParameterOverrides[provisioning.ParamCustomerID]+fmt.Sprint("#", i))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(admitted) != 1 {
		t.Fatalf("admitted %v, want exactly one", admitted)
	}
}

// agent revoke marks the ownership record revoked: a repeat with the token
// that admitted the agent is refused, and so is a new token, whether the
// thing still exists or not.
func TestRepeatAfterRevokeIsRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tok, fresh := w.issue(t, "acme", 3), w.issue(t, "acme", 3)
	for _, agent := range []string{"agent-1", "agent-2"} {
		if resp, reason := w.decide(t, event(params(agent, tok))); !resp.AllowProvisioning {
			t.Fatalf("%s: %q", agent, reason)
		}
	}
	w.aws.AddThing("agent-1", "acme") // agent-2's RegisterThing never ran
	for _, agent := range []string{"agent-1", "agent-2"} {
		if err := w.store.RevokeAgent(ctx, "acme", agent); err != nil {
			t.Fatal(err)
		}
		if resp, reason := w.decide(t, event(params(agent, tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonAgentRevoked) {
			t.Errorf("repeat of %s after revoke: %+v %q", agent, resp, reason)
		}
	}
	if resp, reason := w.decide(t, event(params("agent-2", fresh))); resp.AllowProvisioning || reason != string(provisioning.ReasonAgentRevoked) {
		t.Errorf("new token for a revoked ID: %+v %q", resp, reason)
	}
	if rec, _ := w.store.Get(ctx, fresh.ID); rec.Uses != 0 {
		t.Errorf("the refused token lost %d uses", rec.Uses)
	}
}

// agent delete removes the ownership record: a repeat with the token that
// admitted the agent is refused (it would otherwise re-create a deleted
// agent), while a new token may enrol the ID again.
func TestRepeatAfterDeleteIsRefused(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tok, fresh := w.issue(t, "acme", 3), w.issue(t, "acme", 3)
	if resp, reason := w.decide(t, event(params("agent-1", tok))); !resp.AllowProvisioning {
		t.Fatalf("first: %q", reason)
	}
	// The operator's agent delete: revoke, thing gone, record removed.
	if err := w.store.RevokeAgent(ctx, "acme", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if err := w.store.DeleteAgent(ctx, "acme", "agent-1"); err != nil {
		t.Fatal(err)
	}
	if resp, reason := w.decide(t, event(params("agent-1", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonAgentDeleted) {
		t.Fatalf("repeat after delete: %+v %q", resp, reason)
	}
	if rec, _ := w.store.Get(ctx, tok.ID); rec.Uses != 1 {
		t.Fatalf("uses %d", rec.Uses)
	}
	if resp, reason := w.decide(t, event(params("agent-1", fresh))); !resp.AllowProvisioning {
		t.Fatalf("a new token for the deleted ID: %q", reason)
	}
}

func TestRateLimitPerCustomer(t *testing.T) {
	w := newWorld(t)
	tok := w.issue(t, "acme", 100)
	other := w.issue(t, "globex", 100)
	for i := 0; i < 5; i++ {
		if resp, reason := w.decide(t, event(params("a"+strings.Repeat("x", i), tok))); !resp.AllowProvisioning {
			t.Fatalf("enrolment %d refused: %q", i, reason)
		}
	}
	if resp, reason := w.decide(t, event(params("a-sixth", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonRateLimited) {
		t.Fatalf("sixth in a minute: %+v %q", resp, reason)
	}
	if resp, _ := w.decide(t, event(params("g-1", other))); !resp.AllowProvisioning {
		t.Fatal("another customer was limited")
	}
	w.mu.Lock()
	w.now = w.now.Add(time.Minute)
	w.mu.Unlock()
	if resp, _ := w.decide(t, event(params("a-sixth", tok))); !resp.AllowProvisioning {
		t.Fatal("still limited a minute later")
	}
}

func TestInfrastructureFailureRefusesWithAnError(t *testing.T) {
	w := newWorld(t)
	tok := w.issue(t, "acme", 1)
	w.aws.SetFault(func(op, target string) awsstandin.Fault {
		return awsstandin.Fault{Status: http.StatusInternalServerError}
	})
	w.h.IoT = iot.NewFromConfig(awsstandin.Config(), func(o *iot.Options) {
		o.BaseEndpoint = aws.String(w.aws.IoTURL)
		o.RetryMaxAttempts = 1
	})
	resp, err := w.h.Handle(context.Background(), event(params("agent-1", tok)))
	if resp.AllowProvisioning || err == nil {
		t.Fatalf("%+v %v", resp, err)
	}
	if rec, _ := w.store.Get(context.Background(), tok.ID); rec.Uses != 0 {
		t.Fatal("a use was taken although the check failed")
	}
}

// Whatever the event, the hook admits only with the one issued token, and
// then only with the record's customer.
func FuzzHandle(f *testing.F) {
	w := newWorld(f)
	tok := w.issue(f, "acme", provisioning.MaxParameters)
	f.Add([]byte(event(params("agent-1", tok))))
	f.Add([]byte(event(map[string]string{provisioning.ParamAgentID: "a", provisioning.ParamInstallToken: tok.String(), provisioning.ParamCustomerID: "x"})))
	f.Add([]byte(`{"claimCertificateId":"c","certificateId":"d","templateArn":"` + templateARN + `","parameters":{"AgentId":"a","InstallToken":"agt1.x.y"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		w.h.RatePerMinute = 1 << 30
		resp, _ := w.h.Handle(context.Background(), b)
		if !resp.AllowProvisioning {
			return
		}
		ev, err := provisioning.ParseHookEvent(b)
		if err != nil || !strings.Contains(ev.Parameters[provisioning.ParamInstallToken], tok.Secret) || resp.ParameterOverrides[provisioning.ParamCustomerID] != "acme" {
			t.Fatalf("admitted %q: %+v", b, resp)
		}
	})
}

// revokeBeforeConsume is the token table with the token revoked just before
// the hook's consuming write: the use is refused after the claim was made.
type revokeBeforeConsume struct {
	tokenstore.API
	revoke func()
}

func (r revokeBeforeConsume) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.Contains(aws.ToString(in.UpdateExpression), "ADD agents") {
		r.revoke()
	}
	return r.API.UpdateItem(ctx, in, opts...)
}

// A claim whose token use is then refused is given back: the agent ID is
// not left reserved by a token that never admitted it.
func TestRefusedUseGivesTheClaimBack(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tok, other := w.issue(t, "acme", 1), w.issue(t, "globex", 1)
	inner := w.store.DB
	w.store.DB = revokeBeforeConsume{API: inner, revoke: func() {
		if err := (&tokenstore.Store{DB: inner, Table: w.store.Table}).Revoke(ctx, tok.ID); err != nil {
			t.Error(err)
		}
	}}
	if resp, reason := w.decide(t, event(params("pc-7", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonTokenRevoked) {
		t.Fatalf("use refused after the claim: %+v %q", resp, reason)
	}
	w.store.DB = inner
	if _, found, err := w.store.Owner(ctx, "pc-7"); found || err != nil {
		t.Fatalf("claim kept: %v %v", found, err)
	}
	if resp, reason := w.decide(t, event(params("pc-7", other))); !resp.AllowProvisioning {
		t.Fatalf("another customer after the give-back: %q", reason)
	}
}

// Two requests of one enrolment race: the first is admitted, then the token
// is revoked, and the second's use is refused. The refusal must not give
// back the claim the first one holds, or another customer could take the
// admitted agent's ID before its thing exists.
func TestRefusedDuplicateKeepsTheAdmittedClaim(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tok, other := w.issue(t, "acme", 1), w.issue(t, "globex", 1)
	inner := w.store.DB
	plain := &tokenstore.Store{DB: inner, Table: w.store.Table, Now: w.store.Now}
	w.store.DB = revokeBeforeConsume{API: inner, revoke: func() {
		rec, err := plain.Get(ctx, tok.ID)
		if err != nil {
			t.Error(err)
			return
		}
		// The concurrent first request: its use is taken, then the token
		// is revoked.
		if reason, err := plain.Consume(ctx, rec, tok, "pc-9"); reason != "" || err != nil {
			t.Errorf("first request's use: %q %v", reason, err)
		}
		if err := plain.Revoke(ctx, tok.ID); err != nil {
			t.Error(err)
		}
	}}
	if resp, reason := w.decide(t, event(params("pc-9", tok))); resp.AllowProvisioning || reason != string(provisioning.ReasonTokenRevoked) {
		t.Fatalf("second request: %+v %q, want a revoked refusal", resp, reason)
	}
	w.store.DB = inner
	if owner, found, err := w.store.Owner(ctx, "pc-9"); !found || err != nil || owner.Customer != "acme" {
		t.Fatalf("the admitted agent's claim was given back: %+v %v %v", owner, found, err)
	}
	if resp, _ := w.decide(t, event(params("pc-9", other))); resp.AllowProvisioning {
		t.Fatal("another customer's token took the admitted agent's ID")
	}
}
