//go:build linux

package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/netpath"
	layout "github.com/agentgate/agentgate/contract/presence"
	"github.com/agentgate/agentgate/contract/status"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/lambda/internal/presence"
)

func TestMain(m *testing.M) {
	code := m.Run()
	agentlab.Cleanup()
	os.Exit(code)
}

// statusRule is the lab's agentgate_presence_status rule: a mochi hook
// that applies contract/status's FROM, SELECT and WHERE to each publish
// before its PUBACK and invokes the Lambda's handler with the record.
type statusRule struct {
	mqtt.HookBase
	invoke  func(context.Context, []byte) error
	mu      sync.Mutex
	invoked int
	errs    []error
}

func (h *statusRule) ID() string           { return "presence-status-rule" }
func (h *statusRule) Provides(b byte) bool { return b == mqtt.OnPublish }
func (h *statusRule) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	customer, thing, ok := status.Route(pk.TopicName)
	if !ok {
		return pk, nil
	}
	rec, matched, err := status.Select(pk.Payload, customer, thing, time.Now())
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && matched {
		h.invoked++
		err = h.invoke(context.Background(), rec)
	}
	if err != nil {
		h.errs = append(h.errs, err)
	}
	return pk, nil
}

// TestAgentStatusReachesThePresenceTable: the reference agent's status,
// through the relay and broker, the rule's mapping and the Lambda's
// handler (real SDK clients against the IoT and DynamoDB stand-ins), puts
// its client version on its row. A vendor's own status without a version
// invokes nothing; a hostile version is refused and changes nothing.
func TestAgentStatusReachesThePresenceTable(t *testing.T) {
	l, err := agentlab.Start(t.TempDir(), agentlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	things := awsstandin.Start()
	defer things.Close()
	things.AddThing(agentlab.ThingName, agentlab.CustomerID)
	ddb := awsstandin.StartDynamoDB()
	defer ddb.Close()
	ddb.CreateTableWithSortKey("presence", presence.KeyCustomer, presence.KeyThing)
	h := &presence.Handler{
		Types: &thingTypes{iot: iot.NewFromConfig(awsstandin.Config(), func(o *iot.Options) { o.BaseEndpoint = aws.String(things.IoTURL) })},
		Store: &presence.DynamoDB{Table: "presence", Client: dynamodb.NewFromConfig(awsstandin.Config(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ddb.URL) })},
	}
	var refused atomic.Int32
	fn := handler(slog.New(slog.NewTextHandler(io.Discard, nil)), func() { refused.Add(1) }, h)
	rule := &statusRule{invoke: func(ctx context.Context, rec []byte) error { return fn(ctx, rec) }}
	if err := l.Broker.AddHook(rule, nil); err != nil {
		t.Fatal(err)
	}

	announced := make(chan error, 4)
	a, err := agent.New(agent.Config{
		CustomerID: agentlab.CustomerID, ThingName: agentlab.ThingName, ClientVersion: "2.0.1",
		IoTEndpoint: agentlab.IoTHost, CredentialsEndpoint: agentlab.CredsHost, RoleAlias: agentlab.RoleAlias,
		Certificate: l.AgentCert, RootCAs: l.CA.Pool,
		Dialer:    &netpath.Dialer{RelayName: agentlab.RelayName, RelayPort: l.RelayPort, Resolver: l.DNS.Resolver(), Timeout: 2 * time.Second},
		KeepAlive: 30 * time.Second, BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second, ConnectTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEvent: func(e agent.Event) {
			if e.Step == agent.StepStatus {
				select {
				case announced <- e.Err:
				default:
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case err := <-announced:
		if err != nil {
			t.Fatalf("announcement: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no announcement within 60 s")
	}
	// The rule ran before the PUBACK, so the row is written by now.
	version := func() string {
		row := ddb.Item("presence", agentlab.CustomerID, agentlab.ThingName)
		if row == nil || row[layout.AttrClientVersion].S == nil || row[layout.AttrClientVersionAt].N == nil {
			t.Fatalf("row %v has no client version", row)
		}
		return *row[layout.AttrClientVersion].S
	}
	if v := version(); v != "2.0.1" {
		t.Fatalf("clientVersion %q, want 2.0.1", v)
	}

	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := a.Publish(pctx, status.Subject, []byte(`{"appliedVersion":3,"sha256":"ab"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(pctx, status.Subject, []byte(`{"version":"9.9.9\n<script>","connectedAt":1}`)); err != nil {
		t.Fatal(err)
	}
	rule.mu.Lock()
	invoked, errs := rule.invoked, rule.errs
	rule.mu.Unlock()
	if invoked != 2 || len(errs) != 0 || refused.Load() != 1 {
		t.Errorf("%d invocations (want 2: the announcement and the hostile one), errors %v, %d refused (want 1)", invoked, errs, refused.Load())
	}
	if v := version(); v != "2.0.1" {
		t.Errorf("clientVersion %q after a hostile status, want 2.0.1", v)
	}
}
