// Package tokenstore keeps install tokens (contract/provisioning) in a
// DynamoDB table: the admin CLI issues, lists and revokes them, the
// pre-provisioning hook checks and consumes them. Only the secret's hash is
// stored. Every change is one conditional write, so two enrolments racing
// for the last use of a token cannot both win, and a replay of a consumed
// token fails the condition (DynamoDB developer guide, "Condition
// expressions" and "Working with items: conditional writes",
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
// and https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate).
//
// Table: one string partition key, KeyAttribute. Items:
//
//	token#<id>              customer, secretHash, createdAt, expiresAt (Unix s),
//	                        maxUses, uses, revoked, agents (string set), note, ttl
//	rate#<customer>#<min>   n (enrolments admitted in that minute), ttl
//	agent#<agentId>         customer, tokenId, admittedAt (Unix s), revoked,
//	                        revokedAt (Unix s, once revoked), lastRetryAt;
//	                        a claim given back keeps only revoked and a ttl
//
// An agent# item is the agent ID's ownership record (ownership.go): the
// hook writes it, conditionally, before it admits an enrolment, so one
// agent ID belongs to one customer and one token however requests race;
// agentgate-admin agent revoke marks it revoked (no enrolment of that ID
// is admitted again) and agent delete removes it (the ID is free again).
//
// ttl is the table's time-to-live attribute: expired tokens disappear 30
// days after expiry, rate counters after ten minutes (DynamoDB deletes
// expired items within a few days, so reads never rely on it: "Using time
// to live", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html).
package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentgate/agentgate/contract/provisioning"
	"github.com/agentgate/agentgate/contract/topics"
)

// KeyAttribute is the table's partition key; TTLAttribute its time-to-live attribute.
const (
	KeyAttribute = "pk"
	TTLAttribute = "ttl"
)

// Limits on what an operator may issue.
const (
	// MaxUses bounds one token's use count.
	MaxUses = 10000
	// MaxValidity bounds one token's lifetime.
	MaxValidity = 366 * 24 * time.Hour
	// MaxNoteLen bounds the operator's note.
	MaxNoteLen = 256
	// keepAfterExpiry is how long an expired record stays (ttl).
	keepAfterExpiry = 30 * 24 * time.Hour
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store is a token table.
type Store struct {
	DB    API
	Table string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Record is a token's stored state.
type Record struct {
	ID         string    `json:"id"`
	Customer   string    `json:"customer"`
	SecretHash string    `json:"-"`
	CreatedAt  time.Time `json:"createdAt"`
	ExpiresAt  time.Time `json:"expiresAt"`
	MaxUses    int       `json:"maxUses"`
	Uses       int       `json:"uses"`
	Revoked    bool      `json:"revoked"`
	Agents     []string  `json:"agents,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// Admitted reports whether agentID was already admitted with this token.
func (r Record) Admitted(agentID string) bool {
	for _, a := range r.Agents {
		if a == agentID {
			return true
		}
	}
	return false
}

// ErrNotFound is returned for a token ID without a record.
var ErrNotFound = errors.New("no such token")

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func tokenKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: "token#" + id}}
}

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// IssueParams describe a new token.
type IssueParams struct {
	Customer string
	Validity time.Duration
	MaxUses  int
	Note     string
}

// Validate reports every invalid field.
func (p IssueParams) Validate() error {
	var errs []error
	if err := topics.ValidateCustomerID(p.Customer); err != nil {
		errs = append(errs, err)
	}
	if p.Validity <= 0 || p.Validity > MaxValidity {
		errs = append(errs, fmt.Errorf("validity %s outside (0, %s]", p.Validity, MaxValidity))
	}
	if p.MaxUses < 1 || p.MaxUses > MaxUses {
		errs = append(errs, fmt.Errorf("uses %d outside 1..%d", p.MaxUses, MaxUses))
	}
	if len(p.Note) > MaxNoteLen {
		errs = append(errs, fmt.Errorf("note is %d bytes; at most %d", len(p.Note), MaxNoteLen))
	}
	return errors.Join(errs...)
}

// Issue draws a token, stores its record (never overwriting one) and
// returns the token: the only time its secret exists outside the caller.
func (s *Store) Issue(ctx context.Context, p IssueParams) (provisioning.Token, Record, error) {
	if err := p.Validate(); err != nil {
		return provisioning.Token{}, Record{}, err
	}
	tok, err := provisioning.NewToken(nil)
	if err != nil {
		return provisioning.Token{}, Record{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	rec := Record{ID: tok.ID, Customer: p.Customer, SecretHash: provisioning.SecretHash(tok.Secret),
		CreatedAt: now, ExpiresAt: now.Add(p.Validity), MaxUses: p.MaxUses, Note: p.Note}
	item := tokenKey(tok.ID)
	item["customer"] = &types.AttributeValueMemberS{Value: rec.Customer}
	item["secretHash"] = &types.AttributeValueMemberS{Value: rec.SecretHash}
	item["createdAt"] = num(now.Unix())
	item["expiresAt"] = num(rec.ExpiresAt.Unix())
	item["maxUses"] = num(int64(rec.MaxUses))
	item["uses"] = num(0)
	item["revoked"] = &types.AttributeValueMemberBOOL{Value: false}
	item[TTLAttribute] = num(rec.ExpiresAt.Add(keepAfterExpiry).Unix())
	if p.Note != "" {
		item["note"] = &types.AttributeValueMemberS{Value: p.Note}
	}
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.Table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": KeyAttribute},
	})
	if err != nil {
		return provisioning.Token{}, Record{}, fmt.Errorf("store token: %w", err)
	}
	return tok, rec, nil
}

// Get reads a token's record (strongly consistent).
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	if !provisioning.ValidTokenID(id) {
		return Record{}, ErrNotFound
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: tokenKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Record{}, fmt.Errorf("read token: %w", err)
	}
	if len(out.Item) == 0 {
		return Record{}, ErrNotFound
	}
	return decodeRecord(out.Item)
}

func decodeRecord(it map[string]types.AttributeValue) (Record, error) {
	str := func(n string) string {
		if v, ok := it[n].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	var bad []string
	integer := func(n string) int64 {
		v, ok := it[n].(*types.AttributeValueMemberN)
		if !ok {
			bad = append(bad, n)
			return 0
		}
		i, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			bad = append(bad, n)
		}
		return i
	}
	id := str(KeyAttribute)
	r := Record{
		ID:         id[min(len(id), len("token#")):],
		Customer:   str("customer"),
		SecretHash: str("secretHash"),
		CreatedAt:  time.Unix(integer("createdAt"), 0).UTC(),
		ExpiresAt:  time.Unix(integer("expiresAt"), 0).UTC(),
		MaxUses:    int(integer("maxUses")),
		Uses:       int(integer("uses")),
		Note:       str("note"),
	}
	if v, ok := it["revoked"].(*types.AttributeValueMemberBOOL); ok {
		r.Revoked = v.Value
	} else {
		bad = append(bad, "revoked")
	}
	if v, ok := it["agents"].(*types.AttributeValueMemberSS); ok {
		r.Agents = v.Value
	}
	if r.Customer == "" || r.SecretHash == "" || len(bad) > 0 || !provisioning.ValidTokenID(r.ID) {
		return r, fmt.Errorf("token record %q is damaged (%v)", id, bad)
	}
	return r, nil
}

// List returns every token record, of one customer when customer is not
// empty, in the table's scan order.
func (s *Store) List(ctx context.Context, customer string) ([]Record, error) {
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(s.Table),
		FilterExpression:          aws.String("begins_with(#pk, :prefix)"),
		ExpressionAttributeNames:  map[string]string{"#pk": KeyAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": &types.AttributeValueMemberS{Value: "token#"}},
	}
	if customer != "" {
		in.FilterExpression = aws.String("begins_with(#pk, :prefix) AND customer = :c")
		in.ExpressionAttributeValues[":c"] = &types.AttributeValueMemberS{Value: customer}
	}
	var out []Record
	p := dynamodb.NewScanPaginator(s.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		for _, it := range page.Items {
			r, err := decodeRecord(it)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Revoke marks a token revoked; later enrolments with it are refused.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if !provisioning.ValidTokenID(id) {
		return ErrNotFound
	}
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       tokenKey(id),
		UpdateExpression:          aws.String("SET revoked = :t"),
		ConditionExpression:       aws.String("attribute_exists(#pk)"),
		ExpressionAttributeNames:  map[string]string{"#pk": KeyAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	return nil
}

// Check reads the token's record and says why it cannot admit agentID
// (reason "" when it can, without consuming anything). retry is true when
// the token already admitted agentID: enrolment of that agent was
// interrupted and is being repeated, and Consume must not be called again.
func (s *Store) Check(ctx context.Context, tok provisioning.Token, agentID, expectedCustomer string) (rec Record, reason provisioning.Reason, retry bool, err error) {
	rec, err = s.Get(ctx, tok.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		return rec, provisioning.ReasonTokenUnknown, false, nil
	case err != nil:
		return rec, provisioning.ReasonInternal, false, err
	}
	return rec, s.judge(rec, tok, agentID, expectedCustomer), rec.Admitted(agentID), nil
}

// judge orders the refusals: a wrong secret looks like an unknown token.
func (s *Store) judge(rec Record, tok provisioning.Token, agentID, expectedCustomer string) provisioning.Reason {
	switch {
	case !provisioning.SecretMatches(rec.SecretHash, tok.Secret):
		return provisioning.ReasonTokenUnknown
	case rec.Revoked:
		return provisioning.ReasonTokenRevoked
	case !s.now().Before(rec.ExpiresAt):
		return provisioning.ReasonTokenExpired
	case expectedCustomer != "" && expectedCustomer != rec.Customer:
		return provisioning.ReasonWrongCustomer
	case rec.Admitted(agentID):
		return ""
	case rec.Uses >= rec.MaxUses:
		return provisioning.ReasonTokenUsedUp
	}
	return ""
}

// Consume takes one use of the token for agentID in one conditional
// write: the secret's hash, the customer, not revoked, not expired, a use
// left and agentID not yet admitted must all still hold at write time. A
// failed condition is re-read and explained.
func (s *Store) Consume(ctx context.Context, rec Record, tok provisioning.Token, agentID string) (provisioning.Reason, error) {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.Table),
		Key:              tokenKey(tok.ID),
		UpdateExpression: aws.String("SET uses = uses + :one ADD agents :agent"),
		ConditionExpression: aws.String("attribute_exists(#pk) AND secretHash = :hash AND customer = :c AND revoked = :f " +
			"AND expiresAt > :now AND uses < maxUses AND NOT contains(agents, :agentId)"),
		ExpressionAttributeNames: map[string]string{"#pk": KeyAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one":     num(1),
			":agent":   &types.AttributeValueMemberSS{Value: []string{agentID}},
			":agentId": &types.AttributeValueMemberS{Value: agentID},
			":hash":    &types.AttributeValueMemberS{Value: provisioning.SecretHash(tok.Secret)},
			":c":       &types.AttributeValueMemberS{Value: rec.Customer},
			":f":       &types.AttributeValueMemberBOOL{Value: false},
			":now":     num(s.now().Unix()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		now, rerr := s.Get(ctx, tok.ID)
		if errors.Is(rerr, ErrNotFound) {
			return provisioning.ReasonTokenUnknown, nil
		}
		if rerr != nil {
			return provisioning.ReasonInternal, fmt.Errorf("re-read token after a refused use: %w", rerr)
		}
		if r := s.judge(now, tok, agentID, ""); r != "" {
			return r, nil
		}
		// Admitted meanwhile by a concurrent request for the same agent: a
		// use was taken for it exactly once.
		if now.Admitted(agentID) {
			return "", nil
		}
		return provisioning.ReasonTokenUsedUp, nil
	}
	if err != nil {
		return provisioning.ReasonInternal, fmt.Errorf("consume token: %w", err)
	}
	return "", nil
}

// TakeRate counts one enrolment of customer in the current minute and
// reports false when limit were already counted there. The counter is one
// item per customer and minute, incremented with a conditional write.
func (s *Store) TakeRate(ctx context.Context, customer string, limit int) (bool, error) {
	now := s.now()
	minute := now.Unix() / 60
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: fmt.Sprintf("rate#%s#%d", customer, minute)}},
		UpdateExpression:         aws.String("ADD n :one SET #ttl = :ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(n) OR n < :limit"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": num(1), ":limit": num(int64(limit)), ":ttl": num((minute + 10) * 60),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("count enrolment: %w", err)
	}
	return true, nil
}
