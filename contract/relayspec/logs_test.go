package relayspec_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// A refusal line as the relay writes it (slog's JSON handler) has its
// message where the filter's selector looks.
func TestRejectSelectorFindsSlogsMessage(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info(relayspec.RejectLogMessage, relayspec.LogKeyReason, "unknown_sni")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	key, ok := strings.CutPrefix(relayspec.LogMessageSelector, "$.")
	if !ok || line[key] != relayspec.RejectLogMessage || line[relayspec.LogKeyReason] != "unknown_sni" {
		t.Errorf("selector %s on %s", relayspec.LogMessageSelector, buf.String())
	}
}

// The pattern is CloudWatch Logs' JSON equality form { $.field = "value" }
// ("Using filter patterns to match terms in JSON log events",
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/matching-terms-json-log-events.html).
func TestRejectFilterPattern(t *testing.T) {
	if got := relayspec.RejectFilterPattern(); got != `{ $.msg = "rejected" }` {
		t.Errorf("RejectFilterPattern() = %s", got)
	}
}
