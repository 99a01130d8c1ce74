package presence

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

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

// DynamoDB is the Store on a DynamoDB table. An event that flips an
// agent's connected state is one TransactWriteItems: the agent's row,
// conditional on the event being newer than the row and on the row's state
// differing, and an ADD of ±1 on the customer's count item — both or
// neither
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
// Its ClientRequestToken is the event's token, so a retried invocation
// whose transaction was done but whose answer was lost is answered with
// success and not applied again for 10 minutes (same page: "A client
// request token is valid for 10 minutes after the first request that uses
// it is completed"); after that the ordering condition still refuses it.
// An event that changes the row but not its state is a conditional
// UpdateItem
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html).
//
// The role needs dynamodb:UpdateItem on the table (the permissions of a
// transaction's Update actions are those of UpdateItem:
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html)
// and dynamodb:GetItem to read the count for the metric.
type DynamoDB struct {
	Client *dynamodb.Client
	Table  string
}

// maxApplyRounds bounds how often Apply re-decides when the row changes
// between its transaction and its plain write (another invocation for the
// same agent); every round ends in a write, a stale verdict or a retry.
const maxApplyRounds = 3

// errTransactionConflict is flip's error when DynamoDB cancelled the
// transaction because another one was in progress on one of its items
// (cancellation reason TransactionConflict,
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
var errTransactionConflict = errors.New("transaction conflict")

// conflictWait is the first round's bound on the jittered wait after a
// transaction conflict; it doubles each round.
const conflictWait = 50 * time.Millisecond

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Apply writes row if it is newer than the stored one (see Position.Newer),
// moving the count in the same transaction when the connected state flips.
func (d *DynamoDB) Apply(ctx context.Context, row Row, token string) (Outcome, int, error) {
	delta := -1
	if row.Connected {
		delta = 1
	}
	for round := range maxApplyRounds {
		// Each round its own token: the token of a cancelled transaction is
		// not reused with a later decision (unverified whether the service
		// remembers the tokens of cancelled transactions).
		old, flipped, err := d.flip(ctx, row, delta, fmt.Sprintf("%s-%d", token, round))
		if errors.Is(err, errTransactionConflict) && round+1 < maxApplyRounds {
			// Another transaction held the row or the customer's count row
			// (many of one customer's agents reconnecting at once): wait a
			// little, with jitter, and decide again.
			if err := sleepCtx(ctx, time.Duration(rand.Int64N(int64(conflictWait<<round)))); err != nil {
				return Ignored, 0, err
			}
			continue
		}
		if err != nil {
			return Ignored, 0, err
		}
		if flipped {
			n, err := d.count(ctx, row.Customer)
			return Flipped, n, err
		}
		if !row.At.Newer(positionOf(old)) {
			return Ignored, 0, nil // older than or a repeat of the row: nothing to do
		}
		// Newer, but the row is already in this state: the count stays.
		written, err := d.update(ctx, row)
		if err != nil || written {
			return Written, 0, err
		}
		// The row changed in between: decide again.
	}
	return Ignored, 0, fmt.Errorf("presence of %s/%s: the row changed during each of %d attempts", row.Customer, row.Thing, maxApplyRounds)
}

// flip runs the transaction that writes row if it is newer and flips the
// connected state, and moves the count by delta. If the row's condition
// failed it returns the row as it was (nil if there is none).
func (d *DynamoDB) flip(ctx context.Context, row Row, delta int, token string) (map[string]types.AttributeValue, bool, error) {
	u := d.rowUpdate(row, true)
	u.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	_, err := d.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String(token),
		TransactItems: []types.TransactWriteItem{
			{Update: u},
			{Update: &types.Update{
				TableName:                 aws.String(d.Table),
				Key:                       key(row.Customer, CountThing),
				UpdateExpression:          aws.String("ADD #n :d"),
				ExpressionAttributeNames:  map[string]string{"#n": attrCount},
				ExpressionAttributeValues: map[string]types.AttributeValue{":d": num(int64(delta))},
			}},
		},
	})
	if err == nil {
		return nil, true, nil
	}
	// CancellationReasons are in the order of TransactItems, the row first
	// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html).
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) == 2 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return tce.CancellationReasons[0].Item, false, nil
	}
	if errors.As(err, &tce) {
		for _, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "TransactionConflict" {
				return nil, false, fmt.Errorf("presence of %s/%s: %w: %v", row.Customer, row.Thing, errTransactionConflict, err)
			}
		}
	}
	return nil, false, fmt.Errorf("presence of %s/%s: %w", row.Customer, row.Thing, err)
}

// update writes row with a plain UpdateItem if it is newer and leaves the
// connected state as it is; it reports whether it wrote.
func (d *DynamoDB) update(ctx context.Context, row Row) (bool, error) {
	u := d.rowUpdate(row, false)
	_, err := d.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 u.TableName,
		Key:                       u.Key,
		UpdateExpression:          u.UpdateExpression,
		ConditionExpression:       u.ConditionExpression,
		ExpressionAttributeNames:  u.ExpressionAttributeNames,
		ExpressionAttributeValues: u.ExpressionAttributeValues,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("presence of %s/%s: %w", row.Customer, row.Thing, err)
	}
	return true, nil
}

// rowUpdate is the update of row's item, conditional on row being newer
// and on the stored connected state differing from row's (flip) or
// equalling it (!flip); a missing state counts as disconnected.
func (d *DynamoDB) rowUpdate(row Row, flip bool) *types.Update {
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
	newer := "attribute_not_exists(#ts) OR #ts < :ts OR (#ts = :ts AND #v < :v)"
	if row.At.Disconnect {
		newer += " OR (#ts = :ts AND #v = :v AND #d = :false)"
	}
	// Whether the stored state is connected: #c = :true; otherwise
	// (disconnected or no state yet): attribute_not_exists(#c) OR #c = :false.
	wasConnected := row.Connected != flip
	state := "attribute_not_exists(#c) OR #c = :false"
	if wasConnected {
		state = "#c = :true"
	}
	cond := "(" + newer + ") AND (" + state + ")"
	// DynamoDB refuses unused expression values: add only those used.
	if strings.Contains(cond, ":false") {
		values[":false"] = &types.AttributeValueMemberBOOL{Value: false}
	}
	if strings.Contains(cond, ":true") {
		values[":true"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	return &types.Update{
		TableName:                 aws.String(d.Table),
		Key:                       key(row.Customer, row.Thing),
		UpdateExpression:          aws.String(set),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
}

// positionOf is the position an item was last written from; the zero
// Position (older than every event) if it has none.
func positionOf(item map[string]types.AttributeValue) Position {
	var p Position
	if n, ok := item[attrAtTs].(*types.AttributeValueMemberN); ok {
		p.Timestamp, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	if n, ok := item[attrAtVer].(*types.AttributeValueMemberN); ok {
		p.Version, _ = strconv.ParseInt(n.Value, 10, 64)
	}
	if b, ok := item[attrAtDisc].(*types.AttributeValueMemberBOOL); ok {
		p.Disconnect = b.Value
	}
	return p
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

// count reads the customer's connected count (a strongly consistent
// read, so it includes the transaction just done).
func (d *DynamoDB) count(ctx context.Context, customer string) (int, error) {
	out, err := d.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(d.Table),
		Key:            key(customer, CountThing),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("connected count of %s: %w", customer, err)
	}
	n, ok := out.Item[attrCount].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("connected count of %s: no %s in the item", customer, attrCount)
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
