package main

import (
	"context"
	"errors"
	"testing"

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
	tt := &thingTypes{iot: iot.NewFromConfig(awsstandin.Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(a.IoTURL) }), cache: map[string]string{}}
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
