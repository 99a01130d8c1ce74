package relayspec

import "log/slog"

// The relay writes its log as JSON lines (log/slog's JSONHandler); the
// fleet construct's metric filter counts refused connections by matching
// them, so these names are shared by the relay and the construct.
const (
	// RejectLogMessage is the message of the line the relay logs for each
	// refused connection it logs (floods are logged at debug level only).
	RejectLogMessage = "rejected"
	// LogKeyReason is the key of a refusal's reason, one of the relay's
	// fixed reject reasons (also the "reason" label of its rejected
	// counter).
	LogKeyReason = "reason"
	// LogKeyListener is the key naming the port that refused, present when
	// it is not the agent port.
	LogKeyListener = "listener"
)

// LogMessageSelector is how a CloudWatch Logs JSON filter pattern selects a
// line's message: slog's JSON handler writes it under slog.MessageKey.
const LogMessageSelector = "$." + slog.MessageKey

// RejectFilterPattern is the CloudWatch Logs filter pattern that matches the
// relay's refusal lines, in the form the CDK renders
// FilterPattern.stringValue(LogMessageSelector, "=", RejectLogMessage).
func RejectFilterPattern() string {
	return `{ ` + LogMessageSelector + ` = "` + RejectLogMessage + `" }`
}
