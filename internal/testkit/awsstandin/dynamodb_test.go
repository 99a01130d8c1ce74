package awsstandin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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

// newSortedTable is a real SDK client on a fresh stand-in with a table "t"
// keyed by pk (partition) and sk (sort).
func newSortedTable(t *testing.T) (*awsstandin.DynamoDB, *dynamodb.Client) {
	t.Helper()
	db := awsstandin.StartDynamoDB()
	t.Cleanup(db.Close)
	db.CreateTableWithSortKey("t", "pk", "sk")
	return db, dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(db.URL) })
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func isValidation(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException"
}

// The conditional-write pattern of the presence store on a table with a
// sort key, and every UpdateItem ReturnValues.
func TestDynamoDBSortKeyUpdateItem(t *testing.T) {
	db, c := newSortedTable(t)
	ctx := context.Background()
	key := map[string]types.AttributeValue{"pk": str("a"), "sk": str("b")}
	put := func(cond, v string, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
		out, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key,
			UpdateExpression: aws.String("SET #v = :v"), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames:  map[string]string{"#v": "v"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": num(v)}, ReturnValues: rv})
		if err != nil {
			return nil, err
		}
		return out.Attributes, nil
	}
	const newer = "attribute_not_exists(#v) OR #v < :v"
	if got, err := put(newer, "10", types.ReturnValueAllOld); err != nil || len(got) != 0 {
		t.Fatalf("first write: %v %v, want no old attributes", got, err)
	}
	var ccf *types.ConditionalCheckFailedException
	if _, err := put(newer, "9", ""); !errors.As(err, &ccf) {
		t.Fatalf("older value: %v, want ConditionalCheckFailedException", err)
	}
	if _, err := put(newer, "10", ""); !errors.As(err, &ccf) {
		t.Fatalf("equal value: %v, want ConditionalCheckFailedException", err)
	}
	if _, err := put("(#v = :v) OR attribute_not_exists(#v)", "10", ""); err != nil {
		t.Fatalf("equal with =: %v", err)
	}
	got, err := put(newer, "11", types.ReturnValueAllOld)
	if err != nil || got["v"].(*types.AttributeValueMemberN).Value != "10" || got["sk"].(*types.AttributeValueMemberS).Value != "b" {
		t.Fatalf("ALL_OLD: %v %v", got, err)
	}
	if it := db.Item("t", "a", "b"); it == nil || *it["v"].N != "11" {
		t.Fatalf("stored %v", it)
	}
	if db.Item("t", "a", "") != nil || db.Item("t", "b", "a") != nil || db.Item("nope", "a", "b") != nil {
		t.Error("Item found what is not there")
	}

	update := func(expr string, rv types.ReturnValue, vals map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
		out, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String(expr),
			ExpressionAttributeNames: map[string]string{"#c": "c"}, ExpressionAttributeValues: vals, ReturnValues: rv})
		if err != nil {
			return nil, err
		}
		return out.Attributes, nil
	}
	got, err = update("ADD #c :d", types.ReturnValueUpdatedNew, map[string]types.AttributeValue{":d": num("-1")})
	if err != nil || len(got) != 1 || got["c"].(*types.AttributeValueMemberN).Value != "-1" {
		t.Fatalf("ADD UPDATED_NEW: %v %v", got, err)
	}
	got, err = update("SET #c = :x, w = :y", types.ReturnValueUpdatedOld, map[string]types.AttributeValue{":x": num("2.5"), ":y": str("new")})
	if err != nil || len(got) != 1 || got["c"].(*types.AttributeValueMemberN).Value != "-1" {
		t.Fatalf("UPDATED_OLD: %v %v (w did not exist before)", got, err)
	}
	got, err = update("SET #c = #c + :x REMOVE w", types.ReturnValueAllNew, map[string]types.AttributeValue{":x": num("0.25")})
	if err != nil || len(got) != 4 || got["c"].(*types.AttributeValueMemberN).Value != "2.75" || got["w"] != nil {
		t.Fatalf("ALL_NEW: %v %v, want pk, sk, v and c=2.75", got, err)
	}

	// What the stand-in cannot evaluate, and what DynamoDB refuses, is a
	// ValidationException, never a guess.
	for _, cond := range []string{"size(#v) < :v", "#v < :undefined", "(#v < :v", "#v < :v OR", "#v IN (:v)", "#v BETWEEN :v AND :v"} {
		if _, err := put(cond, "12", ""); !isValidation(err) {
			t.Errorf("condition %q: %v, want ValidationException", cond, err)
		}
	}
	for _, rv := range []types.ReturnValue{"BOGUS", "all_new"} {
		if _, err := put(newer, "12", rv); !isValidation(err) {
			t.Errorf("ReturnValues %q: %v", rv, err)
		}
	}
	for _, expr := range []string{"SET sk = :x", "REMOVE pk", "SET #c = :x ADD #c :x", "", "DELETE #c :x"} {
		if _, err := update(expr, "", map[string]types.AttributeValue{":x": num("1")}); !isValidation(err) {
			t.Errorf("update %q: %v, want ValidationException", expr, err)
		}
	}
	for name, k := range map[string]map[string]types.AttributeValue{
		"no sort key":    {"pk": str("a")},
		"extra":          {"pk": str("a"), "sk": str("b"), "x": str("c")},
		"empty sort key": {"pk": str("a"), "sk": str("")},
		"number key":     {"pk": str("a"), "sk": num("1")},
	} {
		if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: k}); !isValidation(err) {
			t.Errorf("GetItem with key %s: %v", name, err)
		}
	}
	// The same partition key with another sort key is another item.
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": str("a"), "sk": str("c")}}); err != nil {
		t.Fatal(err)
	}
	if items := db.Items("t"); len(items) != 2 || *items[0]["sk"].S != "b" || *items[1]["sk"].S != "c" {
		t.Errorf("items %v", items)
	}
	var rnf *types.ResourceNotFoundException
	if _, err := put(newer, "12", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("other"), Key: key, UpdateExpression: aws.String("ADD #c :d"),
		ExpressionAttributeNames: map[string]string{"#c": "c"}, ExpressionAttributeValues: map[string]types.AttributeValue{":d": num("1")}}); !errors.As(err, &rnf) {
		t.Errorf("another table: %v", err)
	}
}

// Query pages through one partition in sort-key order with the SDK's own
// paginator, applies sort-key conditions and filters, and refuses what it
// does not implement.
func TestDynamoDBQuery(t *testing.T) {
	db, c := newSortedTable(t)
	ctx := context.Background()
	for _, it := range []struct{ pk, sk, n string }{{"a", "x3", "3"}, {"a", "x1", "1"}, {"a", "y", "9"}, {"a", "x2", "2"}, {"a", "x10", "10"}, {"b", "x1", "1"}, {"ab", "x0", "0"}} {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": str(it.pk), "sk": str(it.sk), "n": num(it.n)}}); err != nil {
			t.Fatal(err)
		}
	}
	query := func(in dynamodb.QueryInput) (sks []string, pages int, scanned int32, err error) {
		in.TableName = aws.String("t")
		if in.ExpressionAttributeValues == nil {
			in.ExpressionAttributeValues = map[string]types.AttributeValue{}
		}
		in.ExpressionAttributeValues[":p"] = str("a")
		p := dynamodb.NewQueryPaginator(c, &in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, pages, scanned, err
			}
			pages++
			scanned += page.ScannedCount
			if int(page.Count) != len(page.Items) {
				t.Errorf("Count %d for %d items", page.Count, len(page.Items))
			}
			if page.LastEvaluatedKey != nil && (len(page.LastEvaluatedKey) != 2 || page.LastEvaluatedKey["pk"].(*types.AttributeValueMemberS).Value != "a") {
				t.Errorf("LastEvaluatedKey %v", page.LastEvaluatedKey)
			}
			for _, it := range page.Items {
				sks = append(sks, it["sk"].(*types.AttributeValueMemberS).Value)
			}
		}
		return sks, pages, scanned, nil
	}
	for name, c := range map[string]struct {
		in      dynamodb.QueryInput
		want    string
		pages   int
		scanned int32
	}{
		"whole partition":          {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p")}, "x1 x10 x2 x3 y", 1, 5},
		"two a page":               {dynamodb.QueryInput{KeyConditionExpression: aws.String("#k = :p"), ExpressionAttributeNames: map[string]string{"#k": "pk"}, Limit: aws.Int32(2)}, "x1 x10 x2 x3 y", 3, 5},
		"limit the whole size":     {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p"), Limit: aws.Int32(5)}, "x1 x10 x2 x3 y", 1, 5},
		"filter after the limit":   {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p"), FilterExpression: aws.String("n > :two"), ExpressionAttributeValues: map[string]types.AttributeValue{":two": num("2")}, Limit: aws.Int32(2)}, "x10 x3 y", 3, 5},
		"begins_with":              {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :x)"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": str("x1")}}, "x1 x10", 1, 2},
		"between, sort key first":  {dynamodb.QueryInput{KeyConditionExpression: aws.String("sk BETWEEN :lo and :hi AND pk = :p"), ExpressionAttributeValues: map[string]types.AttributeValue{":lo": str("x10"), ":hi": str("x3")}}, "x10 x2 x3", 1, 3},
		"less than, paged":         {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p AND sk < :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": str("x2")}, Limit: aws.Int32(1)}, "x1 x10", 2, 2},
		"greater or equal":         {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p AND sk >= :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": str("x3")}}, "x3 y", 1, 2},
		"sort key equality":        {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p AND sk = :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": str("y")}}, "y", 1, 1},
		"no match is an empty set": {dynamodb.QueryInput{KeyConditionExpression: aws.String("pk = :p AND sk > :x"), ExpressionAttributeValues: map[string]types.AttributeValue{":x": str("z")}}, "", 1, 0},
	} {
		sks, pages, scanned, err := query(c.in)
		if err != nil || strings.Join(sks, " ") != c.want || pages != c.pages || scanned != c.scanned {
			t.Errorf("%s: %v in %d pages, %d scanned, %v; want %q in %d pages, %d scanned", name, sks, pages, scanned, err, c.want, c.pages, c.scanned)
		}
	}
	for name, in := range map[string]dynamodb.QueryInput{
		"no key condition":        {},
		"sort key only":           {KeyConditionExpression: aws.String("sk = :x")},
		"partition range":         {KeyConditionExpression: aws.String("pk > :p")},
		"OR":                      {KeyConditionExpression: aws.String("pk = :p OR sk = :x")},
		"non-key attribute":       {KeyConditionExpression: aws.String("pk = :p AND n = :x")},
		"two sort conditions":     {KeyConditionExpression: aws.String("pk = :p AND sk > :x AND sk < :x")},
		"number against a string": {KeyConditionExpression: aws.String("pk = :p AND sk = :one")},
		"BETWEEN upside down":     {KeyConditionExpression: aws.String("pk = :p AND sk BETWEEN :x AND :a")},
		"filter on a key":         {KeyConditionExpression: aws.String("pk = :p"), FilterExpression: aws.String("begins_with(#s, :x)"), ExpressionAttributeNames: map[string]string{"#s": "sk"}},
		"undefined value":         {KeyConditionExpression: aws.String("pk = :nope")},
		"descending":              {KeyConditionExpression: aws.String("pk = :p"), ScanIndexForward: aws.Bool(false)},
		"projection":              {KeyConditionExpression: aws.String("pk = :p"), ProjectionExpression: aws.String("n")},
		"index":                   {KeyConditionExpression: aws.String("pk = :p"), IndexName: aws.String("byN")},
		"zero limit":              {KeyConditionExpression: aws.String("pk = :p"), Limit: aws.Int32(0)},
		"start in another partition": {KeyConditionExpression: aws.String("pk = :p"),
			ExclusiveStartKey: map[string]types.AttributeValue{"pk": str("b"), "sk": str("x1")}},
		"start without sort key": {KeyConditionExpression: aws.String("pk = :p"), ExclusiveStartKey: map[string]types.AttributeValue{"pk": str("a")}},
	} {
		vals := map[string]types.AttributeValue{":p": str("a"), ":x": str("x2"), ":a": str("a"), ":one": num("1")}
		for k, v := range in.ExpressionAttributeValues {
			vals[k] = v
		}
		in.ExpressionAttributeValues = vals
		in.TableName = aws.String("t")
		// Query itself, not the paginator (which drops a zero Limit).
		_, err := c.Query(ctx, &in)
		if !isValidation(err) {
			t.Errorf("%s: %v, want ValidationException", name, err)
		}
	}
	if n := db.Count("Query"); n < 20 {
		t.Errorf("Query served %d times", n)
	}
}

// Values DynamoDB refuses, or the stand-in does not hold, are refused.
func TestDynamoDBRefusesUnsupportedValues(t *testing.T) {
	_, c := newSortedTable(t)
	for name, v := range map[string]types.AttributeValue{
		"map":            &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": str("y")}},
		"list":           &types.AttributeValueMemberL{Value: []types.AttributeValue{str("y")}},
		"binary":         &types.AttributeValueMemberB{Value: []byte("y")},
		"number set":     &types.AttributeValueMemberNS{Value: []string{"1"}},
		"NULL false":     &types.AttributeValueMemberNULL{Value: false},
		"empty set":      &types.AttributeValueMemberSS{Value: []string{}},
		"duplicate set":  &types.AttributeValueMemberSS{Value: []string{"a", "a"}},
		"not a number":   num("twelve"),
		"a fraction":     num("1/2"),
		"an empty N":     num(""),
		"hex":            num("0x10"),
		"number + space": num("1 "),
	} {
		_, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": str("a"), "sk": str("b"), "v": v}})
		if !isValidation(err) {
			t.Errorf("%s: %v, want ValidationException", name, err)
		}
	}
	for _, ok := range []types.AttributeValue{num("-1.5e3"), num(".5"), &types.AttributeValueMemberNULL{Value: true}, str("")} {
		if _, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": str("a"), "sk": str("b"), "v": ok}}); err != nil {
			t.Errorf("%#v: %v", ok, err)
		}
	}
	if _, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String("t"), Item: map[string]types.AttributeValue{"pk": str("a"), "sk": str("b")}, ReturnValues: types.ReturnValueAllNew}); !isValidation(err) {
		t.Errorf("PutItem ALL_NEW: %v", err)
	}
}

// Any request body, for any operation, is answered 200 or 400 (never a
// crash or a dropped connection), on a table with a sort key.
func FuzzDynamoDBRequest(f *testing.F) {
	for _, seed := range []struct{ op, body string }{
		{"Query", `{"TableName":"t","KeyConditionExpression":"#k = :p AND begins_with(sk, :x)","ExpressionAttributeNames":{"#k":"pk"},"ExpressionAttributeValues":{":p":{"S":"a"},":x":{"S":"x"}},"Limit":1}`},
		{"Query", `{"TableName":"t","KeyConditionExpression":"pk = :p AND sk BETWEEN :x AND :y","FilterExpression":"NOT contains(s, :x) OR n < :n","ExpressionAttributeValues":{":p":{"S":"a"},":x":{"S":"x"},":y":{"S":"y"},":n":{"N":"1"}},"ExclusiveStartKey":{"pk":{"S":"a"},"sk":{"S":"x1"}}}`},
		{"UpdateItem", `{"TableName":"t","Key":{"pk":{"S":"a"},"sk":{"S":"b"}},"UpdateExpression":"SET #v = :v, n = n + :n ADD s :s REMOVE w","ConditionExpression":"attribute_not_exists(#v) OR (#v < :v AND n = :n)","ExpressionAttributeNames":{"#v":"v"},"ExpressionAttributeValues":{":v":{"N":"1.5"},":n":{"N":"-2"},":s":{"SS":["q"]}},"ReturnValues":"UPDATED_OLD"}`},
		{"PutItem", `{"TableName":"t","Item":{"pk":{"S":"a"},"sk":{"S":"b"},"b":{"BOOL":true},"z":{"NULL":true}},"ReturnValues":"ALL_OLD"}`},
		{"Scan", `{"TableName":"t","Limit":2,"FilterExpression":"begins_with(x, :p)","ExpressionAttributeValues":{":p":{"S":"a"}}}`},
		{"GetItem", `{"TableName":"t","Key":{"pk":{"S":"a"},"sk":{"S":"b"}},"ConsistentRead":true}`},
		{"Query", `{"TableName":"t","KeyConditionExpression":"((("}`},
		{"DeleteItem", `[]`},
	} {
		f.Add(seed.op, seed.body)
	}
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTableWithSortKey("t", "pk", "sk")
	client := &http.Client{Timeout: 10 * time.Second}
	f.Fuzz(func(t *testing.T, op, body string) {
		if strings.ContainsFunc(op, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Skip("not a header value the client can send")
		}
		req, err := http.NewRequest(http.MethodPost, db.URL, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %q: %v", op, body, err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
			t.Fatalf("%s %q: answer is not JSON: %v", op, body, err)
		}
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s %q: status %d", op, body, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusBadRequest && out["__type"] == nil {
			t.Fatalf("%s %q: error without __type: %v", op, body, out)
		}
	})
}

// DeleteItem removes the item only when its condition holds, evaluates the
// condition of a missing item against no attributes, and returns the old
// item with ALL_OLD.
func TestDynamoDBConditionalDeleteItem(t *testing.T) {
	ctx := context.Background()
	db := awsstandin.StartDynamoDB()
	defer db.Close()
	db.CreateTable("t", "pk")
	c := dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(db.URL) })
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "k"}}
	owner := func(v string) map[string]types.AttributeValue {
		return map[string]types.AttributeValue{":c": &types.AttributeValueMemberS{Value: v}}
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("t"),
		Item: map[string]types.AttributeValue{"pk": key["pk"], "customer": &types.AttributeValueMemberS{Value: "acme"}}}); err != nil {
		t.Fatal(err)
	}
	del := func(cond string, vals map[string]types.AttributeValue) (*dynamodb.DeleteItemOutput, error) {
		return c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String("t"), Key: key, ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: vals, ReturnValues: types.ReturnValueAllOld})
	}
	var ccf *types.ConditionalCheckFailedException
	if _, err := del("customer = :c", owner("globex")); !errors.As(err, &ccf) || len(db.Items("t")) != 1 {
		t.Fatalf("delete with a false condition: %v, %d items", err, len(db.Items("t")))
	}
	out, err := del("attribute_not_exists(pk) OR customer = :c", owner("acme"))
	if err != nil || len(db.Items("t")) != 0 || out.Attributes["customer"].(*types.AttributeValueMemberS).Value != "acme" {
		t.Fatalf("delete: %v %+v, %d items", err, out, len(db.Items("t")))
	}
	if out, err := del("attribute_not_exists(pk) OR customer = :c", owner("acme")); err != nil || len(out.Attributes) != 0 {
		t.Fatalf("delete of a missing item: %v %+v", err, out)
	}
	if _, err := del("customer = :c", owner("acme")); !errors.As(err, &ccf) {
		t.Fatalf("condition on a missing item's attribute: %v", err)
	}
}
