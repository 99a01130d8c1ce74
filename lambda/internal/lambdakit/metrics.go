package lambdakit

import (
	"encoding/json"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Metrics writes CloudWatch Embedded Metric Format lines: each Count call is
// one JSON line on W, which CloudWatch Logs turns into a metric data point.
type Metrics struct {
	// W receives the EMF lines; os.Stdout in Lambda.
	W io.Writer
	// Namespace is the CloudWatch namespace, e.g. "agentgate/ControlPlane".
	Namespace string
	// Service is added as the "Service" dimension, e.g. "configpublisher".
	Service string
	// Now returns the timestamp; default time.Now.
	Now func() time.Time

	mu sync.Mutex
}

// NewMetrics returns EMF metrics on stdout.
func NewMetrics(namespace, service string) *Metrics {
	return &Metrics{W: os.Stdout, Namespace: namespace, Service: service}
}

// Count records n of the counter name, with the Service dimension and the
// extra dimensions dims (keep their values bounded: reasons, not IDs).
func (m *Metrics) Count(name string, n int, dims map[string]string) {
	if m == nil || m.W == nil {
		return
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	keys := []string{"Service"}
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys[1:])
	line := map[string]any{
		"_aws": map[string]any{
			"Timestamp": now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  m.Namespace,
				"Dimensions": [][]string{keys},
				"Metrics":    []any{map[string]string{"Name": name, "Unit": "Count"}},
			}},
		},
		"Service": m.Service,
		name:      n,
	}
	for k, v := range dims {
		line[k] = v
	}
	b, err := json.Marshal(line)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.W.Write(append(b, '\n'))
}
