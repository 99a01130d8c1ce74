// Package command is what a SaaS backend imports to send agents commands
// and learn their outcome: MQTT 5 request/response over AWS IoT Core at
// QoS 1 (protocol and wire format: package contract/command and
// docs/data-plane.md).
//
// The backend brings its own MQTT 5 connection (an
// *autopaho.ConnectionManager or a *paho.Client of
// github.com/eclipse/paho.golang), subscribes to ResultFilter and routes
// received messages to Sender.Received:
//
//	s := command.NewSender(cm)
//	// in the paho.ClientConfig: OnPublishReceived: {s.Received}
//	// after connecting: subscribe to command.ResultFilter("") at QoS 1
//	res, err := s.Send(ctx, command.Target{Customer: "acme", Thing: "pc-42"},
//		command.Command{Name: "restart", Deadline: time.Now().Add(time.Minute)})
//
// Each command carries an ID: the agent executes an ID at most once and
// answers a repeat with the result it already has, so a caller may resend
// the same Command (same ID) after a timeout without running it twice.
// A command for an agent that is offline waits in the agent's persistent
// session at the broker until the agent returns or the deadline passes
// (the request's Message Expiry); the agent itself refuses one received
// after its deadline (StatusExpired), and Send returns ErrTimeout.
package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	wire "github.com/agentgate/agentgate/contract/command"
	"github.com/agentgate/agentgate/contract/topics"
)

// Result is an agent's answer (contract/command.Result).
type Result = wire.Result

// Status is how a command ended (contract/command.Status).
type Status = wire.Status

// Statuses, as in contract/command.
const (
	StatusOK       = wire.StatusOK
	StatusFailed   = wire.StatusFailed
	StatusUnknown  = wire.StatusUnknown
	StatusExpired  = wire.StatusExpired
	StatusRejected = wire.StatusRejected
)

// DefaultTimeout is the deadline of a Command that sets none.
const DefaultTimeout = 30 * time.Second

// ErrTimeout means no result arrived before the command's deadline: the
// agent was offline, or it ran the command but its result did not arrive
// in time. Resending the same Command (same ID) never runs it twice.
var ErrTimeout = errors.New("no result before the command's deadline")

// Conn is the part of an MQTT 5 connection the sender needs;
// *autopaho.ConnectionManager and *paho.Client implement it.
type Conn interface {
	Publish(ctx context.Context, p *paho.Publish) (*paho.PublishResponse, error)
}

// Target is one agent.
type Target struct {
	Customer, Thing string
}

// Command is what to run.
type Command struct {
	// ID makes the command idempotent; empty picks a random one. Reuse an ID
	// only to resend the same command.
	ID string
	// Name selects the agent's handler.
	Name string
	// Args is the handler's input, a JSON value or nil.
	Args json.RawMessage
	// Deadline: zero means now + DefaultTimeout.
	Deadline time.Time
}

// Sender sends commands and matches results to them. It is safe for
// concurrent use.
type Sender struct {
	conn Conn
	// Now is the clock; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	waiting map[string]chan Result // by resultKey
	late    int
}

// NewSender returns a sender publishing on conn.
func NewSender(conn Conn) *Sender {
	return &Sender{conn: conn, Now: time.Now, waiting: map[string]chan Result{}}
}

// ResultFilter is the topic filter the backend subscribes to (QoS 1) for
// the results of customer's agents, or of every agent when customer is "".
func ResultFilter(customer string) string {
	if customer == "" {
		customer = "+"
	}
	return customer + "/+/" + topics.UpLevel + "/" + wire.ResultSubject
}

func resultKey(customer, thing, id string) string { return customer + "/" + thing + "/" + id }

// Send sends c to t and waits for its result, until the deadline (then
// ErrTimeout) or ctx ends. A result with a status other than StatusOK is
// returned with a nil error: the command reached the agent.
func (s *Sender) Send(ctx context.Context, t Target, c Command) (Result, error) {
	if err := topics.ValidateCustomerID(t.Customer); err != nil {
		return Result{}, err
	}
	if err := topics.ValidateThingName(t.Thing); err != nil {
		return Result{}, err
	}
	now := s.Now()
	req, err := s.request(c, now)
	if err != nil {
		return Result{}, err
	}
	payload, err := req.Marshal(now)
	if err != nil {
		return Result{}, err
	}
	key := resultKey(t.Customer, t.Thing, req.ID)
	ch := make(chan Result, 1)
	s.mu.Lock()
	if _, busy := s.waiting[key]; busy {
		s.mu.Unlock()
		return Result{}, fmt.Errorf("command %s to %s/%s is already waiting for its result", req.ID, t.Customer, t.Thing)
	}
	s.waiting[key] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, key)
		s.mu.Unlock()
	}()

	// Message Expiry: the broker drops the request once the deadline has
	// passed, e.g. while it waits in an offline agent's session.
	expiry := uint32(math.Ceil(req.Deadline.Sub(now).Seconds()))
	expiry = max(expiry, 1)
	ctx, cancel := context.WithDeadline(ctx, req.Deadline)
	defer cancel()
	pr, err := s.conn.Publish(ctx, &paho.Publish{
		Topic: wire.RequestTopic(t.Customer, t.Thing), QoS: 1, Payload: payload,
		Properties: &paho.PublishProperties{
			ResponseTopic:   wire.ResultTopic(t.Customer, t.Thing),
			CorrelationData: []byte(req.ID),
			ContentType:     "application/json",
			MessageExpiry:   &expiry,
		},
	})
	if pr != nil && pr.ReasonCode >= 0x80 {
		return Result{}, fmt.Errorf("command %s to %s/%s refused by the broker: PUBACK reason 0x%02x", req.ID, t.Customer, t.Thing, pr.ReasonCode)
	}
	if err != nil {
		if !s.Now().Before(req.Deadline) {
			return Result{}, fmt.Errorf("command %s to %s/%s: %w (not even acknowledged by the broker)", req.ID, t.Customer, t.Thing, ErrTimeout)
		}
		return Result{}, fmt.Errorf("command %s to %s/%s: %w", req.ID, t.Customer, t.Thing, err)
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && !s.Now().Before(req.Deadline) {
			return Result{}, fmt.Errorf("command %s to %s/%s: %w", req.ID, t.Customer, t.Thing, ErrTimeout)
		}
		return Result{}, ctx.Err()
	}
}

// Outcome is one agent's part of SendAll.
type Outcome struct {
	Result Result
	Err    error
}

// SendAll sends c to every thing of customer concurrently (the same ID to
// each: IDs are per agent) and returns each one's outcome by thing name.
// The backend knows a customer's agents (IoT ListThings by thing type, or
// the presence table).
func (s *Sender) SendAll(ctx context.Context, customer string, things []string, c Command) map[string]Outcome {
	if c.ID == "" {
		c.ID = newID()
	}
	if c.Deadline.IsZero() {
		c.Deadline = s.Now().Add(DefaultTimeout)
	}
	out := make(map[string]Outcome, len(things))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, th := range things {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Send(ctx, Target{Customer: customer, Thing: th}, c)
			mu.Lock()
			out[th] = Outcome{Result: res, Err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// request fills c's defaults.
func (s *Sender) request(c Command, now time.Time) (wire.Request, error) {
	if c.ID == "" {
		c.ID = newID()
	}
	if c.Deadline.IsZero() {
		c.Deadline = now.Add(DefaultTimeout)
	}
	if !c.Deadline.After(now) {
		return wire.Request{}, fmt.Errorf("deadline %s has passed", c.Deadline.UTC().Format(time.RFC3339Nano))
	}
	return wire.Request{ID: c.ID, Name: c.Name, Args: c.Args, Deadline: c.Deadline.UTC().Truncate(time.Millisecond)}, nil
}

// newID is 128 random bits in hex.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// Received handles one message of the result subscription; put it in the
// connection's OnPublishReceived. It claims (true) every message on a
// result topic, matched or not, and leaves (false) any other.
func (s *Sender) Received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	levels := strings.Split(p.Topic, "/")
	if len(levels) != 4 || levels[2] != topics.UpLevel || levels[3] != wire.ResultSubject {
		return false, nil
	}
	customer, thing := levels[0], levels[1]
	res, err := wire.ParseResult(p.Payload)
	if err != nil {
		s.countLate()
		return true, nil // malformed: nothing to match; acknowledged so it is not redelivered
	}
	id := res.ID
	if id == "" && p.Properties != nil {
		id = string(p.Properties.CorrelationData)
	}
	s.mu.Lock()
	ch, ok := s.waiting[resultKey(customer, thing, id)]
	if ok {
		select {
		case ch <- res: // the first result per ID wins; a repeat finds the slot full
		default:
		}
	} else {
		s.late++
	}
	s.mu.Unlock()
	return true, nil
}

func (s *Sender) countLate() {
	s.mu.Lock()
	s.late++
	s.mu.Unlock()
}

// Unmatched counts results that matched no waiting Send: late (after a
// timeout), repeated, malformed or for a command another process sent.
func (s *Sender) Unmatched() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.late
}
