package awsstandin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

func TestDynamoDBConditionsThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTable("t", "pk")
	c := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(db.URL) })
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k"}}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put := func(cond string, vals map[string]types.AttributeValue) error {
		in := &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": s("k"), "n": n("2"), "b": &types.AttributeValueMemberBOOL{Value: true}}}
		if cond != "" {
			in.ConditionExpression = aws.String(cond)
			in.ExpressionAttributeValues = vals
		}
		_, err := c.PutItem(ctx, in)
		return err
	}
	if err := put("attribute_not_exists(pk)", nil); err != nil {
		t.Fatal(err)
	}
	var ccf *types.ConditionalCheckFailedException
	if err := put("attribute_not_exists(pk)", nil); !errors.As(err, &ccf) {
		t.Fatalf("second create: %v, want ConditionalCheckFailedException", err)
	}
	update := func(expr, cond string, vals map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
		in := &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String(expr), ExpressionAttributeValues: vals, ReturnValues: types.ReturnValueAllNew}
		if cond != "" {
			in.ConditionExpression = aws.String(cond)
		}
		out, err := c.UpdateItem(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.Attributes, nil
	}
	// Numbers compare numerically (10 > 9), a missing attribute fails any
	// comparison, and a failed condition changes nothing.
	if _, err := update("SET n = n + :one", "n < :ten AND (missing < :ten OR b = :t)", map[string]types.AttributeValue{":one": n("1"), ":ten": n("10"), ":t": &types.AttributeValueMemberBOOL{Value: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := update("SET n = :x", "missing < :ten", map[string]types.AttributeValue{":x": n("0"), ":ten": n("10")}); !errors.As(err, &ccf) {
		t.Fatalf("missing attribute compared: %v", err)
	}
	if _, err := update("SET n = :x", "NOT n > :nine", map[string]types.AttributeValue{":x": n("0"), ":nine": n("2.5")}); !errors.As(err, &ccf) {
		t.Fatalf("3 > 2.5 not seen: %v", err)
	}
	if _, err := update("ADD s :a", "NOT contains(s, :x)", map[string]types.AttributeValue{":a": &types.AttributeValueMemberSS{Value: []string{"a"}}, ":x": s("a")}); err != nil {
		t.Fatal(err)
	}
	got, err := update("ADD s :b", "contains(s, :x)", map[string]types.AttributeValue{":b": &types.AttributeValueMemberSS{Value: []string{"b", "a"}}, ":x": s("a")})
	if err != nil {
		t.Fatal(err)
	}
	if ss := got["s"].(*types.AttributeValueMemberSS).Value; len(ss) != 2 || got["n"].(*types.AttributeValueMemberN).Value != "3" {
		t.Fatalf("after update: %v %v", ss, got["n"])
	}
	if _, err := update("SET n = :x", "contains(s, :x)", map[string]types.AttributeValue{":x": s("z")}); !errors.As(err, &ccf) {
		t.Fatalf("contains on a set: %v", err)
	}
	var api smithy.APIError
	for _, bad := range []string{"n <", "bogus(n)", "n = :undefined"} {
		_, err := update("SET n = :one", bad, map[string]types.AttributeValue{":one": n("1"), ":b": &types.AttributeValueMemberBOOL{Value: true}})
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Errorf("condition %q: %v, want ValidationException", bad, err)
		}
	}
	if _, err := update("SET pk = :v", "", map[string]types.AttributeValue{":v": s("x")}); !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Errorf("key update: %v", err)
	}
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: key}); !errors.As(err, &api) || api.ErrorCode() != "ResourceNotFoundException" {
		t.Errorf("unknown table: %v", err)
	}
}
