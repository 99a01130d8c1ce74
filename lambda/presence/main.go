// Command presence is the presence Lambda: the IoT rule agentgate_presence
// invokes it with each connect/disconnect lifecycle event of the account
// ($aws/events/presence/+/+), and it keeps one row per agent and the
// connected count per customer in the presence table, reporting that count
// as the EMF metric agentgate/DataPlane ConnectedAgents{Customer}. The rule
// agentgate_presence_status invokes it with each agent's status message
// (contract/status), whose client version it stores on the agent's row.
// The logic lives in lambda/internal/presence.
//
// Environment (names in package lambdaenv): PresenceTable.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	iottypes "github.com/aws/aws-sdk-go-v2/service/iot/types"

	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
	"github.com/agentgate/agentgate/lambda/internal/presence"
)

func main() {
	ctx := context.Background()
	env, err := lambdakit.MustGetenv(lambdaenv.PresenceTable)
	if err != nil {
		lambdakit.ExitColdStart(err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		lambdakit.ExitColdStart(fmt.Errorf("load AWS configuration: %w", err))
	}
	lambdakit.DefaultRetryPolicy.Apply(&cfg)
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	metrics := lambdakit.NewMetrics("agentgate/DataPlane", "presence")
	h := &presence.Handler{
		Types: &thingTypes{iot: iot.NewFromConfig(cfg)},
		Store: &presence.DynamoDB{Client: dynamodb.NewFromConfig(cfg), Table: env[0]},
		Gauge: func(customer string, n int) {
			metrics.Count("ConnectedAgents", n, map[string]string{"Customer": customer})
		},
	}
	lambda.Start(handler(log, func() { metrics.Count("EventsRefused", 1, nil) }, h))
}

// handler is the invocation: a lifecycle event or a status record, told
// apart and applied. Input that cannot be applied is logged and counted
// with refused, never retried; a store or IoT error is returned, so the
// invocation is retried. A repeat is harmless: the row and the count are
// written in one transaction or not at all, the transaction's token makes
// a repeat of one already done a success without a second count, and after
// the token's 10 minutes the ordering condition refuses the repeat
// (presence.DynamoDB).
func handler(log *slog.Logger, refused func(), h *presence.Handler) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, raw json.RawMessage) error {
		in, err := presence.ParseInput(raw)
		if err != nil {
			// Not a connect/disconnect event of an agent-shaped client nor
			// a well-formed status record: retrying cannot help.
			log.Warn("presence input refused", "err", err)
			refused()
			return nil
		}
		if in.Status != nil {
			return applyStatus(ctx, log, h, *in.Status)
		}
		e := *in.Event
		out, err := h.Apply(ctx, e)
		if errors.Is(err, presence.ErrNotAnAgent) {
			log.Info("lifecycle event of a client that is not an agent", "client", e.ClientID, "err", err)
			return nil
		}
		if err != nil {
			return err // the invocation is retried; see above for why a repeat is harmless
		}
		log.Debug("lifecycle event applied", "client", e.ClientID, "type", e.EventType, "outcome", out)
		return nil
	}
}

// applyStatus stores an agent's announced client version.
func applyStatus(ctx context.Context, log *slog.Logger, h *presence.Handler, r status.Record) error {
	out, err := h.ApplyStatus(ctx, r)
	if errors.Is(err, presence.ErrNotAnAgent) {
		log.Warn("status of a thing that is not this customer's agent", "customer", r.Customer, "thing", r.Thing, "err", err)
		return nil
	}
	if err != nil {
		return err // the invocation is retried; a repeat is harmless
	}
	log.Debug("status applied", "customer", r.Customer, "thing", r.Thing, "version", r.Version, "outcome", out)
	return nil
}

// thingTypes finds a client's customer with iot:DescribeThing, cached for
// typeCacheTTL in the execution environment: a thing's type changes only
// by the control plane, but agentgate-admin agent delete frees an agent ID
// that another customer may then enrol, so an entry must not outlive that
// for long. The cache is bounded by resetting it.
type thingTypes struct {
	iot   *iot.Client
	now   func() time.Time
	mu    sync.Mutex
	cache map[string]cachedType
}

type cachedType struct {
	typ     string
	expires time.Time
}

const (
	maxCachedThings = 10000
	// typeCacheTTL bounds how long a deleted and re-enrolled agent ID's
	// events may still be filed under its former customer.
	typeCacheTTL = time.Minute
)

func (t *thingTypes) ThingType(ctx context.Context, thing string) (string, error) {
	now := time.Now
	if t.now != nil {
		now = t.now
	}
	t.mu.Lock()
	c, ok := t.cache[thing]
	t.mu.Unlock()
	if ok && now().Before(c.expires) {
		return c.typ, nil
	}
	out, err := t.iot.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(thing)})
	var nf *iottypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return "", fmt.Errorf("%w: no thing %s", presence.ErrNotAnAgent, thing)
	}
	if err != nil {
		return "", fmt.Errorf("describe thing %s: %w", thing, err)
	}
	typ := aws.ToString(out.ThingTypeName)
	t.mu.Lock()
	if t.cache == nil || len(t.cache) >= maxCachedThings {
		t.cache = map[string]cachedType{}
	}
	t.cache[thing] = cachedType{typ: typ, expires: now().Add(typeCacheTTL)}
	t.mu.Unlock()
	return typ, nil
}
