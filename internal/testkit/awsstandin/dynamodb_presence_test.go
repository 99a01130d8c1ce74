package awsstandin

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

func TestDynamoDBUpdateItemWithTheRealClient(t *testing.T) {
	d := StartPresenceDynamoDB("t")
	defer d.Close()
	c := dynamodb.NewFromConfig(Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(d.URL) })
	ctx := context.Background()
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}, "sk": &types.AttributeValueMemberS{Value: "b"}}
	n := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	put := func(cond string, v string) error {
		_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key,
			UpdateExpression: aws.String("SET #v = :v"), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#v": "v"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(v)}})
		return err
	}
	if err := put("attribute_not_exists(#v) OR #v < :v", "10"); err != nil {
		t.Fatal(err)
	}
	var ccf *types.ConditionalCheckFailedException
	if err := put("attribute_not_exists(#v) OR #v < :v", "9"); !errors.As(err, &ccf) {
		t.Fatalf("older value: %v, want ConditionalCheckFailedException", err)
	}
	if err := put("attribute_not_exists(#v) OR #v < :v", "10"); !errors.As(err, &ccf) {
		t.Fatalf("equal value: %v, want ConditionalCheckFailedException", err)
	}
	if err := put("(#v = :v) OR attribute_not_exists(#v)", "10"); err != nil {
		t.Fatalf("equal with =: %v", err)
	}
	if got := d.Item("a", "b")["v"]["N"]; got != "10" {
		t.Errorf("v = %v", got)
	}
	out, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String("ADD #c :d"),
		ExpressionAttributeNames: map[string]string{"#c": "c"}, ExpressionAttributeValues: map[string]types.AttributeValue{":d": n("-1")},
		ReturnValues: types.ReturnValueUpdatedNew})
	if err != nil || out.Attributes["c"].(*types.AttributeValueMemberN).Value != "-1" {
		t.Fatalf("ADD: %v %v", out, err)
	}
	// What the stand-in cannot evaluate is refused, never guessed.
	for _, cond := range []string{"v < :v", "#v > :v", "size(#v) < :v", "#v < :undefined", "(#v < :v", "#v < :v OR", "begins_with(#v, :v)"} {
		var ae smithy.APIError
		if err := put(cond, "11"); !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
			t.Errorf("condition %q: %v, want ValidationException", cond, err)
		}
	}
	if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("other"), Key: key, UpdateExpression: aws.String("ADD #c :d"),
		ExpressionAttributeNames: map[string]string{"#c": "c"}, ExpressionAttributeValues: map[string]types.AttributeValue{":d": n("1")}}); err == nil {
		t.Error("another table accepted")
	}
}
