package awsstandin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// PresenceDynamoDB is a stand-in of PresenceDynamoDB's UpdateItem and Query (AWS JSON 1.0,
// X-Amz-Target DynamoDB_20120810.UpdateItem / .Query; Query takes only
// "#k = :v" on the partition key, one page) for the real aws-sdk-go-v2
// client, over one table keyed by two string attributes. It evaluates the
// expression subset the presence store uses, and refuses anything else
// with a ValidationException rather than guess:
//
//	update:    SET #a = :v[, #b = :w…]  |  ADD #a :v
//	condition: attribute_not_exists(#a), #a = :v, #a < :v, AND, OR, ( … )
//
// Values are S, N (compared as numbers) and BOOL. ReturnValues ALL_OLD
// and UPDATED_NEW are supported. Keys are two S attributes, the partition
// key's name sorting before the sort key's (as "customer" < "thing").
type PresenceDynamoDB struct {
	// URL is the endpoint.
	URL string
	// Table is the only table name it accepts.
	Table string

	mu    sync.Mutex
	items map[string]map[string]map[string]any // "hash\x00range" → attribute → {"S": …}
	aws   *AWS
}

// StartPresenceDynamoDB serves table.
func StartPresenceDynamoDB(table string) *PresenceDynamoDB {
	d := &PresenceDynamoDB{Table: table, items: map[string]map[string]map[string]any{}, aws: &AWS{}}
	d.URL = d.aws.serve(http.HandlerFunc(d.serveHTTP))
	return d
}

// Close stops the server.
func (d *PresenceDynamoDB) Close() { d.aws.Close() }

// Item returns a copy of the item with the two key values (nil if none),
// attribute → {"S"|"N"|"BOOL": value}.
func (d *PresenceDynamoDB) Item(hash, rng string) map[string]map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	it := d.items[hash+"\x00"+rng]
	if it == nil {
		return nil
	}
	out := map[string]map[string]any{}
	for k, v := range it {
		out[k] = v
	}
	return out
}

type ddbUpdate struct {
	TableName                 string
	Key                       map[string]map[string]any
	UpdateExpression          string
	ConditionExpression       string
	ExpressionAttributeNames  map[string]string
	ExpressionAttributeValues map[string]map[string]any
	ReturnValues              string
}

func (d *PresenceDynamoDB) serveHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "com.amazonaws.dynamodb.v20120810#"
	if r.Header.Get("X-Amz-Target") == "DynamoDB_20120810.Query" {
		d.query(w, r)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "DynamoDB_20120810.UpdateItem" {
		jsonError(w, http.StatusBadRequest, prefix+"UnknownOperationException", "stand-in does not serve "+target)
		return
	}
	var in ddbUpdate
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, prefix+"SerializationException", err.Error())
		return
	}
	if in.TableName != d.Table {
		jsonError(w, http.StatusBadRequest, prefix+"ResourceNotFoundException", "Requested resource not found")
		return
	}
	if len(in.Key) != 2 {
		jsonError(w, http.StatusBadRequest, prefix+"ValidationException", "the key must have two attributes")
		return
	}
	var keyNames []string
	for k := range in.Key {
		keyNames = append(keyNames, k)
	}
	if keyNames[0] > keyNames[1] {
		keyNames[0], keyNames[1] = keyNames[1], keyNames[0]
	}
	id := fmt.Sprint(in.Key[keyNames[0]]["S"]) + "\x00" + fmt.Sprint(in.Key[keyNames[1]]["S"])
	ev := &ddbEval{names: in.ExpressionAttributeNames, values: in.ExpressionAttributeValues}

	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.items[id]
	ev.item = old
	if in.ConditionExpression != "" {
		ok, err := ev.condition(in.ConditionExpression)
		if err != nil {
			jsonError(w, http.StatusBadRequest, prefix+"ValidationException", err.Error())
			return
		}
		if !ok {
			jsonError(w, http.StatusBadRequest, prefix+"ConditionalCheckFailedException", "The conditional request failed")
			return
		}
	}
	next := map[string]map[string]any{}
	for k, v := range old {
		next[k] = v
	}
	for k, v := range in.Key {
		next[k] = v
	}
	changed, err := ev.update(in.UpdateExpression, next)
	if err != nil {
		jsonError(w, http.StatusBadRequest, prefix+"ValidationException", err.Error())
		return
	}
	d.items[id] = next
	out := map[string]any{}
	switch in.ReturnValues {
	case "ALL_OLD":
		if old != nil {
			out["Attributes"] = old
		}
	case "UPDATED_NEW":
		attrs := map[string]any{}
		for _, k := range changed {
			attrs[k] = next[k]
		}
		out["Attributes"] = attrs
	case "", "NONE":
	default:
		jsonError(w, http.StatusBadRequest, prefix+"ValidationException", "unsupported ReturnValues "+in.ReturnValues)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

// ddbEval evaluates expressions against one item.
type ddbEval struct {
	names  map[string]string
	values map[string]map[string]any
	item   map[string]map[string]any
	toks   []string
	pos    int
}

func ddbTokens(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case strings.ContainsRune("(),=<", c):
			out = append(out, string(c))
			i++
		default:
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && !strings.ContainsRune("(),=<", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

func (e *ddbEval) name(tok string) (string, error) {
	if n, ok := e.names[tok]; ok && strings.HasPrefix(tok, "#") {
		return n, nil
	}
	return "", fmt.Errorf("unsupported attribute name %q (use #placeholders)", tok)
}

func (e *ddbEval) value(tok string) (map[string]any, error) {
	if v, ok := e.values[tok]; ok && strings.HasPrefix(tok, ":") && len(v) == 1 {
		return v, nil
	}
	return nil, fmt.Errorf("unsupported or undefined value %q", tok)
}

func (e *ddbEval) next() string {
	if e.pos >= len(e.toks) {
		return ""
	}
	e.pos++
	return e.toks[e.pos-1]
}

func (e *ddbEval) condition(s string) (bool, error) {
	e.toks, e.pos = ddbTokens(s), 0
	v, err := e.or()
	if err == nil && e.pos != len(e.toks) {
		err = fmt.Errorf("unexpected %q in condition", e.toks[e.pos])
	}
	return v, err
}

func (e *ddbEval) or() (bool, error) {
	v, err := e.and()
	for err == nil && e.pos < len(e.toks) && e.toks[e.pos] == "OR" {
		e.pos++
		var w bool
		w, err = e.and()
		v = v || w
	}
	return v, err
}

func (e *ddbEval) and() (bool, error) {
	v, err := e.primary()
	for err == nil && e.pos < len(e.toks) && e.toks[e.pos] == "AND" {
		e.pos++
		var w bool
		w, err = e.primary()
		v = v && w
	}
	return v, err
}

func (e *ddbEval) primary() (bool, error) {
	tok := e.next()
	switch tok {
	case "(":
		v, err := e.or()
		if err == nil && e.next() != ")" {
			err = fmt.Errorf("missing )")
		}
		return v, err
	case "attribute_not_exists":
		if e.next() != "(" {
			return false, fmt.Errorf("attribute_not_exists needs (")
		}
		n, err := e.name(e.next())
		if err != nil {
			return false, err
		}
		if e.next() != ")" {
			return false, fmt.Errorf("attribute_not_exists needs )")
		}
		_, exists := e.item[n]
		return !exists, nil
	}
	n, err := e.name(tok)
	if err != nil {
		return false, err
	}
	op := e.next()
	v, err := e.value(e.next())
	if err != nil {
		return false, err
	}
	cur, ok := e.item[n]
	if !ok {
		return false, nil // a comparison with a missing attribute is false
	}
	c, comparable := ddbCompare(cur, v)
	switch op {
	case "=":
		return comparable && c == 0, nil
	case "<":
		return comparable && c < 0, nil
	}
	return false, fmt.Errorf("unsupported operator %q", op)
}

// ddbCompare orders two values of the same type (N numerically).
func ddbCompare(a, b map[string]any) (int, bool) {
	for t, av := range a {
		bv, ok := b[t]
		if !ok {
			return 0, false
		}
		switch t {
		case "N":
			x, err1 := strconv.ParseFloat(fmt.Sprint(av), 64)
			y, err2 := strconv.ParseFloat(fmt.Sprint(bv), 64)
			if err1 != nil || err2 != nil {
				return 0, false
			}
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		case "S":
			return strings.Compare(fmt.Sprint(av), fmt.Sprint(bv)), true
		case "BOOL":
			if av == bv {
				return 0, true
			}
			return 1, false
		}
	}
	return 0, false
}

// update applies SET or ADD to item and returns the attributes it changed.
func (e *ddbEval) update(s string, item map[string]map[string]any) ([]string, error) {
	e.toks, e.pos = ddbTokens(s), 0
	var changed []string
	switch e.next() {
	case "SET":
		for {
			n, err := e.name(e.next())
			if err != nil {
				return nil, err
			}
			if e.next() != "=" {
				return nil, fmt.Errorf("SET needs =")
			}
			v, err := e.value(e.next())
			if err != nil {
				return nil, err
			}
			item[n] = v
			changed = append(changed, n)
			if e.pos == len(e.toks) {
				return changed, nil
			}
			if e.next() != "," {
				return nil, fmt.Errorf("unexpected %q in SET", e.toks[e.pos-1])
			}
		}
	case "ADD":
		n, err := e.name(e.next())
		if err != nil {
			return nil, err
		}
		v, err := e.value(e.next())
		if err != nil || e.pos != len(e.toks) {
			return nil, fmt.Errorf("ADD takes one #name :value")
		}
		d, err := strconv.ParseInt(fmt.Sprint(v["N"]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ADD needs a number")
		}
		cur := int64(0)
		if c, ok := item[n]; ok {
			if cur, err = strconv.ParseInt(fmt.Sprint(c["N"]), 10, 64); err != nil {
				return nil, fmt.Errorf("ADD to a non-number")
			}
		}
		item[n] = map[string]any{"N": strconv.FormatInt(cur+d, 10)}
		return []string{n}, nil
	}
	return nil, fmt.Errorf("unsupported update expression %q", s)
}

// query answers a Query of one partition: items in sort-key order.
func (d *PresenceDynamoDB) query(w http.ResponseWriter, r *http.Request) {
	const prefix = "com.amazonaws.dynamodb.v20120810#"
	var in struct {
		TableName                 string
		KeyConditionExpression    string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]map[string]any
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, prefix+"SerializationException", err.Error())
		return
	}
	if in.TableName != d.Table {
		jsonError(w, http.StatusBadRequest, prefix+"ResourceNotFoundException", "Requested resource not found")
		return
	}
	toks := ddbTokens(in.KeyConditionExpression)
	if len(toks) != 3 || toks[1] != "=" || !strings.HasPrefix(toks[0], "#") || !strings.HasPrefix(toks[2], ":") {
		jsonError(w, http.StatusBadRequest, prefix+"ValidationException", "stand-in supports only #partitionKey = :value")
		return
	}
	v, ok := in.ExpressionAttributeValues[toks[2]]["S"]
	if !ok {
		jsonError(w, http.StatusBadRequest, prefix+"ValidationException", "partition key value must be S")
		return
	}
	want := fmt.Sprint(v) + "\x00"
	d.mu.Lock()
	var ids []string
	for id := range d.items {
		if strings.HasPrefix(id, want) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	items := []any{}
	for _, id := range ids {
		items = append(items, d.items[id])
	}
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(map[string]any{"Items": items, "Count": len(items), "ScannedCount": len(items)})
}
