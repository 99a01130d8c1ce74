package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentgate/agentgate/contract/provisioning"
)

// RetryWindow is how long after its admission an interrupted enrolment may
// be repeated with the same token and agent ID (the device lost the
// RegisterThing answer, or crashed before it stored its certificate).
// After it the token's admission of that agent ID no longer admits
// anything: a device that has not finished by then needs a new token (or,
// when its thing exists, the operator's agent delete first). A day covers
// an installer's retries across a reboot or a network outage without
// leaving a stolen token's past admissions usable for the token's whole
// validity (up to MaxValidity).
const RetryWindow = 24 * time.Hour

// Ownership is an agent ID's ownership record (the agent#<id> item).
type Ownership struct {
	AgentID    string
	Customer   string
	TokenID    string
	AdmittedAt time.Time
	Revoked    bool
	RevokedAt  time.Time
}

// ErrOtherCustomer is returned when an agent ID's ownership record belongs
// to another customer than the one named.
var ErrOtherCustomer = errors.New("the agent ID belongs to another customer")

// agentKeyPrefix starts the key of every ownership record.
const agentKeyPrefix = "agent#"

func agentKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{KeyAttribute: &types.AttributeValueMemberS{Value: agentKeyPrefix + id}}
}

func str(v string) *types.AttributeValueMemberS { return &types.AttributeValueMemberS{Value: v} }

// Owner reads agentID's ownership record (strongly consistent); found is
// false when there is none.
func (s *Store) Owner(ctx context.Context, agentID string) (o Ownership, found bool, err error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.Table), Key: agentKey(agentID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return o, false, fmt.Errorf("read agent ownership: %w", err)
	}
	it := out.Item
	if _, owned := it["customer"]; !owned {
		// No item, or one Release gave back.
		return o, false, nil
	}
	text := func(n string) string {
		if v, ok := it[n].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	unix := func(n string) time.Time {
		if v, ok := it[n].(*types.AttributeValueMemberN); ok {
			if i, err := strconv.ParseInt(v.Value, 10, 64); err == nil {
				return time.Unix(i, 0).UTC()
			}
		}
		return time.Time{}
	}
	o = Ownership{AgentID: agentID, Customer: text("customer"), TokenID: text("tokenId"), AdmittedAt: unix("admittedAt"), RevokedAt: unix("revokedAt")}
	if v, ok := it["revoked"].(*types.AttributeValueMemberBOOL); ok {
		o.Revoked = v.Value
	}
	if o.Customer == "" {
		return o, true, fmt.Errorf("ownership record of agent %q is damaged (customer is not a string)", agentID)
	}
	return o, true, nil
}

// Claim records, in one conditional write, that agentID belongs to the
// token rec (and its customer) before the hook admits an enrolment of it.
//
// A first enrolment (retry false) succeeds when the agent ID has no
// ownership record (no item, or one Release gave back), or one this same
// token wrote and that is not revoked; it sets admittedAt to now. Two tokens racing for one agent ID cannot
// both win: DynamoDB serialises writes to one item and evaluates the
// condition against the item as it is at write time (see the package
// comment's references).
//
// A repeat of an interrupted enrolment (retry true: the token already
// admitted agentID) succeeds only when the record exists, is this token's
// and customer's, is not revoked and was admitted within RetryWindow. A
// deleted agent (no record) or a revoked one is therefore never enrolled
// again by the token that admitted it.
//
// reason is "" when the claim holds; otherwise the refusal, explained from
// a re-read of the record.
func (s *Store) Claim(ctx context.Context, rec Record, agentID string, retry bool) (provisioning.Reason, error) {
	now := s.now()
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      agentKey(agentID),
		ExpressionAttributeNames: map[string]string{"#pk": KeyAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": str(rec.Customer), ":t": str(rec.ID), ":f": &types.AttributeValueMemberBOOL{Value: false}, ":now": num(now.Unix()),
		},
	}
	if retry {
		in.UpdateExpression = aws.String("SET lastRetryAt = :now")
		in.ConditionExpression = aws.String("attribute_exists(#pk) AND tokenId = :t AND customer = :c AND revoked = :f AND admittedAt >= :since")
		in.ExpressionAttributeValues[":since"] = num(now.Add(-RetryWindow).Unix())
	} else {
		in.UpdateExpression = aws.String("SET customer = :c, tokenId = :t, admittedAt = :now, revoked = :f REMOVE #ttl")
		in.ConditionExpression = aws.String("attribute_not_exists(customer) OR (tokenId = :t AND customer = :c AND revoked = :f)")
		in.ExpressionAttributeNames = map[string]string{"#ttl": TTLAttribute}
	}
	_, err := s.DB.UpdateItem(ctx, in)
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return provisioning.ReasonInternal, fmt.Errorf("claim agent ID: %w", err)
	}
	if err == nil {
		return "", nil
	}
	o, found, err := s.Owner(ctx, agentID)
	switch {
	case err != nil:
		return provisioning.ReasonInternal, err
	case !found:
		// Only a retry requires the record: the agent was deleted after
		// this token admitted it.
		return provisioning.ReasonAgentDeleted, nil
	case o.Revoked:
		return provisioning.ReasonAgentRevoked, nil
	case o.Customer != rec.Customer || o.TokenID != rec.ID:
		return provisioning.ReasonAgentTaken, nil
	case retry && o.AdmittedAt.Before(now.Add(-RetryWindow)):
		return provisioning.ReasonRetryWindowOver, nil
	}
	// The record changed between the write and the re-read (a concurrent
	// revoke or delete and claim): refuse rather than guess.
	return provisioning.ReasonAgentTaken, nil
}

// releasedTTL is how long a given-back record stays before DynamoDB's
// time to live may remove it (it is already free).
const releasedTTL = 24 * time.Hour

// Release undoes a first-enrolment Claim whose token use was then refused
// (the token was used up, revoked or expired meanwhile), so the agent ID
// does not stay reserved by a token that never admitted it. It clears the
// record's owner only while it is still this token's and not revoked, with
// an UpdateItem (the hook's role may not delete items) that leaves a free
// record for time to live to remove.
func (s *Store) Release(ctx context.Context, rec Record, agentID string) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      agentKey(agentID),
		UpdateExpression:         aws.String("REMOVE customer, tokenId, admittedAt SET #ttl = :ttl"),
		ConditionExpression:      aws.String("tokenId = :t AND customer = :c AND revoked = :f"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": str(rec.Customer), ":t": str(rec.ID), ":f": &types.AttributeValueMemberBOOL{Value: false},
			":ttl": num(s.now().Add(releasedTTL).Unix()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("release agent ID: %w", err)
	}
	return nil
}

// RevokeAgent marks agentID's ownership record revoked (revoked, revokedAt):
// the hook then refuses every enrolment of that agent ID, a repeat with
// the token that admitted it included, until DeleteAgent. An agent with no
// record (enrolled before records existed, or never) gets a revoked one
// for customer. ErrOtherCustomer when the record is another customer's.
// Revoking again keeps the first revokedAt.
func (s *Store) RevokeAgent(ctx context.Context, customer, agentID string) error {
	_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.Table),
		Key:                      agentKey(agentID),
		UpdateExpression:         aws.String("SET customer = :c, revoked = :t, revokedAt = :now REMOVE #ttl"),
		ConditionExpression:      aws.String("attribute_not_exists(customer) OR (customer = :c AND revoked = :f)"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":c": str(customer), ":t": &types.AttributeValueMemberBOOL{Value: true}, ":f": &types.AttributeValueMemberBOOL{Value: false},
			":now": num(s.now().Unix()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		o, _, rerr := s.Owner(ctx, agentID)
		switch {
		case rerr != nil:
			return rerr
		case o.Customer != customer:
			return fmt.Errorf("agent %s: %w (%s)", agentID, ErrOtherCustomer, o.Customer)
		}
		return nil // already revoked
	}
	if err != nil {
		return fmt.Errorf("revoke agent ID: %w", err)
	}
	return nil
}

// DeleteAgent removes agentID's ownership record, once the agent's thing
// and certificates are gone: the agent ID may then be enrolled again, but
// only by a token that never admitted it (a repeat with the old token
// finds no record and is refused). No record is not an error;
// ErrOtherCustomer when it is another customer's.
func (s *Store) DeleteAgent(ctx context.Context, customer, agentID string) error {
	_, err := s.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.Table),
		Key:                       agentKey(agentID),
		ConditionExpression:       aws.String("attribute_not_exists(customer) OR customer = :c"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":c": str(customer)},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		o, _, rerr := s.Owner(ctx, agentID)
		if rerr != nil {
			return rerr
		}
		return fmt.Errorf("agent %s: %w (%s)", agentID, ErrOtherCustomer, o.Customer)
	}
	if err != nil {
		return fmt.Errorf("delete agent ownership: %w", err)
	}
	return nil
}

// AgentsOf lists the agent IDs whose ownership record is customer's, revoked
// or not: the agents admitted for it, including those whose enrolment never
// created a thing (a sweep over the customer's things alone would miss
// them, and a repeat within RetryWindow could finish one after the sweep).
func (s *Store) AgentsOf(ctx context.Context, customer string) ([]string, error) {
	p := dynamodb.NewScanPaginator(s.DB, &dynamodb.ScanInput{
		TableName:                 aws.String(s.Table),
		FilterExpression:          aws.String("begins_with(#pk, :prefix) AND customer = :c"),
		ExpressionAttributeNames:  map[string]string{"#pk": KeyAttribute},
		ExpressionAttributeValues: map[string]types.AttributeValue{":prefix": str(agentKeyPrefix), ":c": str(customer)},
	})
	var out []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list agent ownership records: %w", err)
		}
		for _, it := range page.Items {
			if k, ok := it[KeyAttribute].(*types.AttributeValueMemberS); ok && strings.HasPrefix(k.Value, agentKeyPrefix) {
				out = append(out, strings.TrimPrefix(k.Value, agentKeyPrefix))
			}
		}
	}
	return out, nil
}
