package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/tokenstore"
)

func withTokenTable(t *testing.T) *awsstandin.DynamoDB {
	t.Helper()
	db := awsstandin.StartDynamoDB()
	t.Cleanup(db.Close)
	db.CreateTable("tokens", tokenstore.KeyAttribute)
	old := tokenDB
	tokenDB = func(context.Context, *environment) (tokenstore.API, error) {
		return dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(db.URL) }), nil
	}
	t.Cleanup(func() { tokenDB = old })
	return db
}

func TestTokenIssueListRevoke(t *testing.T) {
	db := withTokenTable(t)
	ctx := context.Background()
	env, out, errb := testEnv()
	if code := run(ctx, []string{"token", "issue", "--table", "tokens", "--customer", "acme", "--uses", "3", "--note", "site 7", "--json"}, env); code != 0 {
		t.Fatalf("issue: %d %s", code, errb)
	}
	var issued []tokenRow
	if err := json.Unmarshal(out.Bytes(), &issued); err != nil || len(issued) != 1 {
		t.Fatalf("issue output %q: %v", out, err)
	}
	tok, err := provisioning.ParseToken(issued[0].Token)
	if err != nil || tok.ID != issued[0].ID || issued[0].State != "active" || issued[0].MaxUses != 3 {
		t.Fatalf("issued %+v: %v", issued[0], err)
	}
	if h := db.Items("tokens")[0]["secretHash"].S; h == nil || *h != provisioning.SecretHash(tok.Secret) {
		t.Fatal("the stored hash is not the secret's")
	}
	env, out, _ = testEnv()
	env.getenv = func(k string) (string, bool) { return "tokens", k == TableEnv }
	run(ctx, []string{"token", "issue", "--customer", "globex"}, env)
	if !strings.Contains(out.String(), "agt1.") || !strings.Contains(out.String(), "globex") {
		t.Fatalf("table output %q", out)
	}

	env, out, _ = testEnv()
	if code := run(ctx, []string{"token", "list", "--table", "tokens", "--customer", "acme"}, env); code != 0 {
		t.Fatalf("list: %d", code)
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "0/3") || strings.Contains(out.String(), "agt1.") {
		t.Fatalf("list output %q", out)
	}
	env, out, _ = testEnv()
	if code := run(ctx, []string{"token", "revoke", "--table", "tokens", "--id", tok.ID, "--json"}, env); code != 0 {
		t.Fatalf("revoke: %d", code)
	}
	var revoked []tokenRow
	if json.Unmarshal(out.Bytes(), &revoked) != nil || revoked[0].State != "revoked" {
		t.Fatalf("revoke output %q", out)
	}
}

func TestTokenUsageErrors(t *testing.T) {
	withTokenTable(t)
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token"}, 2, "no verb"},
		{[]string{"token", "mint"}, 2, "unknown verb"},
		{[]string{"token", "issue", "--customer", "acme"}, 2, "no token table"},
		{[]string{"token", "issue", "--table", "tokens"}, 2, "--customer"},
		{[]string{"token", "issue", "--table", "tokens", "--customer", "a/b"}, 2, "outside"},
		{[]string{"token", "issue", "--table", "tokens", "--customer", "acme", "--uses", "0"}, 2, "uses"},
		{[]string{"token", "issue", "--table", "tokens", "--customer", "acme", "--valid", "-1h"}, 2, "validity"},
		{[]string{"token", "issue", "--table", "tokens", "--customer", "acme", "--bogus"}, 2, "bogus"},
		{[]string{"token", "revoke", "--table", "tokens"}, 2, "--id"},
		{[]string{"token", "revoke", "--table", "tokens", "--id", strings.Repeat("0", 32)}, 1, "no token"},
		{[]string{"token", "list", "--table", "missing-table"}, 1, "ResourceNotFound"},
	} {
		env, _, errb := testEnv()
		if code := run(ctx, c.args, env); code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errb, c.code, c.want)
		}
	}
}
