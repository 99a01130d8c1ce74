package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentgate/agentgate/contract/presence"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

func TestPresenceList(t *testing.T) {
	ddb := awsstandin.StartDynamoDB()
	defer ddb.Close()
	ddb.CreateTableWithSortKey("presence", presence.KeyCustomer, presence.KeyThing) // as constructs/dataplane creates it
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSTANDIN")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	c := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.URL) })
	put := func(customer, thing string, attrs map[string]types.AttributeValue) {
		set, names, values := "SET ", map[string]string{}, map[string]types.AttributeValue{}
		i := 0
		for k, v := range attrs {
			if i > 0 {
				set += ", "
			}
			n, val := "#a"+string(rune('a'+i)), ":v"+string(rune('a'+i))
			set += n + " = " + val
			names[n], values[val] = k, v
			i++
		}
		if _, err := c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String("presence"),
			Key:              map[string]types.AttributeValue{presence.KeyCustomer: &types.AttributeValueMemberS{Value: customer}, presence.KeyThing: &types.AttributeValueMemberS{Value: thing}},
			UpdateExpression: aws.String(set), ExpressionAttributeNames: names, ExpressionAttributeValues: values}); err != nil {
			t.Fatal(err)
		}
	}
	on := &types.AttributeValueMemberBOOL{Value: true}
	off := &types.AttributeValueMemberBOOL{Value: false}
	put("acme", "pc-1", map[string]types.AttributeValue{presence.AttrConnected: on, presence.AttrSince: &types.AttributeValueMemberN{Value: "1573002230757"},
		presence.AttrClientVersion: &types.AttributeValueMemberS{Value: "1.5.0"}, presence.AttrClientVersionAt: &types.AttributeValueMemberN{Value: "1573002231000"}})
	put("acme", "pc-2", map[string]types.AttributeValue{presence.AttrConnected: off, presence.AttrSince: &types.AttributeValueMemberN{Value: "1573002340451"},
		presence.AttrLastDisconnectReason: &types.AttributeValueMemberS{Value: "CONNECTION_LOST"}})
	put("acme", presence.CountThing, map[string]types.AttributeValue{presence.AttrConnectedCount: &types.AttributeValueMemberN{Value: "1"}})
	put("other", "pc-9", map[string]types.AttributeValue{presence.AttrConnected: on})

	list := func(args ...string) (int, string, string) {
		env, out, errb := testEnv()
		code := run(context.Background(), append([]string{"presence", "list", "--table", "presence", "--endpoint-url", ddb.URL}, args...), env)
		return code, out.String(), errb.String()
	}
	code, out, errOut := list("--customer", "acme")
	if code != 0 || !strings.Contains(out, "pc-1") || !strings.Contains(out, "pc-2") || strings.Contains(out, "#connected") || strings.Contains(out, "pc-9") {
		t.Fatalf("list: %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "2019-11-06T01:03:50Z") || !strings.Contains(out, "CONNECTION_LOST") || !strings.Contains(out, "1.5.0") {
		t.Errorf("list lacks since, reason or version:\n%s", out)
	}
	code, out, _ = list("--customer", "acme", "--online", "--json")
	var rows []presenceRow
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 1 || rows[0].Thing != "pc-1" || !rows[0].Connected || rows[0].ClientVersion != "1.5.0" {
		t.Fatalf("--online --json: %d %v %+v\n%s", code, err, rows, out)
	}
	for _, bad := range [][]string{{"--customer", "a/b"}, {"--customer", "+"}, {}, {"--customer", "acme", "--nope"}} {
		if code, _, _ := list(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	env, _, errb := testEnv()
	if code := run(context.Background(), []string{"presence", "list", "--customer", "acme"}, env); code != 2 || !strings.Contains(errb.String(), EnvPresenceTable) {
		t.Errorf("no table: %d %s", code, errb.String())
	}
	if code := run(context.Background(), []string{"presence", "show"}, env); code != 2 {
		t.Errorf("unknown verb: %d", code)
	}
}
