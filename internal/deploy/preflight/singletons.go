package preflight

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/agentgate/agentgate/internal/deploy/deployconfig"
)

// The account-wide IoT singletons a fleet's identity stack creates unless
// the configuration leaves them alone (identity.manageIotLogging and
// identity.manageDeviceDefenderAudit, default true; stacks.NewIdentityStack
// passes them to constructs/identity as ManageLogging and
// ManageAccountAudit).
const (
	loggingResourceType = "AWS::IoT::Logging"
	auditResourceType   = "AWS::IoT::AccountAuditConfiguration"
)

// What CloudFormation does when they exist already, from the resource
// handlers (aws-cloudformation-resource-providers-iot):
//   - AWS::IoT::Logging create calls GetV2LoggingOptions and fails with
//     AlreadyExists unless the answer is NotConfiguredException or has
//     disableAllLogs set;
//   - AWS::IoT::AccountAuditConfiguration create calls
//     DescribeAccountAuditConfiguration; a non-empty roleArn means a
//     configuration exists, and unless it equals the template's (same role
//     ARN, same checks) the create fails with AlreadyExists. The identity
//     stack's role is new, so any existing configuration differs.
//
// A configuration the identity stack itself created is not in the way: an
// update does not run the create handler. Ownership is read from the stack.

// checkSingletons checks IoT logging and the Device Defender audit
// configuration in one fleet region. The region holds exactly one fleet,
// so one identity stack: deployconfig refuses a second fleet in a region
// (its identity stack would create the same role alias and IoT policy).
func (r *runner) checkSingletons(ctx context.Context, reg region) []Result {
	stack := r.cfg.StackName(reg.fleets[0].Name, identityStack)
	return []Result{r.checkLogging(ctx, reg, stack), r.checkAudit(ctx, reg, stack)}
}

// unmanaged is the ok result of a singleton check whose configuration
// switch is off: the identity stacks do not create it, so whatever exists
// is not in the way, and nothing is called.
func unmanaged(check string, reg region, field string) Result {
	return Result{Check: check, Scope: reg.scope(), Status: OK,
		Message: fmt.Sprintf("left as it is (not managed by agentgate: %s = false)", field)}
}

func (r *runner) checkLogging(ctx context.Context, reg region, stack string) Result {
	if !r.cfg.Identity.ManagesIotLogging() {
		return unmanaged(CheckIoTLogging, reg, deployconfig.FieldManageIotLogging)
	}
	scope := reg.scope()
	c, cancel := r.call(ctx)
	defer cancel()
	opts, err := r.clients.iot(reg.name).GetV2LoggingOptions(c, &iot.GetV2LoggingOptionsInput{})
	if apiCode(err) == "NotConfiguredException" {
		return Result{Check: CheckIoTLogging, Scope: scope, Status: OK,
			Message: fmt.Sprintf("not configured; stack %s will set it", stack)}
	}
	if err != nil {
		return couldNot(CheckIoTLogging, scope, "iot:GetV2LoggingOptions", err)
	}
	role := aws.ToString(opts.RoleArn)
	current := fmt.Sprintf("role %s, default level %s", orNone(role), orNone(string(opts.DefaultLogLevel)))
	if opts.DisableAllLogs {
		return Result{Check: CheckIoTLogging, Scope: scope, Status: OK,
			Message: fmt.Sprintf("configured with all logs disabled (%s); stack %s takes it over", current, stack)}
	}
	owned, res := r.stackOwns(ctx, reg, stack, loggingResourceType, CheckIoTLogging)
	if res != nil {
		return *res
	}
	if owned {
		return Result{Check: CheckIoTLogging, Scope: scope, Status: OK,
			Message: fmt.Sprintf("configured by stack %s (%s)", stack, current)}
	}
	return Result{Check: CheckIoTLogging, Scope: scope, Status: Fail,
		Message: fmt.Sprintf("IoT logging is already configured here (%s), not by stack %s: creating its %s fails with AlreadyExists", current, stack, loggingResourceType),
		Fix: fmt.Sprintf("set %s to false in the deployment configuration, so agentgate leaves IoT logging as it is. Or, to let agentgate own it, note the current settings (aws iot get-v2-logging-options --region %s), then turn them off: aws iot set-v2-logging-options --disable-all-logs --region %s (logging stays off until the identity stack sets it with its own role).",
			deployconfig.FieldManageIotLogging, reg.name, reg.name)}
}

func (r *runner) checkAudit(ctx context.Context, reg region, stack string) Result {
	if !r.cfg.Identity.ManagesDeviceDefenderAudit() {
		return unmanaged(CheckIoTAudit, reg, deployconfig.FieldManageDeviceDefenderAudit)
	}
	scope := reg.scope()
	c, cancel := r.call(ctx)
	defer cancel()
	cfg, err := r.clients.iot(reg.name).DescribeAccountAuditConfiguration(c, &iot.DescribeAccountAuditConfigurationInput{})
	if err != nil {
		return couldNot(CheckIoTAudit, scope, "iot:DescribeAccountAuditConfiguration", err)
	}
	role := aws.ToString(cfg.RoleArn)
	if role == "" {
		// The API never answers "not found": an unconfigured account has no
		// role ARN and every check disabled (the resource handler's note).
		return Result{Check: CheckIoTAudit, Scope: scope, Status: OK,
			Message: fmt.Sprintf("not configured; stack %s will set it", stack)}
	}
	owned, res := r.stackOwns(ctx, reg, stack, auditResourceType, CheckIoTAudit)
	if res != nil {
		return *res
	}
	if owned {
		return Result{Check: CheckIoTAudit, Scope: scope, Status: OK,
			Message: fmt.Sprintf("configured by stack %s (role %s)", stack, role)}
	}
	return Result{Check: CheckIoTAudit, Scope: scope, Status: Fail,
		Message: fmt.Sprintf("Device Defender audit is already configured here (role %s), not by stack %s: creating its %s fails with AlreadyExists", role, stack, auditResourceType),
		Fix: fmt.Sprintf("set %s to false in the deployment configuration, so agentgate leaves the audit configuration as it is. Or, to let agentgate own it, note it (aws iot describe-account-audit-configuration --region %s), then delete it: aws iot delete-account-audit-configuration --region %s (resets every audit check to disabled until the identity stack enables its own; --delete-scheduled-audits also deletes the account's scheduled audits).",
			deployconfig.FieldManageDeviceDefenderAudit, reg.name, reg.name)}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// stackInventory is a stack's live resource types; exists is false when the
// stack does not exist.
type stackInventory struct {
	exists bool
	types  map[string]bool
}

// stackOwns reports whether the live stack holds a resource of type
// resourceType. On a failed call it returns the Unknown result instead.
func (r *runner) stackOwns(ctx context.Context, reg region, stack, resourceType, check string) (bool, *Result) {
	key := reg.name + "/" + stack
	inv, ok := r.stacks[key]
	if !ok {
		var err error
		inv, err = r.listStack(ctx, reg.name, stack)
		if err != nil {
			res := couldNot(check, reg.scope(), "cloudformation:ListStackResources", err)
			return false, &res
		}
		r.stacks[key] = inv
	}
	return inv.types[resourceType], nil
}

// listStack reads a stack's resources. CloudFormation answers ValidationError
// "Stack with id NAME does not exist" for a name with no live stack.
func (r *runner) listStack(ctx context.Context, region, stack string) (stackInventory, error) {
	inv := stackInventory{types: map[string]bool{}}
	client := r.clients.cloudformation(region)
	var token *string
	for page := 0; page < maxPages; page++ {
		c, cancel := r.call(ctx)
		out, err := client.ListStackResources(c, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack), NextToken: token})
		cancel()
		if err != nil {
			if apiCode(err) == "ValidationError" && strings.Contains(err.Error(), "does not exist") {
				return stackInventory{}, nil
			}
			return stackInventory{}, err
		}
		inv.exists = true
		for _, s := range out.StackResourceSummaries {
			if live(string(s.ResourceStatus)) {
				inv.types[aws.ToString(s.ResourceType)] = true
			}
		}
		token = out.NextToken
		if aws.ToString(token) == "" {
			return inv, nil
		}
	}
	return stackInventory{}, malformed("more than %d pages of resources in stack %s", maxPages, stack)
}

// live reports whether a resource in this status exists (it is neither
// deleted, being deleted, nor failed to be created).
func live(status string) bool {
	return !strings.HasPrefix(status, "DELETE_") && status != "CREATE_FAILED" && status != "CREATE_IN_PROGRESS" && status != ""
}
