package main

// The customer subject: a customer is an IoT thing type whose name is the
// customer ID (docs/identity.md), so onboarding is CreateThingType and
// offboarding is DeprecateThingType, a five-minute wait and DeleteThingType
// once no thing has the type (AWS's rule:
// https://docs.aws.amazon.com/iot/latest/developerguide/thing-types.html,
// https://docs.aws.amazon.com/iot/latest/developerguide/delete-thing-types.html).

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/agentgate/agentgate/contract/topics"
)

func init() {
	register("customer", subject{summary: "customers (IoT thing types): add, list, deprecate, delete", run: runCustomer})
}

// deleteWait is how long AWS requires between deprecating a thing type and
// deleting it (delete-thing-types.html: "wait for five minutes").
const deleteWait = 5 * time.Minute

// maxListed bounds how many things or thing types one listing reads.
const maxListed = 1_000_000

// customerNow is the clock deleteWait is checked against; tests replace it.
var customerNow = time.Now

const customerUsage = `usage: agentgate-admin customer <verb> [flags] [CUSTOMER]

  add CUSTOMER         create the thing type CUSTOMER (again usable if it was deprecated)
  list                 every customer: state, created, deprecated
  deprecate CUSTOMER   no new agents of CUSTOMER can enrol; its agents keep working
  delete CUSTOMER      delete the thing type: only once it has no agents (agent delete
                       --customer CUSTOMER --all) and was deprecated at least 5 minutes ago

Customer IDs: 1..64 of [a-zA-Z0-9_-], not "agentgate". Add --json for JSON output.
IoT endpoint: AWS_ENDPOINT_URL_IOT when set.
`

// customerRow is one customer as printed.
type customerRow struct {
	Customer     string     `json:"customer"`
	State        string     `json:"state"`
	Created      *time.Time `json:"created,omitempty"`
	DeprecatedAt *time.Time `json:"deprecatedAt,omitempty"`
	// Result is what the verb did (add, deprecate, delete).
	Result string `json:"result,omitempty"`
}

func runCustomer(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stderr, customerUsage)
		if len(args) == 0 {
			return usageError{"customer: no verb"}
		}
		return nil
	}
	verb := args[0]
	switch verb {
	case "add", "list", "deprecate", "delete":
	default:
		return usageError{fmt.Sprintf("customer: unknown verb %q\n\n%s", verb, customerUsage)}
	}
	fs := flag.NewFlagSet("agentgate-admin customer "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "JSON output")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return usageError{err.Error()}
	}
	var customer string
	if verb == "list" {
		if len(pos) > 0 {
			return usageError{fmt.Sprintf("unexpected arguments %q", pos)}
		}
	} else {
		if len(pos) != 1 {
			return usageError{fmt.Sprintf("customer %s takes one customer ID\n\n%s", verb, customerUsage)}
		}
		customer = pos[0]
		if err := topics.ValidateCustomerID(customer); err != nil {
			return usageError{err.Error()}
		}
	}
	a, err := newIoTAdmin(ctx, env)
	if err != nil {
		return err
	}
	var rows []customerRow
	switch verb {
	case "list":
		rows, err = a.listCustomers(ctx)
	case "add":
		rows, err = one(a.addCustomer(ctx, customer))
	case "deprecate":
		rows, err = one(a.deprecateCustomer(ctx, customer))
	case "delete":
		rows, err = one(a.deleteCustomer(ctx, customer))
	}
	if err != nil {
		return err
	}
	lines := make([][]string, 0, len(rows))
	for _, r := range rows {
		lines = append(lines, []string{r.Customer, r.State, fmtTime(r.Created), fmtTime(r.DeprecatedAt), r.Result})
	}
	return printRows(env.stdout, *asJSON, rows, []string{"CUSTOMER", "STATE", "CREATED", "DEPRECATED", "RESULT"}, lines)
}

func one(r customerRow, err error) ([]customerRow, error) {
	if err != nil {
		return nil, err
	}
	return []customerRow{r}, nil
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// parseInterleaved parses flags anywhere among the positional arguments
// ("revoke acme pc-1 --json" as well as "revoke --json acme pc-1"); "--"
// ends the flags.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// describeCustomer returns the thing type's row; found is false when it
// does not exist.
func (a *iotAdmin) describeCustomer(ctx context.Context, customer string) (row customerRow, found bool, err error) {
	out, err := call(ctx, a, "DescribeThingType", func(ctx context.Context) (*iot.DescribeThingTypeOutput, error) {
		return a.iot.DescribeThingType(ctx, &iot.DescribeThingTypeInput{ThingTypeName: aws.String(customer)})
	})
	if errorCode(err) == "ResourceNotFoundException" {
		return customerRow{Customer: customer, State: "absent"}, false, nil
	}
	if err != nil {
		return customerRow{}, false, err
	}
	row = customerRow{Customer: customer, State: "active"}
	if md := out.ThingTypeMetadata; md != nil {
		row.Created = md.CreationDate
		if md.Deprecated {
			row.State = "deprecated"
			row.DeprecatedAt = md.DeprecationDate
		}
	}
	return row, true, nil
}

func (a *iotAdmin) addCustomer(ctx context.Context, customer string) (customerRow, error) {
	row, found, err := a.describeCustomer(ctx, customer)
	switch {
	case err != nil:
		return row, err
	case found && row.State == "active":
		row.Result = "exists"
		return row, nil
	case found:
		if _, err := call(ctx, a, "DeprecateThingType", func(ctx context.Context) (*iot.DeprecateThingTypeOutput, error) {
			return a.iot.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(customer), UndoDeprecate: true})
		}); err != nil {
			return row, err
		}
		row.State, row.DeprecatedAt, row.Result = "active", nil, "deprecation undone"
		return row, nil
	}
	_, err = call(ctx, a, "CreateThingType", func(ctx context.Context) (*iot.CreateThingTypeOutput, error) {
		return a.iot.CreateThingType(ctx, &iot.CreateThingTypeInput{ThingTypeName: aws.String(customer)})
	})
	if errorCode(err) == "ResourceAlreadyExistsException" { // created meanwhile
		err = nil
	}
	if err != nil {
		return row, err
	}
	row, _, err = a.describeCustomer(ctx, customer)
	row.Result = "created"
	return row, err
}

func (a *iotAdmin) deprecateCustomer(ctx context.Context, customer string) (customerRow, error) {
	row, found, err := a.describeCustomer(ctx, customer)
	if err != nil {
		return row, err
	}
	if !found {
		return row, fmt.Errorf("customer %s does not exist", customer)
	}
	if row.State == "deprecated" {
		row.Result = "already deprecated"
		return row, nil
	}
	if _, err := call(ctx, a, "DeprecateThingType", func(ctx context.Context) (*iot.DeprecateThingTypeOutput, error) {
		return a.iot.DeprecateThingType(ctx, &iot.DeprecateThingTypeInput{ThingTypeName: aws.String(customer)})
	}); err != nil {
		return row, err
	}
	row, _, err = a.describeCustomer(ctx, customer)
	row.Result = "deprecated; delete possible 5 minutes from now"
	return row, err
}

func (a *iotAdmin) deleteCustomer(ctx context.Context, customer string) (customerRow, error) {
	row, found, err := a.describeCustomer(ctx, customer)
	if err != nil {
		return row, err
	}
	if !found {
		row.Result = "already deleted"
		fmt.Fprintf(a.env.stderr, "customer %s does not exist: nothing to delete\n", customer)
		return row, nil
	}
	things, err := a.listThings(ctx, customer)
	if err != nil {
		return row, err
	}
	if n := len(things); n > 0 {
		return row, fmt.Errorf("customer %s still has %d agent(s) (%s): AWS refuses to delete a thing type with things. "+
			"Delete them first: agentgate-admin agent delete --customer %s --all (agent revoke only cuts them off; their things stay)",
			customer, n, sample(things, 3), customer)
	}
	if row.State != "deprecated" {
		return row, fmt.Errorf("customer %s is not deprecated: AWS deletes only deprecated thing types. "+
			"Run agentgate-admin customer deprecate %s, then delete it 5 minutes later", customer, customer)
	}
	if row.DeprecatedAt != nil {
		ready := row.DeprecatedAt.Add(deleteWait)
		if left := ready.Sub(customerNow()); left > 0 {
			return row, fmt.Errorf("customer %s was deprecated at %s; AWS allows deleting it 5 minutes after that: retry at or after %s (in %s)",
				customer, fmtTime(row.DeprecatedAt), ready.UTC().Format(time.RFC3339), left.Round(time.Second))
		}
	}
	if _, err := call(ctx, a, "DeleteThingType", func(ctx context.Context) (*iot.DeleteThingTypeOutput, error) {
		return a.iot.DeleteThingType(ctx, &iot.DeleteThingTypeInput{ThingTypeName: aws.String(customer)})
	}); err != nil {
		return row, err
	}
	row.State, row.Result = "absent", "deleted"
	return row, nil
}

func sample(names []string, n int) string {
	s := ""
	for i, v := range names {
		if i == n {
			return s + ", …"
		}
		if i > 0 {
			s += ", "
		}
		s += v
	}
	return s
}

func (a *iotAdmin) listCustomers(ctx context.Context) ([]customerRow, error) {
	rows := []customerRow{}
	var next *string
	skipped := 0
	for {
		out, err := call(ctx, a, "ListThingTypes", func(ctx context.Context) (*iot.ListThingTypesOutput, error) {
			return a.iot.ListThingTypes(ctx, &iot.ListThingTypesInput{MaxResults: aws.Int32(250), NextToken: next})
		})
		if err != nil {
			return nil, err
		}
		for _, t := range out.ThingTypes {
			name := aws.ToString(t.ThingTypeName)
			if topics.ValidateCustomerID(name) != nil {
				skipped++
				continue
			}
			r := customerRow{Customer: name, State: "active"}
			if md := t.ThingTypeMetadata; md != nil {
				r.Created = md.CreationDate
				if md.Deprecated {
					r.State, r.DeprecatedAt = "deprecated", md.DeprecationDate
				}
			}
			if rows = append(rows, r); len(rows) > maxListed {
				return nil, fmt.Errorf("more than %d thing types: refusing to list them all", maxListed)
			}
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			break
		}
	}
	if skipped > 0 {
		fmt.Fprintf(a.env.stderr, "skipped %d thing type(s) whose names are not agentgate customer IDs\n", skipped)
	}
	return rows, nil
}

// listThings returns the names of every thing of type customer.
func (a *iotAdmin) listThings(ctx context.Context, customer string) ([]string, error) {
	var names []string
	var next *string
	for {
		out, err := call(ctx, a, "ListThings", func(ctx context.Context) (*iot.ListThingsOutput, error) {
			return a.iot.ListThings(ctx, &iot.ListThingsInput{ThingTypeName: aws.String(customer), MaxResults: aws.Int32(250), NextToken: next})
		})
		if err != nil {
			return nil, err
		}
		for _, t := range out.Things {
			if names = append(names, aws.ToString(t.ThingName)); len(names) > maxListed {
				return nil, fmt.Errorf("more than %d agents of customer %s: refusing to list them all", maxListed, customer)
			}
		}
		if next = out.NextToken; aws.ToString(next) == "" {
			return names, nil
		}
	}
}
