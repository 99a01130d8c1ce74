package agent

import (
	"context"

	"github.com/eclipse/paho.golang/paho"

	"github.com/agentgate/agentgate/contract/status"
)

// announce publishes the agent's status (Config.ClientVersion) once for
// connection conn, after its subscriptions stand: at QoS 1 on
// <customer>/<thing>/up/status through the usual publish path. A
// subscription retried on the same connection does not announce again; a
// failure is reported as a StepStatus event and not retried, since the
// next connection announces anew.
func (a *Agent) announce(ctx context.Context, conn uint64) {
	if a.cfg.ClientVersion == "" {
		return
	}
	a.mu.Lock()
	if a.conn != conn || a.announced >= conn {
		a.mu.Unlock()
		return
	}
	a.announced = conn
	at := a.connectedAt
	a.mu.Unlock()
	payload, err := status.Status{Version: a.cfg.ClientVersion, ConnectedAt: at.UnixMilli()}.Marshal()
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, a.cfg.ConnectTimeout)
		err = a.publish(pctx, &paho.Publish{QoS: 1, Payload: payload, Properties: &paho.PublishProperties{ContentType: "application/json"}}, status.Subject)
		cancel()
	}
	a.event(StepStatus, a.cfg.ClientVersion, err)
}
