package awsstandin

// A DynamoDB stand-in at the HTTP API level (AWS JSON 1.0, X-Amz-Target
// DynamoDB_20120810.<Operation>) for the real aws-sdk-go-v2 client with
// BaseEndpoint pointed at it. It implements only what agentgate uses, with
// the semantics it relies on (DynamoDB developer guide, "Condition and
// filter expressions, operators, and functions",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html,
// and "Update expressions",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.UpdateExpressions.html):
//
//   - tables created with CreateTable (a string partition key) or
//     CreateTableWithSortKey (string partition and sort keys; an item is
//     identified by both), test setup only; key values must be non-empty
//     strings ("the partition key and sort key attributes of a base table
//     continue to require non-empty values",
//     https://aws.amazon.com/about-aws/whats-new/2020/05/amazon-dynamodb-now-supports-empty-values-for-non-key-string-and-binary-attributes-in-dynamodb-tables/);
//   - GetItem, PutItem and DeleteItem (ReturnValues NONE or ALL_OLD; a
//     conditional DeleteItem of a missing item evaluates the condition
//     against no attributes, as for PutItem), UpdateItem
//     (ReturnValues NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW), Scan
//     and Query, the last two with FilterExpression, Limit and
//     ExclusiveStartKey/LastEvaluatedKey paging;
//   - Query (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html):
//     a KeyConditionExpression of partition-key equality, optionally AND
//     one sort-key condition (= < <= > >=, BETWEEN, begins_with), items in
//     ascending sort-key order by UTF-8 bytes (Query.KeyConditionExpressions.html
//     in the developer guide); a FilterExpression naming a key attribute is
//     refused, as DynamoDB does
//     (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.FilterExpression.html);
//   - UpdateItem ReturnValues as the API reference defines them
//     (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_UpdateItem.html):
//     ALL_OLD the whole item before (nothing if there was none), UPDATED_OLD
//     the SET/ADD/REMOVE targets as they were, ALL_NEW the whole item after,
//     UPDATED_NEW the SET/ADD targets as they are after;
//   - attribute types S, N (decimal literals), BOOL, SS (non-empty, no
//     duplicates) and NULL (true); anything else is a ValidationException;
//   - conditions: = <> < <= > >=, AND, OR, NOT, parentheses,
//     attribute_exists, attribute_not_exists, contains (string set or
//     substring), begins_with; a comparison with a missing attribute or
//     across types is false; #names and :values;
//   - updates: SET a = v | a = v + w | a = v - w (numbers), ADD a :n
//     (number; a missing attribute counts as 0) and ADD a :ss (set union),
//     REMOVE a;
//   - a failed condition is a 400 ConditionalCheckFailedException and
//     changes nothing; every operation on one table is atomic (one lock);
//   - TransactWriteItems, all or nothing with CancellationReasons and
//     ClientRequestToken idempotency (dynamodb_transact.go), and a fault
//     hook (SetFault) that fails a request before or after applying it.
//
// A request field or construct the stand-in does not implement (another
// operation, ProjectionExpression, ScanIndexForward, IndexName, B/L/M
// values, size(), IN, …) is refused with a ValidationException, never
// approximated. Not modelled: the 1 MB page and 400 KB item sizes, reserved
// words, unused #names/:values (DynamoDB refuses those; unverified which
// exact message), number normalization (38 digits, trimmed zeros): the
// stand-in stores N strings as sent.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// AttributeValue is one DynamoDB attribute value on the wire.
type AttributeValue struct {
	S    *string  `json:"S,omitempty"`
	N    *string  `json:"N,omitempty"`
	BOOL *bool    `json:"BOOL,omitempty"`
	SS   []string `json:"SS,omitempty"`
	NULL *bool    `json:"NULL,omitempty"`
}

func (v AttributeValue) kind() string {
	switch {
	case v.S != nil:
		return "S"
	case v.N != nil:
		return "N"
	case v.BOOL != nil:
		return "BOOL"
	case v.SS != nil:
		return "SS"
	case v.NULL != nil:
		return "NULL"
	}
	return ""
}

// decimal is the number literal the stand-in accepts for N.
var decimal = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// check refuses a value DynamoDB refuses (or the stand-in cannot hold).
func (v AttributeValue) check() error {
	set := 0
	for _, b := range []bool{v.S != nil, v.N != nil, v.BOOL != nil, v.SS != nil, v.NULL != nil} {
		if b {
			set++
		}
	}
	switch {
	case set != 1:
		return fmt.Errorf("an AttributeValue must have exactly one supported type, has %d", set)
	case v.N != nil && !decimal.MatchString(*v.N):
		return fmt.Errorf("%q is not a number", *v.N)
	case v.NULL != nil && !*v.NULL:
		return errors.New("NULL must be true")
	case v.SS != nil:
		if len(v.SS) == 0 {
			return errors.New("a string set may not be empty")
		}
		seen := map[string]bool{}
		for _, s := range v.SS {
			if seen[s] {
				return errors.New("a string set contains duplicates")
			}
			seen[s] = true
		}
	}
	return nil
}

// Item is one stored item.
type Item map[string]AttributeValue

// DynamoDB is a running DynamoDB stand-in.
type DynamoDB struct {
	// URL is the endpoint for the SDK's BaseEndpoint.
	URL string

	srv    *httptest.Server
	mu     sync.Mutex
	tables map[string]*ddbTable
	counts map[string]int
	// tokens and fault: see dynamodb_transact.go.
	tokens map[string]string
	fault  func(op string) DynamoDBFault
}

// itemKey is an item's primary key: partition and (if the table has one)
// sort key values.
type itemKey struct{ p, s string }

func (k itemKey) less(o itemKey) bool { return k.p < o.p || (k.p == o.p && k.s < o.s) }

type ddbTable struct {
	key     string // partition key attribute
	sortKey string // sort key attribute, "" if none
	items   map[itemKey]Item
}

// StartDynamoDB starts an empty stand-in on loopback.
func StartDynamoDB() *DynamoDB {
	d := &DynamoDB{tables: map[string]*ddbTable{}, counts: map[string]int{}, tokens: map[string]string{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = d.srv.URL
	return d
}

// Close stops the server.
func (d *DynamoDB) Close() { d.srv.CloseClientConnections(); d.srv.Close() }

// CreateTable adds a table whose partition key is the string attribute key.
func (d *DynamoDB) CreateTable(name, key string) { d.CreateTableWithSortKey(name, key, "") }

// CreateTableWithSortKey adds a table keyed by the string attributes
// partition and sort (no sort key if sort is "").
func (d *DynamoDB) CreateTableWithSortKey(name, partition, sort string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tables[name] = &ddbTable{key: partition, sortKey: sort, items: map[itemKey]Item{}}
}

// Items returns a copy of a table's items sorted by key (for assertions).
func (d *DynamoDB) Items(table string) []Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tables[table]
	if t == nil {
		return nil
	}
	var out []Item
	for _, k := range t.sortedKeys() {
		out = append(out, cloneItem(t.items[k]))
	}
	return out
}

// Item returns a copy of the item with these key values (sort "" for a
// table without a sort key), or nil if there is none.
func (d *DynamoDB) Item(table, partition, sort string) Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tables[table]
	if t == nil {
		return nil
	}
	it, ok := t.items[itemKey{partition, sort}]
	if !ok {
		return nil
	}
	return cloneItem(it)
}

// Count is how many requests of an operation were served.
func (d *DynamoDB) Count(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.counts[op]
}

func cloneItem(it Item) Item {
	out := Item{}
	for k, v := range it {
		if v.SS != nil {
			v.SS = append([]string(nil), v.SS...)
		}
		out[k] = v
	}
	return out
}

func (t *ddbTable) sortedKeys() []itemKey {
	keys := make([]itemKey, 0, len(t.items))
	for k := range t.items {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

func (t *ddbTable) isKey(name string) bool {
	return name == t.key || (t.sortKey != "" && name == t.sortKey)
}

// keyItem is the key attributes of k as an item.
func (t *ddbTable) keyItem(k itemKey) Item {
	p, s := k.p, k.s
	it := Item{t.key: {S: &p}}
	if t.sortKey != "" {
		it[t.sortKey] = AttributeValue{S: &s}
	}
	return it
}

// keyOf reads the primary key of it; exact means it must hold nothing
// else (a Key or ExclusiveStartKey, not a whole item).
func (t *ddbTable) keyOf(it Item, exact bool) (itemKey, *ddbError) {
	var k itemKey
	for _, a := range []struct {
		name string
		dst  *string
	}{{t.key, &k.p}, {t.sortKey, &k.s}} {
		if a.name == "" {
			continue
		}
		v, ok := it[a.name]
		if !ok || v.S == nil {
			return k, validation("the key attribute %s must be a string", a.name)
		}
		if *v.S == "" {
			return k, validation("the key attribute %s must not be empty", a.name)
		}
		*a.dst = *v.S
	}
	n := 1
	if t.sortKey != "" {
		n = 2
	}
	if exact && len(it) != n {
		return k, validation("the provided key element does not match the schema")
	}
	return k, nil
}

type ddbError struct {
	status int
	code   string
	msg    string
	// reasons are a TransactionCanceledException's CancellationReasons.
	reasons []cancellationReason
}

func (e *ddbError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) *ddbError {
	return &ddbError{400, "ValidationException", fmt.Sprintf(format, args...), nil}
}

var errConditionFailed = &ddbError{400, "ConditionalCheckFailedException", "The conditional request failed", nil}

// ddbRequest is every request field the stand-in implements; any other
// field is refused (decoded with DisallowUnknownFields).
type ddbRequest struct {
	TableName                 string                    `json:"TableName"`
	Key                       Item                      `json:"Key"`
	Item                      Item                      `json:"Item"`
	ConditionExpression       string                    `json:"ConditionExpression"`
	UpdateExpression          string                    `json:"UpdateExpression"`
	KeyConditionExpression    string                    `json:"KeyConditionExpression"`
	FilterExpression          string                    `json:"FilterExpression"`
	ExpressionAttributeNames  map[string]string         `json:"ExpressionAttributeNames"`
	ExpressionAttributeValues map[string]AttributeValue `json:"ExpressionAttributeValues"`
	ReturnValues              string                    `json:"ReturnValues"`
	// ReturnValuesOnConditionCheckFailure is honoured in TransactWriteItems
	// items only (dynamodb_transact.go).
	ReturnValuesOnConditionCheckFailure string         `json:"ReturnValuesOnConditionCheckFailure"`
	TransactItems                       []transactItem `json:"TransactItems"`
	ClientRequestToken                  *string        `json:"ClientRequestToken"`
	ConsistentRead                      bool           `json:"ConsistentRead"`
	Limit                               *int           `json:"Limit"`
	ExclusiveStartKey                   Item           `json:"ExclusiveStartKey"`
}

// decodeRequest reads one request body; a field or attribute type the
// stand-in does not implement is a ValidationException, malformed JSON a
// SerializationException.
func decodeRequest(body []byte) (*ddbRequest, *ddbError) {
	var req ddbRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return nil, validation("not implemented by the stand-in: %v", err)
		}
		return nil, &ddbError{400, "SerializationException", err.Error(), nil}
	}
	if dec.More() {
		return nil, &ddbError{400, "SerializationException", "trailing data after the request", nil}
	}
	if err := req.checkValues(); err != nil {
		return nil, err
	}
	if req.Limit != nil && *req.Limit < 1 {
		return nil, validation("Limit must be at least 1")
	}
	return &req, nil
}

// checkValues refuses an attribute value the stand-in does not hold.
func (req *ddbRequest) checkValues() *ddbError {
	for _, it := range []Item{req.Key, req.Item, req.ExclusiveStartKey, req.ExpressionAttributeValues} {
		for n, v := range it {
			if err := v.check(); err != nil {
				return validation("%s: %v", n, err)
			}
		}
	}
	return nil
}

func (d *DynamoDB) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var out any
	var derr *ddbError
	switch {
	case r.Method != http.MethodPost || !ok:
		derr = &ddbError{400, "UnknownOperationException", "not a DynamoDB request", nil}
	case err != nil:
		derr = &ddbError{400, "SerializationException", err.Error(), nil}
	default:
		var req *ddbRequest
		if req, derr = decodeRequest(body); derr == nil {
			d.mu.Lock()
			d.counts[op]++
			f := DynamoDBFault{}
			if d.fault != nil {
				f = d.fault(op)
			}
			if f.Code != "" && !f.AfterApply {
				derr = f.err()
			} else if op == "TransactWriteItems" {
				out, derr = d.transactWrite(req)
			} else {
				out, derr = d.do(op, req)
			}
			if f.Code != "" && f.AfterApply && derr == nil {
				out, derr = nil, f.err() // applied, but the answer is lost
			}
			d.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if derr != nil {
		w.WriteHeader(derr.status)
		body := map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#" + derr.code, "message": derr.msg}
		if derr.reasons != nil {
			body["CancellationReasons"] = derr.reasons
		}
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// do runs one operation with d.mu held.
func (d *DynamoDB) do(op string, req *ddbRequest) (any, *ddbError) {
	t := d.tables[req.TableName]
	if t == nil {
		return nil, &ddbError{400, "ResourceNotFoundException", "Requested resource not found: " + req.TableName, nil}
	}
	if req.TransactItems != nil || req.ClientRequestToken != nil || req.ReturnValuesOnConditionCheckFailure != "" {
		return nil, validation("not implemented by the stand-in: TransactItems, ClientRequestToken or ReturnValuesOnConditionCheckFailure in %s", op)
	}
	ex := &exprEnv{names: req.ExpressionAttributeNames, values: req.ExpressionAttributeValues}
	switch req.ReturnValues {
	case "", "NONE":
	case "ALL_OLD":
		if op != "PutItem" && op != "UpdateItem" && op != "DeleteItem" {
			return nil, validation("ReturnValues %s is not valid for %s", req.ReturnValues, op)
		}
	case "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW":
		if op != "UpdateItem" {
			return nil, validation("ReturnValues %s is not valid for %s", req.ReturnValues, op)
		}
	default:
		return nil, validation("unknown ReturnValues %q", req.ReturnValues)
	}
	checkCond := func(cur Item) *ddbError {
		if req.ConditionExpression == "" {
			return nil
		}
		ok, err := ex.condition(req.ConditionExpression, cur)
		if err != nil {
			return validation("invalid ConditionExpression: %v", err)
		}
		if !ok {
			return errConditionFailed
		}
		return nil
	}
	switch op {
	case "GetItem":
		k, err := t.keyOf(req.Key, true)
		if err != nil {
			return nil, err
		}
		if it, ok := t.items[k]; ok {
			return map[string]any{"Item": it}, nil
		}
		return map[string]any{}, nil
	case "PutItem":
		k, err := t.keyOf(req.Item, false)
		if err != nil {
			return nil, err
		}
		old, had := t.items[k]
		if err := checkCond(old); err != nil {
			return nil, err
		}
		t.items[k] = cloneItem(req.Item)
		if req.ReturnValues == "ALL_OLD" && had {
			return map[string]any{"Attributes": old}, nil
		}
		return map[string]any{}, nil
	case "DeleteItem":
		k, err := t.keyOf(req.Key, true)
		if err != nil {
			return nil, err
		}
		old, had := t.items[k]
		if err := checkCond(old); err != nil {
			return nil, err
		}
		delete(t.items, k)
		if req.ReturnValues == "ALL_OLD" && had {
			return map[string]any{"Attributes": old}, nil
		}
		return map[string]any{}, nil
	case "UpdateItem":
		k, err := t.keyOf(req.Key, true)
		if err != nil {
			return nil, err
		}
		cur, had := t.items[k]
		if err := checkCond(cur); err != nil {
			return nil, err
		}
		next := cloneItem(cur)
		if !had {
			next = t.keyItem(k)
		}
		set, removed, uerr := ex.update(req.UpdateExpression, next, t)
		if uerr != nil {
			return nil, validation("invalid UpdateExpression: %v", uerr)
		}
		t.items[k] = next
		var attrs Item
		switch req.ReturnValues {
		case "ALL_OLD":
			if had {
				attrs = cur
			}
		case "ALL_NEW":
			attrs = next
		case "UPDATED_OLD":
			attrs = pick(cur, append(set, removed...))
		case "UPDATED_NEW":
			attrs = pick(next, set)
		}
		if len(attrs) > 0 {
			return map[string]any{"Attributes": attrs}, nil
		}
		return map[string]any{}, nil
	case "Scan":
		if req.KeyConditionExpression != "" {
			return nil, validation("KeyConditionExpression is not a Scan parameter")
		}
		var start *itemKey
		if req.ExclusiveStartKey != nil {
			s, err := t.keyOf(req.ExclusiveStartKey, true)
			if err != nil {
				return nil, err
			}
			start = &s
		}
		var keys []itemKey
		for _, k := range t.sortedKeys() {
			if start == nil || start.less(k) {
				keys = append(keys, k)
			}
		}
		return t.page(keys, req.Limit, ex, req.FilterExpression)
	case "Query":
		kc, err := ex.keyCondition(req.KeyConditionExpression, t)
		if err != nil {
			return nil, validation("invalid KeyConditionExpression: %v", err)
		}
		if req.FilterExpression != "" {
			names, err := ex.attributeNames(req.FilterExpression)
			if err != nil {
				return nil, validation("invalid FilterExpression: %v", err)
			}
			for _, n := range names {
				if t.isKey(n) {
					return nil, validation("a FilterExpression can only contain non-primary key attributes: %s", n)
				}
			}
		}
		var start *itemKey
		if req.ExclusiveStartKey != nil {
			s, derr := t.keyOf(req.ExclusiveStartKey, true)
			if derr != nil {
				return nil, derr
			}
			if s.p != kc.partition {
				return nil, validation("the provided starting key is invalid: not in the queried partition")
			}
			start = &s
		}
		var keys []itemKey
		for _, k := range t.sortedKeys() {
			if k.p == kc.partition && kc.sortMatches(k.s) && (start == nil || start.less(k)) {
				keys = append(keys, k)
			}
		}
		return t.page(keys, req.Limit, ex, req.FilterExpression)
	}
	return nil, &ddbError{400, "UnknownOperationException", op + " is not implemented by the stand-in", nil}
}

// pick is the named attributes of it that it has.
func pick(it Item, names []string) Item {
	out := Item{}
	for _, n := range names {
		if v, ok := it[n]; ok {
			out[n] = v
		}
	}
	return out
}

// page evaluates keys in order for Scan and Query: at most limit items
// are read (before the filter, as DynamoDB counts Limit and ScannedCount),
// and LastEvaluatedKey is the last one read when the limit stopped the
// read before the end (DynamoDB may also return one at the very end:
// "If LastEvaluatedKey is not empty, it does not necessarily mean that
// there is more data",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.Pagination.html).
func (t *ddbTable) page(keys []itemKey, limit *int, ex *exprEnv, filter string) (any, *ddbError) {
	items := []Item{}
	scanned := 0
	for _, k := range keys {
		if limit != nil && scanned == *limit {
			break
		}
		scanned++
		it := t.items[k]
		if filter != "" {
			ok, err := ex.condition(filter, it)
			if err != nil {
				return nil, validation("invalid FilterExpression: %v", err)
			}
			if !ok {
				continue
			}
		}
		items = append(items, it)
	}
	out := map[string]any{"Items": items, "Count": len(items), "ScannedCount": scanned}
	if scanned < len(keys) {
		out["LastEvaluatedKey"] = t.keyItem(keys[scanned-1])
	}
	return out, nil
}

// keyCond is a parsed KeyConditionExpression.
type keyCond struct {
	partition string
	op        string // "" (none), = < <= > >=, BETWEEN, begins_with
	a, b      string
}

func (k keyCond) sortMatches(s string) bool {
	switch k.op {
	case "":
		return true
	case "=":
		return s == k.a
	case "<":
		return s < k.a
	case "<=":
		return s <= k.a
	case ">":
		return s > k.a
	case ">=":
		return s >= k.a
	case "BETWEEN":
		return k.a <= s && s <= k.b
	}
	return strings.HasPrefix(s, k.a) // begins_with
}

// keyCondition parses "pk = :v" optionally AND one sort-key condition
// (either order), per "Key condition expressions for the Query operation",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Query.KeyConditionExpressions.html.
func (e *exprEnv) keyCondition(s string, t *ddbTable) (keyCond, error) {
	var kc keyCond
	if s == "" {
		return kc, errors.New("a Query needs a KeyConditionExpression")
	}
	toks, err := lex(s)
	if err != nil {
		return kc, err
	}
	p := &parser{env: e, toks: toks}
	value := func() (string, error) {
		tok := p.next()
		if !strings.HasPrefix(tok, ":") {
			return "", fmt.Errorf("want a :value, got %q", tok)
		}
		v, ok := e.values[tok]
		if !ok {
			return "", fmt.Errorf("undefined value %s", tok)
		}
		if v.S == nil {
			return "", fmt.Errorf("%s must be a string like the key attributes", tok)
		}
		return *v.S, nil
	}
	type clause struct{ name, op, a, b string }
	parse := func() (c clause, err error) {
		tok := p.next()
		if tok == "begins_with" {
			c.op = tok
			if err = p.expect("("); err != nil {
				return
			}
			if c.name, err = p.path(p.next()); err != nil {
				return
			}
			if err = p.expect(","); err != nil {
				return
			}
			if c.a, err = value(); err != nil {
				return
			}
			err = p.expect(")")
			return
		}
		if c.name, err = p.path(tok); err != nil {
			return
		}
		c.op = p.next()
		switch {
		case c.op == "=" || c.op == "<" || c.op == "<=" || c.op == ">" || c.op == ">=":
			c.a, err = value()
		case strings.EqualFold(c.op, "BETWEEN"):
			c.op = "BETWEEN"
			if c.a, err = value(); err != nil {
				return
			}
			if !strings.EqualFold(p.next(), "AND") {
				return c, errors.New("BETWEEN needs AND")
			}
			if c.b, err = value(); err == nil && c.a > c.b {
				err = errors.New("BETWEEN bounds are in the wrong order")
			}
		default:
			err = fmt.Errorf("unsupported key condition operator %q", c.op)
		}
		return
	}
	var cs []clause
	for {
		c, err := parse()
		if err != nil {
			return kc, err
		}
		cs = append(cs, c)
		if p.pos == len(toks) {
			break
		}
		if len(cs) == 2 || !strings.EqualFold(p.next(), "AND") {
			return kc, errors.New("at most two conditions joined by AND")
		}
	}
	seenPartition := false
	for _, c := range cs {
		switch {
		case c.name == t.key && c.op == "=" && !seenPartition:
			seenPartition = true
			kc.partition = c.a
		case c.name == t.sortKey && t.sortKey != "" && kc.op == "":
			kc.op, kc.a, kc.b = c.op, c.a, c.b
		default:
			return kc, fmt.Errorf("condition on %s (%s) is not partition-key equality or one sort-key condition", c.name, c.op)
		}
	}
	if !seenPartition {
		return kc, fmt.Errorf("no equality condition on the partition key %s", t.key)
	}
	return kc, nil
}

// attributeNames lists the attribute names a condition expression
// refers to (resolving #names); it does not check the grammar.
func (e *exprEnv) attributeNames(s string) ([]string, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	var out []string
	for i, tok := range toks {
		switch {
		case strings.HasPrefix(tok, "#"):
			n, ok := e.names[tok]
			if !ok {
				return nil, fmt.Errorf("undefined name %s", tok)
			}
			out = append(out, n)
		case strings.HasPrefix(tok, ":") || !unicode.IsLetter(rune(tok[0])):
		case i+1 < len(toks) && toks[i+1] == "(":
			// a function
		case strings.EqualFold(tok, "AND") || strings.EqualFold(tok, "OR") || strings.EqualFold(tok, "NOT"):
		default:
			out = append(out, tok)
		}
	}
	return out, nil
}

// exprEnv resolves #names and :values of one request.
type exprEnv struct {
	names  map[string]string
	values map[string]AttributeValue
}

// lexer splits an expression into tokens: names, #names, :values,
// operators and punctuation.
func lex(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case strings.ContainsRune("(),+-=", c):
			out = append(out, string(c))
			i++
		case c == '<' || c == '>':
			if i+1 < len(s) && (s[i+1] == '=' || (c == '<' && s[i+1] == '>')) {
				out = append(out, s[i:i+2])
				i += 2
			} else {
				out = append(out, string(c))
				i++
			}
		case c == '#' || c == ':' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c):
			j := i + 1
			for j < len(s) && (s[j] == '_' || unicode.IsLetter(rune(s[j])) || unicode.IsDigit(rune(s[j]))) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q", c)
		}
	}
	return out, nil
}

type parser struct {
	env  *exprEnv
	toks []string
	pos  int
	item Item
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string { t := p.peek(); p.pos++; return t }

func (p *parser) expect(t string) error {
	if got := p.next(); got != t {
		return fmt.Errorf("want %q, got %q", t, got)
	}
	return nil
}

// path resolves an attribute name token.
func (p *parser) path(tok string) (string, error) {
	if strings.HasPrefix(tok, "#") {
		n, ok := p.env.names[tok]
		if !ok {
			return "", fmt.Errorf("undefined name %s", tok)
		}
		return n, nil
	}
	if tok == "" || strings.HasPrefix(tok, ":") || !unicode.IsLetter(rune(tok[0])) {
		return "", fmt.Errorf("want an attribute name, got %q", tok)
	}
	return tok, nil
}

// operand resolves a :value or an attribute's current value.
func (p *parser) operand(tok string) (AttributeValue, bool, error) {
	if strings.HasPrefix(tok, ":") {
		v, ok := p.env.values[tok]
		if !ok {
			return v, false, fmt.Errorf("undefined value %s", tok)
		}
		return v, true, nil
	}
	n, err := p.path(tok)
	if err != nil {
		return AttributeValue{}, false, err
	}
	v, ok := p.item[n]
	return v, ok, nil
}

func (e *exprEnv) condition(s string, item Item) (bool, error) {
	toks, err := lex(s)
	if err != nil {
		return false, err
	}
	p := &parser{env: e, toks: toks, item: item}
	v, err := p.or()
	if err != nil {
		return false, err
	}
	if p.pos != len(toks) {
		return false, fmt.Errorf("unexpected %q", p.peek())
	}
	return v, nil
}

func (p *parser) or() (bool, error) {
	v, err := p.and()
	for err == nil && strings.EqualFold(p.peek(), "OR") {
		p.next()
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *parser) and() (bool, error) {
	v, err := p.not()
	for err == nil && strings.EqualFold(p.peek(), "AND") {
		p.next()
		var w bool
		w, err = p.not()
		v = v && w
	}
	return v, err
}

func (p *parser) not() (bool, error) {
	if strings.EqualFold(p.peek(), "NOT") {
		p.next()
		v, err := p.not()
		return !v, err
	}
	return p.primary()
}

func (p *parser) primary() (bool, error) {
	tok := p.next()
	if tok == "(" {
		v, err := p.or()
		if err != nil {
			return false, err
		}
		return v, p.expect(")")
	}
	switch tok {
	case "attribute_exists", "attribute_not_exists":
		if err := p.expect("("); err != nil {
			return false, err
		}
		n, err := p.path(p.next())
		if err != nil {
			return false, err
		}
		_, ok := p.item[n]
		return ok == (tok == "attribute_exists"), p.expect(")")
	case "contains", "begins_with":
		if err := p.expect("("); err != nil {
			return false, err
		}
		a, aok, err := p.operand(p.next())
		if err != nil {
			return false, err
		}
		if err := p.expect(","); err != nil {
			return false, err
		}
		b, bok, err := p.operand(p.next())
		if err != nil {
			return false, err
		}
		if err := p.expect(")"); err != nil {
			return false, err
		}
		if !aok || !bok || b.S == nil {
			return false, nil
		}
		if tok == "begins_with" {
			return a.S != nil && strings.HasPrefix(*a.S, *b.S), nil
		}
		switch {
		case a.SS != nil:
			for _, s := range a.SS {
				if s == *b.S {
					return true, nil
				}
			}
			return false, nil
		case a.S != nil:
			return strings.Contains(*a.S, *b.S), nil
		}
		return false, nil
	}
	a, aok, err := p.operand(tok)
	if err != nil {
		return false, err
	}
	op := p.next()
	switch op {
	case "=", "<>", "<", "<=", ">", ">=":
	default:
		return false, fmt.Errorf("want a comparator, got %q", op)
	}
	b, bok, err := p.operand(p.next())
	if err != nil {
		return false, err
	}
	if !aok || !bok || a.kind() != b.kind() {
		return op == "<>" && aok != bok, nil
	}
	if a.BOOL != nil || a.NULL != nil || a.SS != nil {
		if op != "=" && op != "<>" {
			return false, fmt.Errorf("%s is not defined on %s", op, a.kind())
		}
		return equalAV(a, b) == (op == "="), nil
	}
	c, comparable := compareAV(a, b)
	if !comparable {
		return false, fmt.Errorf("bad number in a comparison")
	}
	switch op {
	case "=":
		return c == 0, nil
	case "<>":
		return c != 0, nil
	case "<":
		return c < 0, nil
	case "<=":
		return c <= 0, nil
	case ">":
		return c > 0, nil
	}
	return c >= 0, nil
}

// compareAV orders two values of one scalar type (N numerically, S by bytes).
func compareAV(a, b AttributeValue) (int, bool) {
	switch {
	case a.N != nil:
		x, okx := new(big.Rat).SetString(*a.N)
		y, oky := new(big.Rat).SetString(*b.N)
		if !okx || !oky {
			return 0, false
		}
		return x.Cmp(y), true
	case a.S != nil:
		return strings.Compare(*a.S, *b.S), true
	}
	return 0, false
}

// equalAV compares two values of one non-ordered type (BOOL, NULL, SS).
func equalAV(a, b AttributeValue) bool {
	switch {
	case a.BOOL != nil:
		return *a.BOOL == *b.BOOL
	case a.NULL != nil:
		return true
	}
	x := append([]string(nil), a.SS...)
	y := append([]string(nil), b.SS...)
	sort.Strings(x)
	sort.Strings(y)
	return strings.Join(x, "\x00") == strings.Join(y, "\x00")
}

// update applies an update expression to item (never to a key attribute)
// and names the attributes it SET or ADDed and those it REMOVEd.
func (e *exprEnv) update(s string, item Item, t *ddbTable) (set, removed []string, err error) {
	toks, err := lex(s)
	if err != nil {
		return nil, nil, err
	}
	if len(toks) == 0 {
		return nil, nil, errors.New("empty update expression")
	}
	p := &parser{env: e, toks: toks, item: cloneItem(item)}
	changes := Item{}
	seen := map[string]bool{}
	var removes []string
	for p.pos < len(toks) {
		clause := strings.ToUpper(p.next())
		for {
			n, err := p.path(p.next())
			if err != nil {
				return nil, nil, err
			}
			if t.isKey(n) {
				return nil, nil, fmt.Errorf("cannot update the key attribute %s", n)
			}
			if seen[n] {
				return nil, nil, fmt.Errorf("two clauses update %s", n)
			}
			seen[n] = true
			switch clause {
			case "SET":
				if err := p.expect("="); err != nil {
					return nil, nil, err
				}
				v, ok, err := p.operand(p.next())
				if err != nil {
					return nil, nil, err
				}
				if !ok {
					return nil, nil, fmt.Errorf("SET %s: operand attribute is missing", n)
				}
				if op := p.peek(); op == "+" || op == "-" {
					p.next()
					w, ok2, err := p.operand(p.next())
					if err != nil {
						return nil, nil, err
					}
					if !ok2 || v.N == nil || w.N == nil {
						return nil, nil, fmt.Errorf("SET %s: %s needs two numbers", n, op)
					}
					x, _ := new(big.Rat).SetString(*v.N)
					y, _ := new(big.Rat).SetString(*w.N)
					if x == nil || y == nil {
						return nil, nil, fmt.Errorf("SET %s: bad number", n)
					}
					if op == "+" {
						x.Add(x, y)
					} else {
						x.Sub(x, y)
					}
					str := formatNumber(x)
					v = AttributeValue{N: &str}
				}
				changes[n] = v
			case "ADD":
				v, _, err := p.operand(p.next())
				if err != nil {
					return nil, nil, err
				}
				cur, has := p.item[n]
				switch {
				case v.N != nil:
					if has && cur.N == nil {
						return nil, nil, fmt.Errorf("ADD %s: not a number", n)
					}
					x, _ := new(big.Rat).SetString(*v.N)
					y := new(big.Rat)
					if has {
						y, _ = new(big.Rat).SetString(*cur.N)
					}
					if x == nil || y == nil {
						return nil, nil, fmt.Errorf("ADD %s: bad number", n)
					}
					str := formatNumber(x.Add(x, y))
					changes[n] = AttributeValue{N: &str}
				case v.SS != nil:
					if has && cur.SS == nil {
						return nil, nil, fmt.Errorf("ADD %s: not a string set", n)
					}
					union := map[string]bool{}
					for _, s := range append(append([]string(nil), cur.SS...), v.SS...) {
						union[s] = true
					}
					out := make([]string, 0, len(union))
					for s := range union {
						out = append(out, s)
					}
					sort.Strings(out)
					changes[n] = AttributeValue{SS: out}
				default:
					return nil, nil, fmt.Errorf("ADD %s: only numbers and string sets", n)
				}
			case "REMOVE":
				removes = append(removes, n)
			default:
				return nil, nil, fmt.Errorf("unknown clause %q", clause)
			}
			if p.peek() != "," {
				break
			}
			p.next()
		}
	}
	for n, v := range changes {
		item[n] = v
		set = append(set, n)
	}
	for _, n := range removes {
		delete(item, n)
	}
	sort.Strings(set)
	return set, removes, nil
}

// formatNumber writes a number as a decimal literal (never a fraction):
// operands are decimal, so the exact result has a finite expansion.
func formatNumber(x *big.Rat) string {
	if x.IsInt() {
		return x.Num().String()
	}
	s := strings.TrimRight(x.FloatString(40), "0")
	return strings.TrimSuffix(s, ".")
}
