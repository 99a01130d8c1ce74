package lambdakit

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/topics"
)

// ResolveDataEndpoint returns the iot-data base URL: "https://" + the
// configured host when env is non-empty, otherwise the account's
// iot:Data-ATS endpoint from iot:DescribeEndpoint.
func ResolveDataEndpoint(ctx context.Context, env string, client *iot.Client) (string, error) {
	host := strings.TrimSpace(env)
	if host == "" {
		out, err := client.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
		if err != nil {
			return "", fmt.Errorf("discover iot-data endpoint (iot:DescribeEndpoint iot:Data-ATS): %w", err)
		}
		host = aws.ToString(out.EndpointAddress)
	}
	if host == "" {
		return "", fmt.Errorf("iot-data endpoint is empty")
	}
	if strings.Contains(host, "://") {
		return host, nil
	}
	return "https://" + host, nil
}

// PublishRetained publishes payload as a retained QoS 1 message on topic.
// The caller addresses exact topics only (package topics): a retained
// message reaches only subscriptions equal to its topic.
func PublishRetained(ctx context.Context, data *iotdataplane.Client, topic string, payload []byte) error {
	if len(payload) == 0 {
		return fmt.Errorf("refusing to publish an empty retained payload on %s: it would delete the retained message", topic)
	}
	if len(payload) > topics.MaxMessageBytes {
		return fmt.Errorf("payload for %s is %d bytes; IoT Core accepts at most %d", topic, len(payload), topics.MaxMessageBytes)
	}
	_, err := data.Publish(ctx, &iotdataplane.PublishInput{
		Topic:       aws.String(topic),
		Qos:         1,
		Retain:      true,
		Payload:     payload,
		ContentType: aws.String("application/json"),
	})
	if err != nil {
		return fmt.Errorf("publish retained %s: %w", topic, err)
	}
	return nil
}
