package presence

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	layout "github.com/agentgate/agentgate/contract/presence"
)

// The table's layout (contract/presence).
const (
	KeyCustomer   = layout.KeyCustomer
	KeyThing      = layout.KeyThing
	CountThing    = layout.CountThing
	attrConnected = layout.AttrConnected
	attrSince     = layout.AttrSince
	attrReason    = layout.AttrLastDisconnectReason
	attrAtTs      = layout.AttrAtTimestamp
	attrAtVer     = layout.AttrAtVersion
	attrAtDisc    = layout.AttrAtDisconnect
	attrCount     = layout.AttrConnectedCount
	attrVersion   = layout.AttrClientVersion
	attrVersionAt = layout.AttrClientVersionAt
)

// DynamoDB is the Store on a DynamoDB table (UpdateItem with a condition
// expression; the conditional write is what makes repeats and older events
// no-ops:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
type DynamoDB struct {
	Client *dynamodb.Client
	Table  string
}

// Apply writes row if it is newer than the stored one (see Position.Newer).
func (d *DynamoDB) Apply(ctx context.Context, row Row) (bool, bool, error) {
	set := "SET #c = :c, #s = :s, #ts = :ts, #v = :v, #d = :d"
	names := map[string]string{"#c": attrConnected, "#s": attrSince, "#ts": attrAtTs, "#v": attrAtVer, "#d": attrAtDisc}
	values := map[string]types.AttributeValue{
		":c":  &types.AttributeValueMemberBOOL{Value: row.Connected},
		":s":  num(row.Since),
		":ts": num(row.At.Timestamp),
		":v":  num(row.At.Version),
		":d":  &types.AttributeValueMemberBOOL{Value: row.At.Disconnect},
	}
	if !row.Connected {
		set += ", #r = :r"
		names["#r"] = attrReason
		values[":r"] = &types.AttributeValueMemberS{Value: row.LastDisconnectReason}
	}
	// Position.Newer as a condition: no row yet, or an older timestamp, or
	// the same timestamp and an older version, or (for a disconnect) the
	// same timestamp and version written by a connect.
	cond := "attribute_not_exists(#ts) OR #ts < :ts OR (#ts = :ts AND #v < :v)"
	if row.At.Disconnect {
		cond += " OR (#ts = :ts AND #v = :v AND #d = :false)"
		values[":false"] = &types.AttributeValueMemberBOOL{Value: false}
	}
	out, err := d.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.Table),
		Key:                       key(row.Customer, row.Thing),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("presence of %s/%s: %w", row.Customer, row.Thing, err)
	}
	was := false
	if b, ok := out.Attributes[attrConnected].(*types.AttributeValueMemberBOOL); ok {
		was = b.Value
	}
	return true, was, nil
}

// SetVersion writes v if the row holds no version received at or after
// v.At. Only the two version attributes are set, so the connected state
// and the position lifecycle events are ordered by stay as they are.
func (d *DynamoDB) SetVersion(ctx context.Context, v Version) (bool, error) {
	_, err := d.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.Table),
		Key:                       key(v.Customer, v.Thing),
		UpdateExpression:          aws.String("SET #v = :v, #at = :at"),
		ConditionExpression:       aws.String("attribute_not_exists(#at) OR #at < :at"),
		ExpressionAttributeNames:  map[string]string{"#v": attrVersion, "#at": attrVersionAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": &types.AttributeValueMemberS{Value: v.Version}, ":at": num(v.At)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("client version of %s/%s: %w", v.Customer, v.Thing, err)
	}
	return true, nil
}

// Adjust adds delta to the customer's connected count.
func (d *DynamoDB) Adjust(ctx context.Context, customer string, delta int) (int, error) {
	out, err := d.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(d.Table),
		Key:                       key(customer, CountThing),
		UpdateExpression:          aws.String("ADD #n :d"),
		ExpressionAttributeNames:  map[string]string{"#n": attrCount},
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": num(int64(delta))},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("connected count of %s: %w", customer, err)
	}
	n, ok := out.Attributes[attrCount].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("connected count of %s: no %s in the answer", customer, attrCount)
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, fmt.Errorf("connected count of %s: %w", customer, err)
	}
	return v, nil
}

func key(customer, thing string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeyCustomer: &types.AttributeValueMemberS{Value: customer}, KeyThing: &types.AttributeValueMemberS{Value: thing}}
}

func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
