package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/presence"
)

// A thing's customer comes from DescribeThing once per thing (cached); a
// client that is no thing is not an agent.
func TestThingTypesAskOnceAndRefuseStrangers(t *testing.T) {
	a := awsstandin.Start()
	defer a.Close()
	a.AddThing("pc-1", "acme")
	tt := &thingTypes{iot: iot.NewFromConfig(awsstandin.Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL) })}
	for range 3 {
		typ, err := tt.ThingType(context.Background(), "pc-1")
		if err != nil || typ != "acme" {
			t.Fatalf("ThingType = %q, %v", typ, err)
		}
	}
	if n := a.Count("DescribeThing"); n != 1 {
		t.Errorf("%d DescribeThing calls for one thing asked three times", n)
	}
	if _, err := tt.ThingType(context.Background(), "stranger"); !errors.Is(err, presence.ErrNotAnAgent) {
		t.Errorf("unknown client: %v, want ErrNotAnAgent", err)
	}
}

// A cached type expires: an agent ID deleted and enrolled again by another
// customer is filed under the new customer once typeCacheTTL has passed.
func TestThingTypeCacheExpires(t *testing.T) {
	a := awsstandin.Start()
	defer a.Close()
	a.AddThing("pc-1", "acme")
	now := time.Unix(1764842400, 0)
	tt := &thingTypes{iot: iot.NewFromConfig(awsstandin.Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL) }),
		now: func() time.Time { return now }}
	if typ, err := tt.ThingType(context.Background(), "pc-1"); err != nil || typ != "acme" {
		t.Fatalf("ThingType = %q, %v", typ, err)
	}
	a.AddThing("pc-1", "globex") // deleted and enrolled again by another customer
	now = now.Add(typeCacheTTL - time.Second)
	if typ, _ := tt.ThingType(context.Background(), "pc-1"); typ != "acme" {
		t.Errorf("within the TTL: %q, want the cached acme", typ)
	}
	now = now.Add(time.Second)
	if typ, err := tt.ThingType(context.Background(), "pc-1"); err != nil || typ != "globex" {
		t.Errorf("after the TTL: %q, %v, want globex", typ, err)
	}
}
