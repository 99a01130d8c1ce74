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

func transactClient(db *awsstandin.DynamoDB) *dynamodb.Client {
	return dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(db.URL)
		o.RetryMaxAttempts = 1 // faults reach the test
	})
}

func skey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

// addTo is an Update action adding :d to n on (pk, sk), if cond holds.
func addTo(pk, sk, cond string, d string) types.TransactWriteItem {
	u := &types.Update{
		TableName:                 aws.String("t"),
		Key:                       skey(pk, sk),
		UpdateExpression:          aws.String("ADD #n :d"),
		ExpressionAttributeNames:  map[string]string{"#n": "n"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": &types.AttributeValueMemberN{Value: d}},
	}
	if cond != "" {
		u.ConditionExpression = aws.String(cond)
		u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	return types.TransactWriteItem{Update: u}
}

func nOf(t *testing.T, db *awsstandin.DynamoDB, pk, sk string) string {
	t.Helper()
	it := db.Item("t", pk, sk)
	if it == nil {
		return "absent"
	}
	if it["n"].N == nil {
		t.Fatalf("item %s/%s without n: %v", pk, sk, it)
	}
	return *it["n"].N
}

// A transaction whose condition fails on one action changes nothing, and
// the SDK's TransactionCanceledException carries one reason per action in
// order, with the old item where ALL_OLD was asked.
func TestDynamoDBTransactWriteItemsIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTableWithSortKey("t", "pk", "sk")
	c := transactClient(db)
	if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		addTo("a", "1", "attribute_not_exists(n)", "5"),
		addTo("a", "2", "", "1"),
		{Put: &types.Put{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}, "sk": &types.AttributeValueMemberS{Value: "3"}}}},
	}}); err != nil {
		t.Fatal(err)
	}
	if nOf(t, db, "a", "1") != "5" || nOf(t, db, "a", "2") != "1" || db.Item("t", "a", "3") == nil {
		t.Fatalf("items after the first transaction: %v", db.Items("t"))
	}
	// Second: the first action's condition now fails; the others would succeed.
	_, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		addTo("a", "2", "", "1"),
		addTo("a", "1", "attribute_not_exists(n)", "5"),
		{Delete: &types.Delete{TableName: aws.String("t"), Key: skey("a", "3")}},
	}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("err %v, want a TransactionCanceledException", err)
	}
	if len(tce.CancellationReasons) != 3 {
		t.Fatalf("reasons %+v, want 3", tce.CancellationReasons)
	}
	r := tce.CancellationReasons
	if aws.ToString(r[0].Code) != "None" || aws.ToString(r[1].Code) != "ConditionalCheckFailed" || aws.ToString(r[2].Code) != "None" {
		t.Fatalf("codes %q %q %q", aws.ToString(r[0].Code), aws.ToString(r[1].Code), aws.ToString(r[2].Code))
	}
	if n, ok := r[1].Item["n"].(*types.AttributeValueMemberN); !ok || n.Value != "5" {
		t.Errorf("reason item %v, want the old item with n=5", r[1].Item)
	}
	if r[0].Item != nil {
		t.Errorf("an action that did not fail carries an item: %v", r[0].Item)
	}
	if nOf(t, db, "a", "1") != "5" || nOf(t, db, "a", "2") != "1" || db.Item("t", "a", "3") == nil {
		t.Fatalf("a cancelled transaction changed items: %v", db.Items("t"))
	}
	// Malformed transactions are refused whole.
	for name, items := range map[string][]types.TransactWriteItem{
		"two actions on one item":             {addTo("a", "2", "", "1"), addTo("a", "2", "", "1")},
		"condition check without a condition": {addTo("a", "2", "", "1"), {ConditionCheck: &types.ConditionCheck{TableName: aws.String("t"), Key: skey("a", "1")}}},
		"no such table":                       {addTo("a", "2", "", "1"), {Delete: &types.Delete{TableName: aws.String("nope"), Key: skey("a", "1")}}},
		"bad update":                          {addTo("a", "2", "", "1"), {Update: &types.Update{TableName: aws.String("t"), Key: skey("a", "1"), UpdateExpression: aws.String("FROB n")}}},
		"partial key":                         {addTo("a", "2", "", "1"), {Delete: &types.Delete{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}}}},
		"bad value in check":                  {addTo("a", "2", "", "1"), {ConditionCheck: &types.ConditionCheck{TableName: aws.String("t"), Key: skey("a", "1"), ConditionExpression: aws.String("n = :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": &types.AttributeValueMemberN{Value: "x1"}}}}},
	} {
		if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if nOf(t, db, "a", "2") != "1" {
		t.Errorf("a refused transaction changed an item: n=%s", nOf(t, db, "a", "2"))
	}
	// A passing ConditionCheck lets the transaction through.
	if _, err := c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: aws.String("t"), Key: skey("a", "1"), ConditionExpression: aws.String("n = :five"), ExpressionAttributeValues: map[string]types.AttributeValue{":five": &types.AttributeValueMemberN{Value: "5"}}}},
		addTo("a", "2", "", "1"),
	}}); err != nil {
		t.Fatal(err)
	}
	if nOf(t, db, "a", "2") != "2" {
		t.Errorf("n=%s after the checked transaction, want 2", nOf(t, db, "a", "2"))
	}
}

// The same token and request is applied once; the same token with another
// request is refused; a forgotten token (its 10 minutes over) is new.
func TestDynamoDBTransactWriteItemsClientRequestToken(t *testing.T) {
	ctx := context.Background()
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTableWithSortKey("t", "pk", "sk")
	c := transactClient(db)
	in := &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String("tok-1"), TransactItems: []types.TransactWriteItem{addTo("a", "1", "", "1"), addTo("a", "2", "", "1")}}
	for range 3 {
		if _, err := c.TransactWriteItems(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	if nOf(t, db, "a", "1") != "1" || nOf(t, db, "a", "2") != "1" {
		t.Fatalf("three calls with one token applied more than once: %v", db.Items("t"))
	}
	other := &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String("tok-1"), TransactItems: []types.TransactWriteItem{addTo("a", "1", "", "7")}}
	_, err := c.TransactWriteItems(ctx, other)
	var ipm *types.IdempotentParameterMismatchException
	if !errors.As(err, &ipm) {
		t.Fatalf("err %v, want IdempotentParameterMismatchException", err)
	}
	if nOf(t, db, "a", "1") != "1" {
		t.Fatalf("a mismatched request changed an item")
	}
	db.ForgetTokens()
	if _, err := c.TransactWriteItems(ctx, in); err != nil {
		t.Fatal(err)
	}
	if nOf(t, db, "a", "1") != "2" {
		t.Errorf("after the token expired the request was not applied: n=%s", nOf(t, db, "a", "1"))
	}
	long := &dynamodb.TransactWriteItemsInput{ClientRequestToken: aws.String("0123456789012345678901234567890123456"), TransactItems: in.TransactItems}
	if _, err := c.TransactWriteItems(ctx, long); err == nil {
		t.Error("a 37-character token was accepted")
	}
}

// The fault hook fails a request before applying it (nothing changes) or
// after (the change is made, the answer is an error).
func TestDynamoDBFaultHook(t *testing.T) {
	ctx := context.Background()
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTableWithSortKey("t", "pk", "sk")
	c := transactClient(db)
	// A new input per call: the SDK fills in a missing ClientRequestToken
	// on the input it is given, so reusing one would repeat its token.
	in := func() *dynamodb.TransactWriteItemsInput {
		return &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{addTo("a", "1", "", "1")}}
	}
	db.SetFault(func(op string) awsstandin.DynamoDBFault {
		return awsstandin.DynamoDBFault{Code: "ThrottlingException"}
	})
	_, err := c.TransactWriteItems(ctx, in())
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
		t.Fatalf("err %v, want ThrottlingException", err)
	}
	if db.Item("t", "a", "1") != nil {
		t.Fatal("a request failed before applying changed an item")
	}
	db.SetFault(func(op string) awsstandin.DynamoDBFault {
		return awsstandin.DynamoDBFault{Code: "InternalServerError", Status: 500, AfterApply: true}
	})
	if _, err := c.TransactWriteItems(ctx, in()); !errors.As(err, &ae) || ae.ErrorCode() != "InternalServerError" {
		t.Fatalf("err %v, want InternalServerError", err)
	}
	if nOf(t, db, "a", "1") != "1" {
		t.Fatal("a request failed after applying did not change the item")
	}
	db.SetFault(nil)
	if _, err := c.TransactWriteItems(ctx, in()); err != nil {
		t.Fatal(err)
	}
	if nOf(t, db, "a", "1") != "2" {
		t.Errorf("n=%s, want 2", nOf(t, db, "a", "1"))
	}
}
