package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentgate/agentgate/contract/presence"
	"github.com/agentgate/agentgate/contract/topics"
)

// EnvPresenceTable names the presence table when --table is not given.
const EnvPresenceTable = "AGENTGATE_PRESENCE_TABLE"

// maxPresenceRows bounds what one listing reads.
const maxPresenceRows = 200000

func init() {
	register("presence", subject{summary: "agents' presence: list [--online] --customer C", run: runPresence})
}

// presenceRow is one agent in the listing (the --json shape).
type presenceRow struct {
	Customer             string `json:"customer"`
	Thing                string `json:"thing"`
	Connected            bool   `json:"connected"`
	Since                string `json:"since"`
	LastDisconnectReason string `json:"lastDisconnectReason,omitempty"`
	// ClientVersion is the version the agent last announced on its status
	// topic (contract/status), empty if it never did.
	ClientVersion string `json:"clientVersion,omitempty"`
}

func runPresence(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] != "list" {
		return usageError{"usage: agentgate-admin presence list --customer C [--online] [--table T] [--json]"}
	}
	fs := flag.NewFlagSet("presence list", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	customer := fs.String("customer", "", "customer ID (required)")
	online := fs.Bool("online", false, "only connected agents")
	table := fs.String("table", "", "presence table name (default $"+EnvPresenceTable+")")
	asJSON := fs.Bool("json", false, "JSON instead of a table")
	endpoint := fs.String("endpoint-url", "", "DynamoDB endpoint override (tests, local stand-ins)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if err := topics.ValidateCustomerID(*customer); err != nil {
		return usageError{"--customer: " + err.Error()}
	}
	if *table == "" {
		*table, _ = env.getenv(EnvPresenceTable)
	}
	if *table == "" {
		return usageError{"--table or $" + EnvPresenceTable + " is required (the control-plane stack's presence table)"}
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if *endpoint != "" {
			o.BaseEndpoint = aws.String(*endpoint)
		}
	})
	rows, err := listPresence(ctx, client, *table, *customer, *online)
	if err != nil {
		return err
	}
	var lines [][]string
	for _, r := range rows {
		lines = append(lines, []string{r.Thing, strconv.FormatBool(r.Connected), r.Since, r.LastDisconnectReason, r.ClientVersion})
	}
	return printRows(env.stdout, *asJSON, rows, []string{"THING", "CONNECTED", "SINCE", "LAST DISCONNECT", "VERSION"}, lines)
}

func listPresence(ctx context.Context, client *dynamodb.Client, table, customer string, online bool) ([]presenceRow, error) {
	rows := []presenceRow{}
	p := dynamodb.NewQueryPaginator(client, &dynamodb.QueryInput{
		TableName:                 aws.String(table),
		KeyConditionExpression:    aws.String("#c = :c"),
		ExpressionAttributeNames:  map[string]string{"#c": presence.KeyCustomer},
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: customer}},
	})
	seen := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", table, err)
		}
		for _, it := range page.Items {
			if seen++; seen > maxPresenceRows {
				return nil, errors.New("more than 200000 items for one customer: refusing to list them all")
			}
			thing := str(it[presence.KeyThing])
			if thing == presence.CountThing || topics.ValidateThingName(thing) != nil {
				continue
			}
			conn, _ := it[presence.AttrConnected].(*types.AttributeValueMemberBOOL)
			r := presenceRow{Customer: customer, Thing: thing, Connected: conn != nil && conn.Value, LastDisconnectReason: str(it[presence.AttrLastDisconnectReason]),
				ClientVersion: str(it[presence.AttrClientVersion])}
			if n, ok := it[presence.AttrSince].(*types.AttributeValueMemberN); ok {
				if ms, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
					r.Since = time.UnixMilli(ms).UTC().Format(time.RFC3339)
				}
			}
			if online && !r.Connected {
				continue
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

func str(v types.AttributeValue) string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}
