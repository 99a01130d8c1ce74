package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/agent/agenterr"
	"github.com/agentgate/agentgate/contract/command"
)

// CommandHandler executes one command: args is the request's Args (may be
// nil). The output, a JSON value or nil, becomes the result's Output; an
// error makes the result StatusFailed with the error's text. ctx ends at
// the command's deadline or when the agent stops.
type CommandHandler func(ctx context.Context, args json.RawMessage) (json.RawMessage, error)

// MaxRememberedCommands bounds how many command IDs an agent remembers to
// execute each at most once; the oldest finished one is forgotten first.
// A repeat of a forgotten ID would run again: at 1,024 the backend would
// have to send that many newer commands to one agent before repeating.
const MaxRememberedCommands = 1024

// Step names of command events (Event.Step).
const (
	StepCommand = "command"
	StepResult  = "command-result"
)

// commands is an agent's handler table and its memory of command IDs.
type commands struct {
	mu       sync.Mutex
	handlers map[string]CommandHandler
	seen     map[string]*commandState
	order    []string // IDs in arrival order, for forgetting the oldest
}

// commandState is one remembered ID: running until result is set.
type commandState struct {
	result []byte
}

// HandleCommand registers h for commands named name, replacing an earlier
// one. Register handlers before Run; a command whose name has no handler is
// answered with StatusUnknown.
func (a *Agent) HandleCommand(name string, h CommandHandler) error {
	if err := command.ValidateName(name); err != nil {
		return err
	}
	if h == nil {
		return errors.New("nil command handler")
	}
	a.cmds.mu.Lock()
	defer a.cmds.mu.Unlock()
	if a.cmds.handlers == nil {
		a.cmds.handlers = map[string]CommandHandler{}
	}
	a.cmds.handlers[name] = h
	return nil
}

// commandTopic is the agent's exact command topic.
func (a *Agent) commandTopic() string {
	return command.RequestTopic(a.cfg.CustomerID, a.cfg.ThingName)
}

// commandReceived handles one message on the command topic. It never
// blocks the receive path: handlers and result publishing run on their own
// goroutine.
func (a *Agent) commandReceived(p *paho.Publish) {
	now := a.cfg.Now()
	req, err := command.ParseRequest(p.Payload, now)
	id := req.ID
	if command.ValidateID(id) != nil && p.Properties != nil && command.ValidateID(string(p.Properties.CorrelationData)) == nil {
		id = string(p.Properties.CorrelationData)
	}
	if command.ValidateID(id) != nil {
		// Nothing to correlate an answer with: drop it.
		a.event(StepCommand, "", fmt.Errorf("command without a usable id dropped: %w", err))
		return
	}
	if p.Properties != nil && p.Properties.ResponseTopic != "" && p.Properties.ResponseTopic != a.resultTopic() {
		// The result goes to the agent's own up/result whatever the request
		// says: an agent never publishes outside its own up/ space.
		a.event(StepCommand, fmt.Sprintf("%s: response topic %.80q ignored; answering on %s", id, p.Properties.ResponseTopic, a.resultTopic()), nil)
	}

	a.cmds.mu.Lock()
	if st, ok := a.cmds.seen[id]; ok {
		res := st.result
		a.cmds.mu.Unlock()
		if res == nil {
			a.event(StepCommand, id+": repeat while running, ignored", nil)
			return
		}
		a.event(StepCommand, id+": repeat, answered from memory", nil)
		go a.deliverResult(id, res)
		return
	}
	if !a.cmds.remember(id) {
		a.cmds.mu.Unlock()
		a.answer(id, command.Result{ID: id, Status: command.StatusRejected, Error: fmt.Sprintf("%d commands already running", MaxRememberedCommands)}, false)
		return
	}
	h := a.cmds.handlers[req.Name]
	a.cmds.mu.Unlock()

	switch {
	case err != nil:
		a.answer(id, command.Result{ID: id, Status: command.StatusRejected, Error: err.Error()}, true)
	case !now.Before(req.Deadline):
		a.answer(id, command.Result{ID: id, Status: command.StatusExpired, Error: "received at " + now.UTC().Format(time.RFC3339Nano) + ", after the deadline " + req.Deadline.UTC().Format(time.RFC3339Nano)}, true)
	case h == nil:
		a.answer(id, command.Result{ID: id, Status: command.StatusUnknown, Error: "no handler for command " + req.Name}, true)
	default:
		a.event(StepCommand, id+": "+req.Name+" started", nil)
		go a.execute(id, req, h)
	}
}

// remember records id as running, forgetting the oldest finished IDs
// beyond MaxRememberedCommands. It reports false when every remembered ID
// is still running. The caller holds c.mu.
func (c *commands) remember(id string) bool {
	if c.seen == nil {
		c.seen = map[string]*commandState{}
	}
	for len(c.order) >= MaxRememberedCommands {
		evicted := false
		for i, old := range c.order {
			if c.seen[old].result != nil {
				delete(c.seen, old)
				c.order = append(c.order[:i], c.order[i+1:]...)
				evicted = true
				break
			}
		}
		if !evicted {
			return false
		}
	}
	c.seen[id] = &commandState{}
	c.order = append(c.order, id)
	return true
}

// execute runs a handler until its deadline and answers with its outcome.
func (a *Agent) execute(id string, req command.Request, h CommandHandler) {
	a.mu.Lock()
	parent := a.runCtx
	a.mu.Unlock()
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithDeadline(parent, req.Deadline)
	defer cancel()
	res := command.Result{ID: id, Status: command.StatusOK}
	out, err := runHandler(ctx, h, req.Args)
	switch {
	case err != nil:
		res.Status, res.Error = command.StatusFailed, err.Error()
	case len(out) > 0 && !json.Valid(out):
		res.Status, res.Error = command.StatusFailed, "handler output is not valid JSON"
	default:
		res.Output = out
	}
	a.event(StepCommand, fmt.Sprintf("%s: %s finished: %s", id, req.Name, res.Status), nil)
	a.answer(id, res, true)
}

// runHandler calls h, turning a panic into an error.
func runHandler(ctx context.Context, h CommandHandler, args json.RawMessage) (out json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h(ctx, args)
}

// answer encodes res, stores it for repeats of id (store) and delivers it.
func (a *Agent) answer(id string, res command.Result, store bool) {
	b, err := res.Marshal()
	if err != nil {
		res = command.Result{ID: id, Status: command.StatusFailed, Error: "result not encodable: " + err.Error()}
		b, _ = res.Marshal()
	}
	if store {
		a.cmds.mu.Lock()
		if st, ok := a.cmds.seen[id]; ok {
			repeat := res
			repeat.Repeat = true
			st.result, _ = repeat.Marshal()
		}
		a.cmds.mu.Unlock()
	}
	go a.deliverResult(id, b)
}

// resultTopic is the agent's exact result topic.
func (a *Agent) resultTopic() string {
	return command.ResultTopic(a.cfg.CustomerID, a.cfg.ThingName)
}

// deliverResult publishes a result at QoS 1 on up/result with the ID as
// correlation data, retrying with backoff across reconnects until the
// broker acknowledges it, refuses it, or the agent stops. A repeat may
// reach the backend twice; it keeps the first result per ID.
func (a *Agent) deliverResult(id string, payload []byte) {
	a.mu.Lock()
	ctx := a.runCtx
	a.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	for n := 0; ; n++ {
		pctx, cancel := context.WithTimeout(ctx, a.cfg.ConnectTimeout)
		err := a.publish(pctx, &paho.Publish{QoS: 1, Payload: payload, Properties: &paho.PublishProperties{
			CorrelationData: []byte(id), ContentType: "application/json"}}, command.ResultSubject)
		cancel()
		a.event(StepResult, id, err)
		if err == nil || errors.Is(err, agenterr.ErrRefused) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(Backoff(a.cfg.BackoffBase, a.cfg.BackoffMax, n)):
		}
	}
}
