package preflight

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// DefaultCallTimeout bounds each AWS call, retries included.
const DefaultCallTimeout = 30 * time.Second

// Options configures one run.
type Options struct {
	// Config is the validated deployment configuration (the file synth reads).
	Config *deployconfig.Config
	// AWS carries the caller's credentials, retryer and HTTP client
	// (config.LoadDefaultConfig in the command; static credentials and a
	// BaseEndpoint in tests). Its region is not used: each call names its own.
	AWS aws.Config
	// Qualifier is the CDK bootstrap qualifier. Default: DefaultQualifier.
	Qualifier string
	// CallTimeout bounds each AWS call, retries included. Default: DefaultCallTimeout.
	CallTimeout time.Duration
}

// runner carries one run's state.
type runner struct {
	opts    Options
	cfg     *deployconfig.Config
	plan    plan
	clients *clients
	caller  string                    // the credentials' account
	stacks  map[string]stackInventory // stack resources, by region/stack name
}

// Run performs every check and returns one result per line of the report.
// It never panics on an AWS answer and never changes anything.
func Run(ctx context.Context, opts Options) Report {
	if opts.Qualifier == "" {
		opts.Qualifier = DefaultQualifier
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	r := &runner{
		opts:    opts,
		cfg:     opts.Config,
		plan:    newPlan(opts.Config),
		clients: newClients(opts.AWS),
		stacks:  map[string]stackInventory{},
	}
	var rep Report
	who := r.checkCaller(ctx)
	rep = append(rep, who)
	if who.Status != OK {
		return rep
	}
	rep = append(rep, r.checkForeignAccounts()...)
	mine := r.myRegions()
	for _, reg := range mine {
		rep = append(rep, r.checkEIPQuota(ctx, reg))
	}
	for _, reg := range mine {
		for _, f := range reg.fleets {
			rep = append(rep, r.checkEndpointZones(ctx, reg, f))
		}
	}
	for _, e := range r.plan.envs {
		if e.account == r.caller {
			rep = append(rep, r.checkBootstrap(ctx, e))
		}
	}
	for _, reg := range mine {
		rep = append(rep, r.checkSingletons(ctx, reg)...)
	}
	for _, reg := range mine {
		rep = append(rep, r.checkIoTEndpoints(ctx, reg))
	}
	if r.cfg.DNS.Account == r.caller {
		rep = append(rep, r.checkHostedZone(ctx))
	}
	return rep
}

// call bounds one AWS call (its retries included) in time.
func (r *runner) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.CallTimeout)
}

// myRegions are the fleet regions in the caller's account.
func (r *runner) myRegions() []region {
	var out []region
	for _, reg := range r.plan.regions {
		if reg.account == r.caller {
			out = append(out, reg)
		}
	}
	return out
}

// stsRegion is where the caller is identified: the first fleet's region
// (a regional STS endpoint the deployment uses anyway).
func (r *runner) stsRegion() string {
	if len(r.plan.regions) > 0 {
		return r.plan.regions[0].name
	}
	return DNSAlarmsRegion
}

// checkCaller finds whose credentials these are (sts:GetCallerIdentity needs
// no permission). Every other check depends on it, so a failure ends the run.
func (r *runner) checkCaller(ctx context.Context) Result {
	const scope = "credentials"
	const action = "sts:GetCallerIdentity"
	if r.opts.AWS.Credentials == nil {
		return Result{Check: CheckCaller, Scope: scope, Status: Unknown,
			Message: "no AWS credentials configured; no other check ran",
			Fix:     "configure credentials (aws configure, aws sso login, or AWS_PROFILE) and run preflight again."}
	}
	c, cancel := r.call(ctx)
	defer cancel()
	if _, err := r.opts.AWS.Credentials.Retrieve(c); err != nil {
		return Result{Check: CheckCaller, Scope: scope, Status: Unknown,
			Message: fmt.Sprintf("could not load AWS credentials (%v); no other check ran", rootCause(err)),
			Fix:     "configure credentials (aws configure, aws sso login, or AWS_PROFILE) and run preflight again."}
	}
	out, err := r.clients.sts(r.stsRegion()).GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	if err != nil {
		res := couldNot(CheckCaller, scope, action, err)
		res.Message += "; no other check ran"
		return res
	}
	account, arn := aws.ToString(out.Account), aws.ToString(out.Arn)
	if !deployconfig.ValidAccountID(account) {
		return Result{Check: CheckCaller, Scope: scope, Status: Unknown,
			Message: fmt.Sprintf("could not check: %s: malformed answer from AWS (account %q); no other check ran", action, account),
			Fix:     "run preflight again; if it persists, check for an endpoint override (AWS_ENDPOINT_URL*) between you and AWS."}
	}
	r.caller = account
	return Result{Check: CheckCaller, Scope: scope, Status: OK,
		Message: fmt.Sprintf("account %s (%s)", account, arn)}
}

// checkForeignAccounts reports, once per account, what lives in accounts
// other than the caller's: none of it can be checked with these credentials.
func (r *runner) checkForeignAccounts() []Result {
	var out []Result
	for _, account := range r.plan.accounts() {
		if account == r.caller {
			continue
		}
		var what []string
		for _, e := range r.plan.envs {
			if e.account == account {
				what = append(what, e.region+": "+strings.Join(e.purposes, ", "))
			}
		}
		out = append(out, Result{Check: CheckAccount, Scope: account, Status: Unknown,
			Message: fmt.Sprintf("not checked (%s): these credentials belong to account %s", strings.Join(what, "; "), r.caller),
			Fix:     fmt.Sprintf("run preflight again with credentials of account %s (e.g. AWS_PROFILE=<a profile of that account> make preflight).", account)})
	}
	return out
}
