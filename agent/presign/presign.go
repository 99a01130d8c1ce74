// Package presign builds the SigV4-presigned WebSocket URL for MQTT over
// WebSocket to AWS IoT Core, exactly as the AWS IoT device SDKs do
// (aws-iot-device-sdk-python-v2 mqtt_connection_builder,
// aws/aws-sdk-go#2485): GET wss://<endpoint>/mqtt, service iotdevicegateway,
// query-string signature over the host header and the empty payload, and the
// session token appended after signing (IoT rejects a signature that covers
// it).
package presign

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Service is the SigV4 service name of the IoT data plane's MQTT gateway.
const Service = "iotdevicegateway"

// Path is the WebSocket path on the IoT data endpoint.
const Path = "/mqtt"

// EmptyPayloadHash is the hex SHA-256 of the empty body a WebSocket upgrade
// request signs.
var EmptyPayloadHash = func() string { s := sha256.Sum256(nil); return hex.EncodeToString(s[:]) }()

// URL returns the presigned wss:// URL for endpoint (host[:port]) in region,
// signed at the given time.
func URL(ctx context.Context, creds aws.Credentials, endpoint, region string, at time.Time) (string, error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", fmt.Errorf("presign: credentials have no access key")
	}
	if region == "" {
		return "", fmt.Errorf("presign: region is empty")
	}
	u := url.URL{Scheme: "wss", Host: endpoint, Path: Path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, EmptyPayloadHash, Service, region, at,
		func(o *v4.SignerOptions) { o.DisableSessionToken = true })
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	if creds.SessionToken != "" {
		signed += "&X-Amz-Security-Token=" + url.QueryEscape(creds.SessionToken)
	}
	return signed, nil
}

// RegionFromEndpoint takes the region from an IoT endpoint name
// (<prefix>-ats.iot.<region>.amazonaws.com[.cn] or
// <prefix>.credentials.iot.<region>.amazonaws.com); ok is false for other
// names (a custom domain), which then need the region configured.
func RegionFromEndpoint(host string) (region string, ok bool) {
	labels := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+2 < len(labels); i++ {
		if labels[i] == "iot" && labels[i+2] == "amazonaws" && labels[i+1] != "" {
			return labels[i+1], true
		}
	}
	return "", false
}
