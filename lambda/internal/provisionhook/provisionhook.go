// Package provisionhook is the pre-provisioning hook's logic: AWS IoT calls
// it on every RegisterThing of agentgate's provisioning template
// (https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html)
// and it admits the enrolment only with a valid install token
// (contract/provisioning, internal/tokenstore):
//
//  1. the event parses within its bounds and names this fleet's template;
//  2. the device sent exactly AgentId (a valid thing name), InstallToken
//     and optionally ExpectedCustomerId, and never CustomerId;
//  3. the token's record exists, its secret matches, it is not revoked or
//     expired, its customer is the expected one and it has a use left (or
//     it already admitted this agent ID: an interrupted enrolment repeated);
//  4. the customer is under its enrolment rate (per minute), repeats
//     included;
//  5. no thing of that name exists, unless this token admitted it;
//  6. the agent ID's ownership record (internal/tokenstore ownership.go)
//     is claimed in a conditional write: a first enrolment only when no
//     other token owns the ID and it is not revoked, a repeat only when
//     this token owns it, it is neither revoked nor deleted and it was
//     admitted within tokenstore.RetryWindow;
//  7. a first enrolment consumes one use in a conditional write (and
//     gives the claim back when that is refused).
//
// The ownership claim is what makes an agent ID one customer's: step 5
// alone cannot, because the thing only exists once RegisterThing has run,
// after the hook answered, so two tokens asking for one new agent ID would
// both pass it.
//
// Then it answers allowProvisioning with CustomerId set from the token's
// record: the thing type comes from there, never from the device. Every
// decision is one JSON log line with the reason, and an EMF count by reason.
package provisionhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/tokenstore"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

// Budget is how long one decision may take: a second under the time IoT
// waits for the hook (provisioning.HookTimeLimit), so a slow table read
// ends in the hook's own refusal rather than IoT's timeout.
const Budget = provisioning.HookTimeLimit - time.Second

// DefaultRatePerMinute is the per-customer enrolment rate when none is configured.
const DefaultRatePerMinute = provisioning.DefaultEnrolmentsPerMinute

// Things is the part of the IoT client the hook uses.
type Things interface {
	DescribeThing(context.Context, *iot.DescribeThingInput, ...func(*iot.Options)) (*iot.DescribeThingOutput, error)
}

// Handler decides enrolments.
type Handler struct {
	Store *tokenstore.Store
	IoT   Things
	// Template is the provisioning template this hook serves.
	Template string
	// RatePerMinute caps admitted enrolments per customer and minute.
	RatePerMinute int
	Log           *slog.Logger
	Metrics       *lambdakit.Metrics
}

// Handle is the Lambda handler: raw event in, hook response out. A refusal
// is a response with AllowProvisioning false; an infrastructure failure is
// also an error (IoT then refuses too, and the function's error metric
// shows it).
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (provisioning.HookResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, Budget)
	defer cancel()
	d := h.decide(ctx, raw)
	attrs := []any{"reason", d.reason, "agentId", d.agentID, "customer", d.customer, "tokenId", d.tokenID, "retry", d.retry}
	if d.err != nil {
		attrs = append(attrs, "error", d.err.Error())
	}
	if d.releaseErr != nil {
		attrs = append(attrs, "releaseError", d.releaseErr.Error())
	}
	outcome := "refused"
	if d.reason == "" {
		outcome = "admitted"
		h.Log.Info("enrolment admitted", attrs...)
	} else {
		h.Log.Warn("enrolment refused", attrs...)
	}
	h.Metrics.Count("Enrolments", 1, map[string]string{"Outcome": outcome, "Reason": string(d.reason)})
	if d.reason != "" {
		return provisioning.HookResponse{AllowProvisioning: false}, d.err
	}
	return provisioning.HookResponse{AllowProvisioning: true, ParameterOverrides: map[string]string{provisioning.ParamCustomerID: d.customer}}, nil
}

type decision struct {
	reason                     provisioning.Reason
	agentID, customer, tokenID string
	retry                      bool
	err                        error
	// releaseErr is a failure to give back the ownership claim of a
	// refused first enrolment.
	releaseErr error
}

func (h *Handler) decide(ctx context.Context, raw json.RawMessage) decision {
	ev, err := provisioning.ParseHookEvent(raw)
	if err != nil {
		return decision{reason: provisioning.ReasonMalformedEvent, err: nil}
	}
	if provisioning.TemplateNameFromARN(ev.TemplateARN) != h.Template {
		return decision{reason: provisioning.ReasonWrongTemplate}
	}
	d := decision{agentID: ev.Parameters[provisioning.ParamAgentID]}
	for k := range ev.Parameters {
		switch k {
		case provisioning.ParamAgentID, provisioning.ParamInstallToken, provisioning.ParamExpectedCustomerID:
		default:
			// CustomerId included: only the hook may set the thing type.
			d.reason = provisioning.ReasonBadParameters
			return d
		}
	}
	if provisioning.ValidateAgentID(d.agentID) != nil {
		d.agentID = ""
		d.reason = provisioning.ReasonBadParameters
		return d
	}
	tok, err := provisioning.ParseToken(ev.Parameters[provisioning.ParamInstallToken])
	switch {
	case errors.Is(err, provisioning.ErrTokenOversize):
		d.reason = provisioning.ReasonTokenOversize
		return d
	case err != nil:
		d.reason = provisioning.ReasonTokenMalformed
		return d
	}
	d.tokenID = tok.ID
	rec, reason, retry, err := h.Store.Check(ctx, tok, d.agentID, ev.Parameters[provisioning.ParamExpectedCustomerID])
	d.customer, d.retry, d.reason, d.err = rec.Customer, retry, reason, err
	if reason != "" {
		return d
	}
	limit := h.RatePerMinute
	if limit <= 0 {
		limit = DefaultRatePerMinute
	}
	ok, err := h.Store.TakeRate(ctx, rec.Customer, limit)
	if err != nil {
		d.reason, d.err = provisioning.ReasonInternal, err
		return d
	}
	if !ok {
		d.reason = provisioning.ReasonRateLimited
		return d
	}
	// Thing names are unique in the account and region: a token must never
	// attach a new certificate to another agent's thing (of this customer
	// or another), only to the one it admitted itself.
	out, err := h.IoT.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(d.agentID)})
	var nf *iottypes.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
	case err != nil:
		d.reason, d.err = provisioning.ReasonInternal, fmt.Errorf("describe thing: %w", err)
		return d
	case !retry || aws.ToString(out.ThingTypeName) != rec.Customer:
		d.reason = provisioning.ReasonAgentTaken
		return d
	}
	if d.reason, d.err = h.Store.Claim(ctx, rec, d.agentID, retry); d.reason != "" || retry {
		return d
	}
	d.reason, d.err = h.Store.Consume(ctx, rec, tok, d.agentID)
	if d.reason != "" && d.err == nil {
		// The use was refused: give the claim back, but only when a
		// consistent read shows this token has not admitted the agent. A
		// concurrent request for the same enrolment may have been admitted
		// with it, and that agent's claim must stay; when the read fails,
		// the claim stays too (reserved for this token until an operator's
		// agent delete, never free for another customer). The decision's
		// log line carries what happened.
		now, gerr := h.Store.Get(ctx, rec.ID)
		switch {
		case gerr != nil:
			d.releaseErr = fmt.Errorf("claim kept, token not re-read: %w", gerr)
		case !now.Admitted(d.agentID):
			d.releaseErr = h.Store.Release(ctx, rec, d.agentID)
		}
	}
	return d
}
