package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/contract/envelope"
	"github.com/agentgate/agentgate/contract/topics"
)

// Current returns the last applied envelope (from the state file at start).
func (a *Agent) Current() (envelope.Envelope, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.current, a.current.Version != 0
}

// HandleConfig is what the agent does with a message on its config topic;
// exported for tests and for vendors that receive the envelope another way.
// It returns whether the envelope was applied.
func (a *Agent) HandleConfig(payload []byte) (bool, error) {
	if len(payload) > topics.MaxMessageBytes {
		return false, fmt.Errorf("config message is %d bytes; IoT messages are at most %d", len(payload), topics.MaxMessageBytes)
	}
	env, err := envelope.Parse(payload)
	if err != nil {
		return false, err
	}
	a.applyMu.Lock()
	defer a.applyMu.Unlock()
	if cur, _ := a.Current(); !env.Newer(cur) {
		return false, nil
	}
	if a.cfg.OnConfig != nil {
		if err := a.cfg.OnConfig(env); err != nil {
			return false, &applyError{version: env.Version, err: err}
		}
	}
	a.mu.Lock()
	a.configRetries = 0
	a.mu.Unlock()
	if err := saveState(a.cfg.StateFile, payload); err != nil {
		return false, err
	}
	a.mu.Lock()
	a.current = env
	a.mu.Unlock()
	return true, nil
}

// applyError is OnConfig's failure: the only config error worth retrying
// (a malformed or mismatched envelope stays malformed).
type applyError struct {
	version int64
	err     error
}

func (e *applyError) Error() string {
	return fmt.Sprintf("applying config version %d: %v", e.version, e.err)
}
func (e *applyError) Unwrap() error { return e.err }

func (a *Agent) handleConfig(payload []byte) {
	applied, err := a.HandleConfig(payload)
	switch {
	case err != nil:
		a.event(StepConfig, "", err)
		var ae *applyError
		if errors.As(err, &ae) {
			a.retryConfig()
		}
	case applied:
		cur, _ := a.Current()
		a.event(StepConfig, fmt.Sprintf("applied version %d sha256 %s", cur.Version, cur.SHA256), nil)
	default:
		cur, _ := a.Current()
		a.event(StepConfig, fmt.Sprintf("ignored: not newer than version %d", cur.Version), nil)
	}
}

// retryConfig is queued after OnConfig failed: after a backoff it
// subscribes to the exact config topic again, which makes the broker send
// the retained config again (retain handling 0), so the newest config is
// offered to OnConfig once more.
func (a *Agent) retryConfig() {
	a.mu.Lock()
	if a.configRetryPending || a.cm == nil || a.runCtx == nil {
		a.mu.Unlock()
		return
	}
	a.configRetryPending = true
	n := a.configRetries
	a.configRetries++
	cm, ctx := a.cm, a.runCtx
	a.mu.Unlock()
	go func() {
		delay := a.backoff(n)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		// Clear before subscribing: the resent config may arrive (and fail
		// again) before the SUBACK is handled here, and must queue the
		// next retry.
		a.mu.Lock()
		a.configRetryPending = false
		a.mu.Unlock()
		err := a.subscribeOnce(ctx, cm, []paho.SubscribeOptions{{Topic: a.ConfigTopic(), QoS: 1}})
		a.event(StepSubscribe, fmt.Sprintf("%s again after a failed OnConfig (retry %d)", a.ConfigTopic(), n+1), err)
	}()
}
