package awsstandin

// TransactWriteItems on the DynamoDB stand-in, as the API reference
// describes it
// (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html):
//
//   - 1 to 100 actions, each exactly one of ConditionCheck, Put, Update,
//     Delete; no two of them on the same item (else a ValidationException);
//   - all or nothing: every condition is evaluated against the items as
//     they are before the transaction, under the stand-in's one lock; if
//     any fails, nothing changes and the answer is a
//     TransactionCanceledException whose CancellationReasons hold one entry
//     per action in request order: ConditionalCheckFailed (with the item
//     as it was when the action asked ReturnValuesOnConditionCheckFailure
//     ALL_OLD and the item exists) or None
//     (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CancellationReason.html
//     says an action without an error has "a Null code"; SDK users report
//     the service sends the code None — the stand-in sends None,
//     unverified which);
//   - ClientRequestToken (1 to 36 characters): repeating a transaction that
//     succeeded with the same token and the same actions succeeds without
//     applying it again; the same token with other actions is an
//     IdempotentParameterMismatchException. The reference's 10-minute
//     validity of a token is not modelled (ForgetTokens ends it), and only
//     a transaction that succeeded records its token (unverified what the
//     service does with the token of a cancelled one).
//
// Not modelled: the 4 MB aggregate size, TransactionConflict with
// concurrent requests, ReturnConsumedCapacity, ReturnItemCollectionMetrics.

import (
	"encoding/json"
	"fmt"
	"strings"
)

// transactItem is one action of a TransactWriteItems request.
type transactItem struct {
	ConditionCheck *ddbRequest `json:"ConditionCheck,omitempty"`
	Put            *ddbRequest `json:"Put,omitempty"`
	Update         *ddbRequest `json:"Update,omitempty"`
	Delete         *ddbRequest `json:"Delete,omitempty"`
}

// cancellationReason is one entry of a TransactionCanceledException.
type cancellationReason struct {
	Code    string `json:"Code"`
	Message string `json:"Message,omitempty"`
	Item    Item   `json:"Item,omitempty"`
}

// DynamoDBFault is what the fault hook makes of one request: Code ""
// serves it normally; otherwise the answer is the error Code (HTTP Status,
// 400 if 0) either instead of applying the request or, with AfterApply,
// after applying it (the change is made, the answer is lost).
// With Code "TransactionCanceledException", Reasons are the cancellation
// reason codes returned, one per transaction item (e.g. "None",
// "TransactionConflict").
type DynamoDBFault struct {
	Code       string
	Status     int
	AfterApply bool
	Reasons    []string
}

func (f DynamoDBFault) err() *ddbError {
	status := f.Status
	if status == 0 {
		status = 400
	}
	e := &ddbError{status: status, code: f.Code, msg: "fault injected by the stand-in"}
	for _, r := range f.Reasons {
		e.reasons = append(e.reasons, cancellationReason{Code: r})
	}
	return e
}

// SetFault installs (or with nil removes) a hook deciding the fault for
// each request by operation name ("TransactWriteItems", "UpdateItem", …).
func (d *DynamoDB) SetFault(f func(op string) DynamoDBFault) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = f
}

// ForgetTokens ends the validity of every ClientRequestToken seen, as the
// service does 10 minutes after a token's first request completed.
func (d *DynamoDB) ForgetTokens() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tokens = map[string]string{}
}

// transactAction is one decoded action, ready to apply.
type transactAction struct {
	kind string // ConditionCheck, Put, Update or Delete
	req  *ddbRequest
	t    *ddbTable
	k    itemKey
}

// transactWrite runs TransactWriteItems with d.mu held.
func (d *DynamoDB) transactWrite(req *ddbRequest) (any, *ddbError) {
	if req.TableName != "" || req.Key != nil || req.Item != nil || req.ConditionExpression != "" || req.UpdateExpression != "" ||
		req.ExpressionAttributeNames != nil || req.ExpressionAttributeValues != nil || req.ReturnValues != "" || req.ReturnValuesOnConditionCheckFailure != "" ||
		req.KeyConditionExpression != "" || req.FilterExpression != "" || req.Limit != nil || req.ExclusiveStartKey != nil || req.ConsistentRead {
		return nil, validation("TransactWriteItems takes TransactItems and ClientRequestToken only")
	}
	if n := len(req.TransactItems); n < 1 || n > 100 {
		return nil, validation("TransactItems must have 1 to 100 actions, has %d", n)
	}
	var token string
	if req.ClientRequestToken != nil {
		token = *req.ClientRequestToken
		if len(token) < 1 || len(token) > 36 {
			return nil, validation("ClientRequestToken must be 1 to 36 characters")
		}
	}
	actions, derr := d.transactActions(req.TransactItems)
	if derr != nil {
		return nil, derr
	}
	canon, err := json.Marshal(req.TransactItems)
	if err != nil {
		return nil, &ddbError{500, "InternalServerError", err.Error(), nil}
	}
	if token != "" {
		if prev, ok := d.tokens[token]; ok {
			if prev != string(canon) {
				return nil, &ddbError{400, "IdempotentParameterMismatchException", "the request uses the same client token as a previous, but non-identical request", nil}
			}
			return map[string]any{}, nil // done before: not applied again
		}
	}
	// Evaluate every condition and compute every new item before changing
	// anything.
	reasons := make([]cancellationReason, len(actions))
	failed := false
	next := make([]Item, len(actions))
	for i, a := range actions {
		ex := &exprEnv{names: a.req.ExpressionAttributeNames, values: a.req.ExpressionAttributeValues}
		cur, had := a.t.items[a.k]
		reasons[i] = cancellationReason{Code: "None"}
		if a.req.ConditionExpression != "" {
			ok, err := ex.condition(a.req.ConditionExpression, cur)
			if err != nil {
				return nil, validation("TransactItems[%d]: invalid ConditionExpression: %v", i, err)
			}
			if !ok {
				failed = true
				reasons[i] = cancellationReason{Code: "ConditionalCheckFailed", Message: "The conditional request failed"}
				if a.req.ReturnValuesOnConditionCheckFailure == "ALL_OLD" && had {
					reasons[i].Item = cloneItem(cur)
				}
			}
		}
		switch a.kind {
		case "Put":
			next[i] = cloneItem(a.req.Item)
		case "Update":
			it := cloneItem(cur)
			if !had {
				it = a.t.keyItem(a.k)
			}
			if _, _, err := ex.update(a.req.UpdateExpression, it, a.t); err != nil {
				return nil, validation("TransactItems[%d]: invalid UpdateExpression: %v", i, err)
			}
			next[i] = it
		}
	}
	if failed {
		codes := make([]string, len(reasons))
		for i, r := range reasons {
			codes[i] = r.Code
		}
		return nil, &ddbError{400, "TransactionCanceledException",
			"Transaction cancelled, please refer cancellation reasons for specific reasons [" + strings.Join(codes, ", ") + "]", reasons}
	}
	for i, a := range actions {
		switch a.kind {
		case "Put", "Update":
			a.t.items[a.k] = next[i]
		case "Delete":
			delete(a.t.items, a.k)
		}
	}
	if token != "" {
		d.tokens[token] = string(canon)
	}
	return map[string]any{}, nil
}

// transactActions checks each action's shape and finds its table and item.
func (d *DynamoDB) transactActions(items []transactItem) ([]transactAction, *ddbError) {
	actions := make([]transactAction, len(items))
	seen := map[string]bool{}
	for i, it := range items {
		var a transactAction
		n := 0
		for _, c := range []struct {
			kind string
			req  *ddbRequest
		}{{"ConditionCheck", it.ConditionCheck}, {"Put", it.Put}, {"Update", it.Update}, {"Delete", it.Delete}} {
			if c.req != nil {
				a.kind, a.req = c.kind, c.req
				n++
			}
		}
		if n != 1 {
			return nil, validation("TransactItems[%d] must have exactly one of ConditionCheck, Put, Update, Delete", i)
		}
		r := a.req
		if derr := r.checkValues(); derr != nil {
			return nil, derr
		}
		if r.ReturnValues != "" || r.KeyConditionExpression != "" || r.FilterExpression != "" || r.Limit != nil || r.ExclusiveStartKey != nil ||
			r.ConsistentRead || r.TransactItems != nil || r.ClientRequestToken != nil {
			return nil, validation("TransactItems[%d]: a field %s does not take", i, a.kind)
		}
		switch r.ReturnValuesOnConditionCheckFailure {
		case "", "NONE", "ALL_OLD":
		default:
			return nil, validation("TransactItems[%d]: unknown ReturnValuesOnConditionCheckFailure %q", i, r.ReturnValuesOnConditionCheckFailure)
		}
		switch {
		case a.kind == "Put" && (r.Key != nil || r.UpdateExpression != "" || r.Item == nil),
			a.kind == "Update" && (r.Item != nil || r.UpdateExpression == "" || r.Key == nil),
			a.kind == "Delete" && (r.Item != nil || r.UpdateExpression != "" || r.Key == nil),
			a.kind == "ConditionCheck" && (r.Item != nil || r.UpdateExpression != "" || r.Key == nil || r.ConditionExpression == ""):
			return nil, validation("TransactItems[%d]: a %s with the wrong parameters", i, a.kind)
		}
		a.t = d.tables[r.TableName]
		if a.t == nil {
			return nil, &ddbError{400, "ResourceNotFoundException", "Requested resource not found: " + r.TableName, nil}
		}
		var derr *ddbError
		if a.kind == "Put" {
			a.k, derr = a.t.keyOf(r.Item, false)
		} else {
			a.k, derr = a.t.keyOf(r.Key, true)
		}
		if derr != nil {
			return nil, derr
		}
		id := fmt.Sprintf("%q/%q/%q", r.TableName, a.k.p, a.k.s)
		if seen[id] {
			return nil, validation("Transaction request cannot include multiple operations on one item")
		}
		seen[id] = true
		actions[i] = a
	}
	return actions, nil
}
