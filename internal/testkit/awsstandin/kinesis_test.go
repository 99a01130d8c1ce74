package awsstandin

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
)

func kinesisClient(k *Kinesis) *kinesis.Client {
	return kinesis.NewFromConfig(Config(), func(o *kinesis.Options) { o.BaseEndpoint = aws.String(k.URL) })
}

func TestKinesisPutRecordWithTheRealClient(t *testing.T) {
	k := StartKinesis("telemetry")
	defer k.Close()
	c := kinesisClient(k)
	ctx := context.Background()
	for i, pk := range []string{"acme/a", "acme/b", "acme/a"} {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("telemetry"), PartitionKey: aws.String(pk), Data: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if out.SequenceNumber == nil || out.ShardId == nil {
			t.Fatalf("output %+v", out)
		}
	}
	recs := k.Records()
	if len(recs) != 3 || recs[2].PartitionKey != "acme/a" || !bytes.Equal(recs[2].Data, []byte{2}) || recs[2].Sequence != 3 {
		t.Errorf("records %+v", recs)
	}
	// Throttling is retried by the SDK.
	k.Throttle(2)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("telemetry"), PartitionKey: aws.String("x"), Data: []byte("y")}); err != nil {
		t.Fatalf("throttled twice, then: %v", err)
	}
	for name, in := range map[string]*kinesis.PutRecordInput{
		"unknown stream": {StreamName: aws.String("other"), PartitionKey: aws.String("x"), Data: []byte("y")},
		"long key":       {StreamName: aws.String("telemetry"), PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte("y")},
		"oversize":       {StreamName: aws.String("telemetry"), PartitionKey: aws.String("x"), Data: make([]byte, 1<<20)},
	} {
		_, err := c.PutRecord(ctx, in)
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			t.Errorf("%s: %v, want an API error", name, err)
		}
	}
	resp, err := http.Post(k.URL, "application/x-amz-json-1.1", strings.NewReader("{"))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("no X-Amz-Target: %d", resp.StatusCode)
		}
	}
	if len(k.Records()) != 4 {
		t.Errorf("%d records after refusals", len(k.Records()))
	}
}
