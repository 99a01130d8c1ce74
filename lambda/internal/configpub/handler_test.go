package configpub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/lambdakit"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

func TestAgentObjectIsPublishedRetainedToItsExactTopic(t *testing.T) {
	e := newEnv(t, fastRetries)
	e.aws.AddThing("printer-7", "acme")
	var q queue
	q.add(e.put(artifacts.AgentConfigKey("acme", "printer-7"), `{ "interval": 30 }`, t0))
	q.drain(t, e)

	got, ok := e.retained(t, topics.ConfigTopic("acme", "printer-7"))
	if !ok {
		t.Fatalf("nothing retained; topics: %v; logs:\n%s", e.aws.RetainedTopics(), e.logs)
	}
	if got.Version != t0.UnixMilli() || string(got.Config) != `{"interval":30}` || got.IssuedAt != "2026-11-01T10:00:00Z" {
		t.Errorf("envelope = %+v", got)
	}
	if topicsHeld := e.aws.RetainedTopics(); len(topicsHeld) != 1 {
		t.Errorf("retained topics %v; want only the agent's config topic", topicsHeld)
	}
	if !strings.Contains(e.metrics.String(), `"ConfigPublished":1`) {
		t.Errorf("no ConfigPublished EMF metric:\n%s", e.metrics)
	}
}

func TestDefaultFansOutPerAgentAndAgentObjectWins(t *testing.T) {
	e := newEnv(t, fastRetries)
	for _, a := range []string{"a1", "a2", "a3"} {
		e.aws.AddThing(a, "acme")
	}
	e.aws.AddThing("other-1", "globex")
	var q queue
	q.add(e.put(artifacts.AgentConfigKey("acme", "a2"), `{"own":true}`, t0))
	q.drain(t, e)
	q.add(e.put(artifacts.DefaultConfigKey("acme"), `{"default":1}`, t0.Add(time.Minute)))
	q.drain(t, e)

	for _, a := range []string{"a1", "a3"} {
		got, ok := e.retained(t, topics.ConfigTopic("acme", a))
		if !ok || string(got.Config) != `{"default":1}` || got.Version != t0.Add(time.Minute).UnixMilli() {
			t.Errorf("%s: retained %+v (present %v), want the default", a, got, ok)
		}
	}
	if got, _ := e.retained(t, topics.ConfigTopic("acme", "a2")); string(got.Config) != `{"own":true}` {
		t.Errorf("a2 has its own object but got %s from the default fan-out", got.Config)
	}
	if _, ok := e.aws.Retained(topics.ConfigTopic("globex", "other-1")); ok {
		t.Error("another customer's agent received acme's default")
	}
	if n := e.aws.Count("SendMessageBatch"); n != 1 {
		t.Errorf("SendMessageBatch calls = %d, want 1 (3 agents, batches of 10)", n)
	}
}

func TestInvalidInputIsRejectedCountedAndNeverPublished(t *testing.T) {
	e := newEnv(t, fastRetries)
	e.aws.AddThing("a1", "acme")
	e.aws.AddThing("g1", "globex")
	big := `{"blob":"` + strings.Repeat("x", topics.MaxMessageBytes) + `"}`
	almost := `{"blob":"` + strings.Repeat("x", topics.MaxMessageBytes-200) + `"}` // fits as a doc, not as an envelope... or does
	cases := []struct {
		name, reason string
		body         func() string
	}{
		{"bad JSON", ReasonBadJSON, func() string { return e.put(artifacts.AgentConfigKey("acme", "a1"), `{"interval": 30`, t0) }},
		{"not an object", ReasonNotObject, func() string { return e.put(artifacts.AgentConfigKey("acme", "a1"), `[1,2]`, t0.Add(time.Second)) }},
		{"oversize object", ReasonOversize, func() string { return e.put(artifacts.AgentConfigKey("acme", "a1"), big, t0.Add(2*time.Second)) }},
		{"unknown agent", ReasonUnknownAgent, func() string { return e.put(artifacts.AgentConfigKey("acme", "ghost"), `{}`, t0) }},
		{"agent of another customer", ReasonUnknownAgent, func() string { return e.put(artifacts.AgentConfigKey("acme", "g1"), `{}`, t0) }},
		{"unknown customer", ReasonUnknownCustomer, func() string { return e.put(artifacts.DefaultConfigKey("nobody"), `{}`, t0) }},
		{"bad default JSON", ReasonBadJSON, func() string { return e.put(artifacts.DefaultConfigKey("globex"), `{,}`, t0) }},
		{"key outside the layout", ReasonBadKey, func() string { return s3EventBody("ObjectCreated:Put", "configs/acme/a/b.json", "v1", t0) }},
		{"not an S3 event", ReasonBadEvent, func() string { return `{"hello":"world"}` }},
		{"not JSON at all", ReasonBadEvent, func() string { return `<xml/>` }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := strings.Count(e.metrics.String(), `"Reason":"`+c.reason+`"`)
			var q queue
			q.add(c.body())
			resp := q.runBatch(t, e)
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("invalid input reported as a failure (SQS would retry it): %+v", resp.BatchItemFailures)
			}
			if n := e.aws.Count("Publish"); n != 0 {
				t.Errorf("%d publishes for invalid input", n)
			}
			if after := strings.Count(e.metrics.String(), `"Reason":"`+c.reason+`"`); after != before+1 {
				t.Errorf("ConfigRejected{Reason=%s} counted %d times, want 1\nlogs:\n%s", c.reason, after-before, e.logs)
			}
		})
	}
	if !strings.Contains(e.logs.String(), `"msg":"configuration rejected, nothing published"`) {
		t.Errorf("no clear rejection log line:\n%s", e.logs)
	}
	// A document just under the limit may still produce an envelope over it;
	// whichever way, BuildEnvelope never returns more than the limit.
	if b, _, err := BuildEnvelope([]byte(almost), 1, t0); err == nil && len(b) > topics.MaxMessageBytes {
		t.Errorf("envelope of %d bytes accepted", len(b))
	}
}

func TestOnlyTheFailedMessagesAreReported(t *testing.T) {
	e := newEnv(t, fastRetries)
	var bodies []string
	for i := range 10 {
		a := fmt.Sprintf("a%d", i)
		e.aws.AddThing(a, "acme")
		bodies = append(bodies, e.put(artifacts.AgentConfigKey("acme", a), fmt.Sprintf(`{"n":%d}`, i), t0))
	}
	broken := map[string]int{ // topic → status answered on every attempt
		topics.ConfigTopic("acme", "a3"): http.StatusInternalServerError,
		topics.ConfigTopic("acme", "a7"): http.StatusTooManyRequests,
	}
	var mu sync.Mutex
	tries := map[string]int{}
	e.aws.SetFault(func(op, target string) awsstandin.Fault {
		mu.Lock()
		defer mu.Unlock()
		if op != "Publish" {
			return awsstandin.Fault{}
		}
		tries[target]++
		if s, ok := broken[target]; ok {
			return awsstandin.Fault{Status: s}
		}
		switch target {
		case topics.ConfigTopic("acme", "a1"): // throttled twice, then fine
			if tries[target] <= 2 {
				return awsstandin.Fault{Status: http.StatusTooManyRequests}
			}
		case topics.ConfigTopic("acme", "a5"): // first attempt hangs past the attempt timeout
			if tries[target] == 1 {
				return awsstandin.Fault{Delay: 2 * fastRetries.AttemptTimeout}
			}
		case topics.ConfigTopic("acme", "a9"): // one 503
			if tries[target] == 1 {
				return awsstandin.Fault{Status: http.StatusServiceUnavailable}
			}
		}
		return awsstandin.Fault{}
	})
	var q queue
	q.add(bodies...)
	resp := q.runBatch(t, e)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	want := []string{"msg-4", "msg-8"} // a3 and a7
	if fmt.Sprint(sortStrings(failed)) != fmt.Sprint(want) {
		t.Errorf("BatchItemFailures = %v, want exactly %v", failed, want)
	}
	for i := range 10 {
		_, ok := e.aws.Retained(topics.ConfigTopic("acme", fmt.Sprintf("a%d", i)))
		if wantOK := i != 3 && i != 7; ok != wantOK {
			t.Errorf("a%d retained = %v, want %v", i, ok, wantOK)
		}
	}
	mu.Lock()
	if tries[topics.ConfigTopic("acme", "a7")] != fastRetries.MaxAttempts {
		t.Errorf("a7 (always 429) tried %d times, want MaxAttempts=%d", tries[topics.ConfigTopic("acme", "a7")], fastRetries.MaxAttempts)
	}
	mu.Unlock()
	// Once the faults clear, the redelivered messages succeed.
	e.aws.SetFault(nil)
	q.maxReceive = 5
	q.drain(t, e)
	for _, a := range []string{"a3", "a7"} {
		if _, ok := e.aws.Retained(topics.ConfigTopic("acme", a)); !ok {
			t.Errorf("%s not retained after redelivery", a)
		}
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// Random 429s, 5xx and timeouts on every API; SQS redelivery converges every
// agent to the latest default, and a later change to a newer one.
func TestFanoutConvergesUnderRandomFaults(t *testing.T) {
	e := newEnv(t, fastRetries)
	const agents = 200
	for i := range agents {
		e.aws.AddThing(fmt.Sprintf("agent-%03d", i), "acme")
	}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	e.aws.SetFault(func(op, target string) awsstandin.Fault {
		mu.Lock()
		defer mu.Unlock()
		switch r := rng.IntN(100); {
		case r < 15:
			return awsstandin.Fault{Status: http.StatusTooManyRequests}
		case r < 20:
			return awsstandin.Fault{Status: http.StatusInternalServerError}
		case r < 21:
			return awsstandin.Fault{Delay: 2 * fastRetries.AttemptTimeout}
		}
		return awsstandin.Fault{}
	})
	q := queue{maxReceive: 50}
	for round, doc := range []string{`{"round":1}`, `{"round":2}`} {
		at := t0.Add(time.Duration(round) * time.Hour)
		q.add(e.put(artifacts.DefaultConfigKey("acme"), doc, at))
		q.drain(t, e)
		if len(q.dlq) != 0 {
			t.Fatalf("round %d: %d messages dead-lettered", round+1, len(q.dlq))
		}
		for i := range agents {
			got, ok := e.retained(t, topics.ConfigTopic("acme", fmt.Sprintf("agent-%03d", i)))
			if !ok || got.Version != at.UnixMilli() || string(got.Config) != doc {
				t.Fatalf("round %d: agent-%03d holds %+v (present %v), want version %d %s", round+1, i, got, ok, at.UnixMilli(), doc)
			}
		}
	}
	if e.aws.Count("Publish fault") == 0 {
		t.Error("no faults were injected; the test proves nothing")
	}
}

func TestReplayingAnEventChangesNothing(t *testing.T) {
	e := newEnv(t, fastRetries)
	e.aws.AddThing("a1", "acme")
	e.aws.AddThing("a2", "acme")
	first := e.put(artifacts.AgentConfigKey("acme", "a1"), `{"v":1}`, t0)
	var q queue
	q.add(first)
	q.drain(t, e)
	before, _ := e.aws.Retained(topics.ConfigTopic("acme", "a1"))
	q.add(first)
	q.drain(t, e)
	after, _ := e.aws.Retained(topics.ConfigTopic("acme", "a1"))
	if !bytes.Equal(before, after) {
		t.Errorf("replay changed the retained message:\n%s\n%s", before, after)
	}

	// A newer version lands; replaying the old event must not regress it.
	q.add(e.put(artifacts.AgentConfigKey("acme", "a1"), `{"v":2}`, t0.Add(time.Minute)))
	q.drain(t, e)
	newer, _ := e.aws.Retained(topics.ConfigTopic("acme", "a1"))
	q.add(first)
	q.drain(t, e)
	got, _ := e.retained(t, topics.ConfigTopic("acme", "a1"))
	if after, _ := e.aws.Retained(topics.ConfigTopic("acme", "a1")); !bytes.Equal(after, newer) || string(got.Config) != `{"v":2}` {
		t.Errorf("stale replay regressed the retained config to %s", got.Config)
	}

	// Same for a default fan-out replayed twice.
	def := e.put(artifacts.DefaultConfigKey("acme"), `{"d":1}`, t0.Add(2*time.Minute))
	q.add(def)
	q.drain(t, e)
	d1, _ := e.aws.Retained(topics.ConfigTopic("acme", "a2"))
	q.add(def, def)
	q.drain(t, e)
	if d2, _ := e.aws.Retained(topics.ConfigTopic("acme", "a2")); !bytes.Equal(d1, d2) {
		t.Errorf("replayed fan-out changed a2's retained message:\n%s\n%s", d1, d2)
	}
}

func TestDeletingAgentObjectFallsBackToDefaultWithANewerVersion(t *testing.T) {
	e := newEnv(t, fastRetries)
	e.aws.AddThing("a1", "acme")
	var q queue
	q.add(e.put(artifacts.DefaultConfigKey("acme"), `{"d":1}`, t0))
	q.drain(t, e)
	q.add(e.put(artifacts.AgentConfigKey("acme", "a1"), `{"own":1}`, t0.Add(time.Hour)))
	q.drain(t, e)
	own, _ := e.retained(t, topics.ConfigTopic("acme", "a1"))
	del := t0.Add(2*time.Hour + 123*time.Millisecond)
	marker := e.aws.DeleteObject(testBucket, artifacts.AgentConfigKey("acme", "a1"), del)
	q.add(s3EventBody("ObjectRemoved:DeleteMarkerCreated", artifacts.AgentConfigKey("acme", "a1"), marker, del))
	q.drain(t, e)
	got, _ := e.retained(t, topics.ConfigTopic("acme", "a1"))
	if string(got.Config) != `{"d":1}` || !got.Newer(own) || got.Version != del.UnixMilli() {
		t.Errorf("after delete: %+v; want the default with version %d (newer than %d)", got, del.UnixMilli(), own.Version)
	}
}

func TestDataEndpointDiscovery(t *testing.T) {
	e := newEnv(t, fastRetries)
	got, err := lambdakit.ResolveDataEndpoint(t.Context(), "", e.h.IoT)
	if err != nil || got != "https://"+e.aws.Endpoint {
		t.Errorf("discovered %q, %v", got, err)
	}
	if got, _ := lambdakit.ResolveDataEndpoint(t.Context(), "abc-ats.iot.eu-west-1.amazonaws.com", e.h.IoT); got != "https://abc-ats.iot.eu-west-1.amazonaws.com" {
		t.Errorf("configured endpoint = %q", got)
	}
	if n := e.aws.Count("DescribeEndpoint"); n != 1 {
		t.Errorf("DescribeEndpoint called %d times; a configured endpoint needs none", n)
	}
}

// Attack: a fan-out message is only a queue message; anyone who can send to
// the config queue could ask for the customer default on
// <customer>/<any valid name>/config. The publisher checks the registry
// first: a thing that does not exist, or is of another customer's type, is
// rejected with a clear error, counted and never published; a throttled
// DescribeThing is retried like every other call.
func TestForgedFanoutMessagesAreCheckedAgainstTheRegistry(t *testing.T) {
	e := newEnv(t, fastRetries)
	e.aws.AddThing("a1", "acme")
	e.aws.AddThing("g1", "globex")
	var q queue
	q.add(e.put(artifacts.DefaultConfigKey("acme"), `{"d":1}`, t0))
	q.drain(t, e)
	if _, ok := e.aws.Retained(topics.ConfigTopic("acme", "a1")); !ok {
		t.Fatalf("the real fan-out did not reach a1; logs:\n%s", e.logs)
	}
	forged := func(customer, agent string) string {
		b, _ := json.Marshal(FanoutMessage{Kind: FanoutKind, Customer: customer, Agent: agent})
		return string(b)
	}
	for _, c := range []struct{ name, customer, agent, want string }{
		{"no such thing", "acme", "ghost", `agent \"ghost\" does not exist`},
		{"thing of another customer", "acme", "g1", `agent \"g1\" belongs to thing type \"globex\", not customer \"acme\"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := strings.Count(e.metrics.String(), `"Reason":"`+ReasonUnknownAgent+`"`)
			publishes := e.aws.Count("Publish")
			var q queue
			q.add(forged(c.customer, c.agent))
			resp := q.runBatch(t, e)
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("forged fan-out reported as a failure (SQS would retry it): %+v", resp.BatchItemFailures)
			}
			if n := e.aws.Count("Publish") - publishes; n != 0 {
				t.Errorf("%d publishes for a forged fan-out message", n)
			}
			if _, ok := e.aws.Retained(topics.ConfigTopic(c.customer, c.agent)); ok {
				t.Errorf("the default was retained on %s", topics.ConfigTopic(c.customer, c.agent))
			}
			if after := strings.Count(e.metrics.String(), `"Reason":"`+ReasonUnknownAgent+`"`); after != before+1 {
				t.Errorf("ConfigRejected{Reason=%s} counted %d times, want 1", ReasonUnknownAgent, after-before)
			}
			if !strings.Contains(e.logs.String(), c.want) {
				t.Errorf("no rejection naming the cause %s in the logs:\n%s", c.want, e.logs)
			}
		})
	}

	// Throttled registry lookups are retried (SDK retries, then SQS), and
	// the real agent still gets its configuration.
	var mu sync.Mutex
	throttled := 0
	e.aws.SetFault(func(op, target string) awsstandin.Fault {
		mu.Lock()
		defer mu.Unlock()
		if op == "DescribeThing" && throttled < fastRetries.MaxAttempts+1 {
			throttled++
			return awsstandin.Fault{Status: http.StatusTooManyRequests}
		}
		return awsstandin.Fault{}
	})
	e.aws.AddThing("a2", "acme")
	q = queue{}
	q.add(forged("acme", "a2"))
	if resp := q.runBatch(t, e); len(resp.BatchItemFailures) != 1 {
		t.Errorf("a fan-out whose DescribeThing stays throttled beyond the SDK's retries must fail for SQS to redeliver; got %+v", resp.BatchItemFailures)
	}
	q.drain(t, e)
	if got, ok := e.retained(t, topics.ConfigTopic("acme", "a2")); !ok || string(got.Config) != `{"d":1}` {
		t.Errorf("after throttling cleared a2 holds %+v (present %v), want the default", got, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if throttled != fastRetries.MaxAttempts+1 {
		t.Errorf("DescribeThing throttled %d times, want %d (the test injected nothing)", throttled, fastRetries.MaxAttempts+1)
	}
}
