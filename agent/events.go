package agent

import (
	"time"
)

// Step names for Event.
const (
	StepCredentials = "credentials"
	StepPresign     = "presign"
	StepResolve     = "resolve"
	StepTCP         = "tcp"
	StepUpgrade     = "tls+websocket"
	StepTLS         = "tls"
	StepConnect     = "mqtt-connect"
	StepSubscribe   = "subscribe"
	StepConfig      = "config"
	// StepStatus: the status message (Config.ClientVersion) was published
	// on a new connection, or why not.
	StepStatus     = "status"
	StepDisconnect = "disconnected"
)

// Event reports one step: Err is nil on success.
type Event struct {
	// Step is one of the Step constants.
	Step string
	// Attempt counts connection attempts since the last loss of connection
	// (0 is the first attempt).
	Attempt int
	// Detail is the address dialled (StepTCP) or what the step did.
	Detail string
	// Err is why the step failed; nil when it succeeded.
	Err error
	// Time is when the step ended.
	Time time.Time
}

// event reports one step to OnEvent and the log.
func (a *Agent) event(step, detail string, err error) {
	a.mu.Lock()
	attempt := a.attempt
	a.mu.Unlock()
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(Event{Step: step, Attempt: attempt, Detail: detail, Err: err, Time: time.Now()})
	}
	if err != nil {
		a.log.Warn("agent step failed", "step", step, "attempt", attempt, "detail", detail, "err", err)
	} else {
		a.log.Debug("agent step", "step", step, "attempt", attempt, "detail", detail)
	}
}
