package lambdakit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iotdataplane"

	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

func TestBackoffIsFullJitterWithinBounds(t *testing.T) {
	p := lambdakit.RetryPolicy{MaxAttempts: 8, BaseBackoff: 100 * time.Millisecond, MaxBackoff: 4 * time.Second}
	r := p.Retryer()
	for attempt := 1; attempt <= 10; attempt++ {
		ceiling := min(p.MaxBackoff, p.BaseBackoff<<(attempt-1))
		var maxSeen time.Duration
		for range 200 {
			d, err := r.RetryDelay(attempt, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: delay %s outside [0, %s]", attempt, d, ceiling)
			}
			maxSeen = max(maxSeen, d)
		}
		if maxSeen < ceiling/2 {
			t.Errorf("attempt %d: 200 delays all below %s; not spread up to %s", attempt, maxSeen, ceiling)
		}
	}
	if r.MaxAttempts() != 8 {
		t.Errorf("MaxAttempts = %d", r.MaxAttempts())
	}
}

func TestMetricsWriteEmbeddedMetricFormat(t *testing.T) {
	var buf bytes.Buffer
	m := &lambdakit.Metrics{W: &buf, Namespace: "agentgate/ControlPlane", Service: "configpublisher", Now: func() time.Time { return time.UnixMilli(1700000000000) }}
	m.Count("ConfigRejected", 1, map[string]string{"Reason": "bad_json"})
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Service        string
		Reason         string
		ConfigRejected int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || !strings.HasSuffix(buf.String(), "}\n") || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("not one JSON line: %q (%v)", buf.String(), err)
	}
	cw := line.AWS.CloudWatchMetrics
	if line.AWS.Timestamp != 1700000000000 || len(cw) != 1 || cw[0].Namespace != "agentgate/ControlPlane" ||
		len(cw[0].Dimensions) != 1 || strings.Join(cw[0].Dimensions[0], ",") != "Service,Reason" ||
		cw[0].Metrics[0].Name != "ConfigRejected" || cw[0].Metrics[0].Unit != "Count" ||
		line.Service != "configpublisher" || line.Reason != "bad_json" || line.ConfigRejected != 1 {
		t.Errorf("EMF line = %s", buf.String())
	}
}

func TestPublishRetainedRefusesEmptyAndOversize(t *testing.T) {
	a := awsstandin.Start()
	defer a.Close()
	cfg := awsstandin.Config()
	data := iotdataplane.NewFromConfig(cfg, func(o *iotdataplane.Options) { o.BaseEndpoint = aws.String(a.DataURL) })
	if err := lambdakit.PublishRetained(t.Context(), data, "acme/a1/config", nil); err == nil {
		t.Error("an empty retained payload (which deletes the retained message) was published")
	}
	if err := lambdakit.PublishRetained(t.Context(), data, "acme/a1/config", make([]byte, topics.MaxMessageBytes+1)); err == nil {
		t.Error("an oversize payload was published")
	}
	if n := a.Count("Publish"); n != 0 {
		t.Errorf("%d requests reached iot-data", n)
	}
	if err := lambdakit.PublishRetained(t.Context(), data, "acme/a1/config", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Retained("acme/a1/config"); string(got) != `{}` {
		t.Errorf("retained %q", got)
	}
}
