package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/agentgate/agentgate/internal/tokenstore"
)

// The token subject: install tokens for agents' self-enrolment
// (internal/tokenstore; docs/identity.md). The table is the enrollment
// stack's TokenTableName output.
func init() {
	register("token", subject{summary: "install tokens for agent enrolment: issue, list, revoke", run: runToken})
}

// TableEnv names the token table when --table is not given.
const TableEnv = "AGENTGATE_TOKEN_TABLE"

// tokenDB returns the DynamoDB client; tests point it at a stand-in.
var tokenDB = func(ctx context.Context, _ *environment) (tokenstore.API, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}

const tokenUsage = `usage: agentgate-admin token <verb> [flags]

  issue   --customer ID [--uses N] [--valid DURATION] [--note TEXT]   print a new install token (shown once)
  list    [--customer ID]                                               tokens with their state
  revoke  --id TOKEN_ID                                                 refuse every later enrolment with it

Every verb takes --table (default $` + TableEnv + `) and --json.
`

// tokenRow is one token as printed (never its secret or hash).
type tokenRow struct {
	ID        string    `json:"id"`
	Customer  string    `json:"customer"`
	State     string    `json:"state"`
	Uses      int       `json:"uses"`
	MaxUses   int       `json:"maxUses"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedAt time.Time `json:"createdAt"`
	Agents    []string  `json:"agents,omitempty"`
	Note      string    `json:"note,omitempty"`
	// Token is set only by issue.
	Token string `json:"token,omitempty"`
}

func rowOf(r tokenstore.Record, now time.Time) tokenRow {
	state := "active"
	switch {
	case r.Revoked:
		state = "revoked"
	case !now.Before(r.ExpiresAt):
		state = "expired"
	case r.Uses >= r.MaxUses:
		state = "used up"
	}
	return tokenRow{ID: r.ID, Customer: r.Customer, State: state, Uses: r.Uses, MaxUses: r.MaxUses, ExpiresAt: r.ExpiresAt, CreatedAt: r.CreatedAt, Agents: r.Agents, Note: r.Note}
}

func runToken(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stderr, tokenUsage)
		if len(args) == 0 {
			return usageError{"no verb"}
		}
		return nil
	}
	verb := args[0]
	fs := flag.NewFlagSet("agentgate-admin token "+verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	table := fs.String("table", "", "token table name (default $"+TableEnv+")")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	var customer, note, id string
	var uses int
	var valid time.Duration
	switch verb {
	case "issue":
		fs.StringVar(&customer, "customer", "", "customer (thing type) the token enrols agents for")
		fs.IntVar(&uses, "uses", 1, "how many agents the token may enrol")
		fs.DurationVar(&valid, "valid", 7*24*time.Hour, "how long the token is valid")
		fs.StringVar(&note, "note", "", "operator's note (site, ticket)")
	case "list":
		fs.StringVar(&customer, "customer", "", "only this customer's tokens")
	case "revoke":
		fs.StringVar(&id, "id", "", "the token's ID (the part after agt1.)")
	default:
		return usageError{fmt.Sprintf("unknown verb %q\n\n%s", verb, tokenUsage)}
	}
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	if *table == "" {
		*table, _ = env.getenv(TableEnv)
	}
	if *table == "" {
		return usageError{"no token table: pass --table or set " + TableEnv + " (the enrollment stack's TokenTableName output)"}
	}
	switch {
	case verb == "issue" && customer == "":
		return usageError{"issue needs --customer"}
	case verb == "revoke" && id == "":
		return usageError{"revoke needs --id"}
	case verb == "issue":
		if err := (tokenstore.IssueParams{Customer: customer, Validity: valid, MaxUses: uses, Note: note}).Validate(); err != nil {
			return usageError{err.Error()}
		}
	}
	db, err := tokenDB(ctx, env)
	if err != nil {
		return err
	}
	store := &tokenstore.Store{DB: db, Table: *table}
	now := time.Now()
	header := []string{"ID", "CUSTOMER", "STATE", "USES", "EXPIRES", "NOTE"}
	line := func(r tokenRow) []string {
		return []string{r.ID, r.Customer, r.State, strconv.Itoa(r.Uses) + "/" + strconv.Itoa(r.MaxUses), r.ExpiresAt.UTC().Format(time.RFC3339), r.Note}
	}
	switch verb {
	case "issue":
		tok, rec, err := store.Issue(ctx, tokenstore.IssueParams{Customer: customer, Validity: valid, MaxUses: uses, Note: note})
		if err != nil {
			return err
		}
		row := rowOf(rec, now)
		row.Token = tok.String()
		if !*asJSON {
			fmt.Fprintf(env.stderr, "install token (shown once; hand it to the installer as %s):\n", "AGENTGATE_TOKEN")
		}
		return printRows(env.stdout, *asJSON, []tokenRow{row}, append([]string{"TOKEN"}, header...), [][]string{append([]string{row.Token}, line(row)...)})
	case "list":
		recs, err := store.List(ctx, customer)
		if err != nil {
			return err
		}
		rows := make([]tokenRow, 0, len(recs))
		var lines [][]string
		for _, r := range recs {
			rows = append(rows, rowOf(r, now))
			lines = append(lines, line(rows[len(rows)-1]))
		}
		return printRows(env.stdout, *asJSON, rows, header, lines)
	default:
		if err := store.Revoke(ctx, id); errors.Is(err, tokenstore.ErrNotFound) {
			return fmt.Errorf("no token %q in %s", id, *table)
		} else if err != nil {
			return err
		}
		rec, err := store.Get(ctx, id)
		if err != nil {
			return err
		}
		row := rowOf(rec, now)
		return printRows(env.stdout, *asJSON, []tokenRow{row}, header, [][]string{line(row)})
	}
}
