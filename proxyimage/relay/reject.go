//go:build linux

package relay

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/agentgate/agentgate/contract/relayspec"
)

// rejectLevel is the level of a refusal's log line. Floods and load
// balancer probes are counted, not logged above debug. source_over_cap is
// logged: it is how an operator learns that a customer site is larger than
// --max-conns-per-source allows (the fleet's rejects metric and alarm count
// the relayspec.RejectLogMessage lines), and one source can log at most --source-rate of
// them a second, since the rate limit is applied first.
func rejectLevel(reason Reason) slog.Level {
	switch reason {
	case ReasonOverCap, ReasonRateLimited, ReasonClientClosed:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// reject refuses a connection on the agent port. The log line is written
// before the counter moves, so whoever sees the count can already read the
// line.
func (s *Server) reject(c net.Conn, reason Reason, source netip.AddrPort, err error) {
	s.rejectOn(ListenerAgent, c, reason, source, err)
}

// rejectOn is reject for either listener; the admin port's lines carry
// "listener":"admin".
func (s *Server) rejectOn(listener string, c net.Conn, reason Reason, source netip.AddrPort, err error) {
	level := rejectLevel(reason)
	if s.log.Enabled(context.Background(), level) {
		var attrs []slog.Attr
		if listener != ListenerAgent {
			attrs = append(attrs, slog.String(relayspec.LogKeyListener, listener))
		}
		attrs = append(attrs, slog.String(relayspec.LogKeyReason, string(reason)), slog.String("source", source.String()))
		if err != nil {
			attrs = append(attrs, slog.String("err", err.Error()))
		}
		s.log.LogAttrs(context.Background(), level, relayspec.RejectLogMessage, attrs...)
	}
	s.m.Rejected.WithLabelValues(listener, string(reason)).Inc()
	c.Close()
}
