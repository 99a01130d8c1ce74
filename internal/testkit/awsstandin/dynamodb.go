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
//   - tables with a string partition key only, created with CreateTable (test setup);
//   - GetItem, PutItem, UpdateItem (ReturnValues ALL_NEW or NONE) and Scan
//     (FilterExpression, Limit, ExclusiveStartKey/LastEvaluatedKey);
//   - attribute types S, N, BOOL, SS and NULL (anything else is a ValidationException);
//   - conditions: = <> < <= > >=, AND, OR, NOT, parentheses,
//     attribute_exists, attribute_not_exists, contains (string set or
//     substring), begins_with; a comparison with a missing attribute or
//     across types is false; #names and :values;
//   - updates: SET a = v | a = v + w | a = v - w (numbers), ADD a :n
//     (number; a missing attribute counts as 0) and ADD a :ss (set union),
//     REMOVE a;
//   - a failed condition is a 400 ConditionalCheckFailedException and
//     changes nothing; every operation on one table is atomic (one lock).

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
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
}

type ddbTable struct {
	key   string
	items map[string]Item
}

// StartDynamoDB starts an empty stand-in on loopback.
func StartDynamoDB() *DynamoDB {
	d := &DynamoDB{tables: map[string]*ddbTable{}, counts: map[string]int{}}
	d.srv = httptest.NewServer(http.HandlerFunc(d.serve))
	d.URL = d.srv.URL
	return d
}

// Close stops the server.
func (d *DynamoDB) Close() { d.srv.CloseClientConnections(); d.srv.Close() }

// CreateTable adds a table whose partition key is the string attribute key.
func (d *DynamoDB) CreateTable(name, key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tables[name] = &ddbTable{key: key, items: map[string]Item{}}
}

// Items returns a copy of a table's items sorted by key (for assertions).
func (d *DynamoDB) Items(table string) []Item {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.tables[table]
	if t == nil {
		return nil
	}
	keys := make([]string, 0, len(t.items))
	for k := range t.items {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Item, 0, len(keys))
	for _, k := range keys {
		out = append(out, cloneItem(t.items[k]))
	}
	return out
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

type ddbError struct {
	status int
	code   string
	msg    string
}

func (e *ddbError) Error() string { return e.code + ": " + e.msg }

func validation(format string, args ...any) *ddbError {
	return &ddbError{400, "ValidationException", fmt.Sprintf(format, args...)}
}

var errConditionFailed = &ddbError{400, "ConditionalCheckFailedException", "The conditional request failed"}

type ddbRequest struct {
	TableName                 string                    `json:"TableName"`
	Key                       Item                      `json:"Key"`
	Item                      Item                      `json:"Item"`
	ConditionExpression       string                    `json:"ConditionExpression"`
	UpdateExpression          string                    `json:"UpdateExpression"`
	FilterExpression          string                    `json:"FilterExpression"`
	ExpressionAttributeNames  map[string]string         `json:"ExpressionAttributeNames"`
	ExpressionAttributeValues map[string]AttributeValue `json:"ExpressionAttributeValues"`
	ReturnValues              string                    `json:"ReturnValues"`
	ConsistentRead            bool                      `json:"ConsistentRead"`
	Limit                     int                       `json:"Limit"`
	ExclusiveStartKey         Item                      `json:"ExclusiveStartKey"`
}

func (d *DynamoDB) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req ddbRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	var out any
	var derr *ddbError
	switch {
	case r.Method != http.MethodPost || !ok:
		derr = &ddbError{400, "UnknownOperationException", "not a DynamoDB request"}
	case err != nil:
		derr = &ddbError{400, "SerializationException", err.Error()}
	default:
		d.mu.Lock()
		d.counts[op]++
		out, derr = d.do(op, &req)
		d.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if derr != nil {
		w.WriteHeader(derr.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + derr.code, "message": derr.msg})
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

// do runs one operation with d.mu held.
func (d *DynamoDB) do(op string, req *ddbRequest) (any, *ddbError) {
	t := d.tables[req.TableName]
	if t == nil {
		return nil, &ddbError{400, "ResourceNotFoundException", "Requested resource not found: " + req.TableName}
	}
	ex := &exprEnv{names: req.ExpressionAttributeNames, values: req.ExpressionAttributeValues}
	keyOf := func(it Item) (string, *ddbError) {
		v, ok := it[t.key]
		if !ok || v.S == nil {
			return "", validation("the key attribute %s must be a string", t.key)
		}
		if op != "PutItem" && len(it) != 1 {
			return "", validation("the provided key element does not match the schema")
		}
		return *v.S, nil
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
		k, err := keyOf(req.Key)
		if err != nil {
			return nil, err
		}
		if it, ok := t.items[k]; ok {
			return map[string]any{"Item": it}, nil
		}
		return map[string]any{}, nil
	case "PutItem":
		k, err := keyOf(req.Item)
		if err != nil {
			return nil, err
		}
		for n, v := range req.Item {
			if v.kind() == "" {
				return nil, validation("attribute %s has an unsupported type", n)
			}
		}
		if err := checkCond(t.items[k]); err != nil {
			return nil, err
		}
		t.items[k] = cloneItem(req.Item)
		return map[string]any{}, nil
	case "UpdateItem":
		k, err := keyOf(req.Key)
		if err != nil {
			return nil, err
		}
		cur := t.items[k]
		if err := checkCond(cur); err != nil {
			return nil, err
		}
		next := cloneItem(cur)
		if len(next) == 0 {
			next = Item{t.key: req.Key[t.key]}
		}
		if err := ex.update(req.UpdateExpression, next, t.key); err != nil {
			return nil, validation("invalid UpdateExpression: %v", err)
		}
		t.items[k] = next
		if req.ReturnValues == "ALL_NEW" {
			return map[string]any{"Attributes": next}, nil
		}
		return map[string]any{}, nil
	case "Scan":
		keys := make([]string, 0, len(t.items))
		for k := range t.items {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		start := ""
		if req.ExclusiveStartKey != nil {
			s, err := keyOf(req.ExclusiveStartKey)
			if err != nil {
				return nil, err
			}
			start = s
		}
		var items []Item
		scanned := 0
		last := ""
		for _, k := range keys {
			if start != "" && k <= start {
				continue
			}
			if req.Limit > 0 && scanned == req.Limit {
				break
			}
			scanned++
			last = k
			it := t.items[k]
			if req.FilterExpression != "" {
				ok, err := ex.condition(req.FilterExpression, it)
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
		if items == nil {
			out["Items"] = []Item{}
		}
		if req.Limit > 0 && scanned == req.Limit && last != keys[len(keys)-1] {
			s := last
			out["LastEvaluatedKey"] = Item{t.key: {S: &s}}
		}
		return out, nil
	}
	return nil, &ddbError{400, "UnknownOperationException", op + " is not implemented by the stand-in"}
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

// update applies an update expression to item (never to its key).
func (e *exprEnv) update(s string, item Item, key string) error {
	toks, err := lex(s)
	if err != nil {
		return err
	}
	p := &parser{env: e, toks: toks, item: cloneItem(item)}
	changes := Item{}
	var removes []string
	for p.pos < len(toks) {
		clause := strings.ToUpper(p.next())
		for {
			n, err := p.path(p.next())
			if err != nil {
				return err
			}
			if n == key {
				return fmt.Errorf("cannot update the key attribute %s", n)
			}
			switch clause {
			case "SET":
				if err := p.expect("="); err != nil {
					return err
				}
				v, ok, err := p.operand(p.next())
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("SET %s: operand attribute is missing", n)
				}
				if op := p.peek(); op == "+" || op == "-" {
					p.next()
					w, ok2, err := p.operand(p.next())
					if err != nil {
						return err
					}
					if !ok2 || v.N == nil || w.N == nil {
						return fmt.Errorf("SET %s: %s needs two numbers", n, op)
					}
					x, _ := new(big.Rat).SetString(*v.N)
					y, _ := new(big.Rat).SetString(*w.N)
					if x == nil || y == nil {
						return fmt.Errorf("SET %s: bad number", n)
					}
					if op == "+" {
						x.Add(x, y)
					} else {
						x.Sub(x, y)
					}
					str := x.RatString()
					v = AttributeValue{N: &str}
				}
				changes[n] = v
			case "ADD":
				v, _, err := p.operand(p.next())
				if err != nil {
					return err
				}
				cur, has := p.item[n]
				switch {
				case v.N != nil:
					if has && cur.N == nil {
						return fmt.Errorf("ADD %s: not a number", n)
					}
					x, _ := new(big.Rat).SetString(*v.N)
					y := new(big.Rat)
					if has {
						y, _ = new(big.Rat).SetString(*cur.N)
					}
					if x == nil || y == nil {
						return fmt.Errorf("ADD %s: bad number", n)
					}
					str := x.Add(x, y).RatString()
					changes[n] = AttributeValue{N: &str}
				case v.SS != nil:
					if has && cur.SS == nil {
						return fmt.Errorf("ADD %s: not a string set", n)
					}
					set := map[string]bool{}
					for _, s := range append(append([]string(nil), cur.SS...), v.SS...) {
						set[s] = true
					}
					out := make([]string, 0, len(set))
					for s := range set {
						out = append(out, s)
					}
					sort.Strings(out)
					changes[n] = AttributeValue{SS: out}
				default:
					return fmt.Errorf("ADD %s: only numbers and string sets", n)
				}
			case "REMOVE":
				removes = append(removes, n)
			default:
				return fmt.Errorf("unknown clause %q", clause)
			}
			if p.peek() != "," {
				break
			}
			p.next()
		}
	}
	for n, v := range changes {
		item[n] = v
	}
	for _, n := range removes {
		delete(item, n)
	}
	return nil
}
