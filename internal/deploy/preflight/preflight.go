// Package preflight tells a user, before the first deploy, what their AWS
// account will refuse: too few Elastic IPs for the static addresses and the
// NAT gateways, zones that lack the IoT VPC endpoint services, environments
// that are not CDK-bootstrapped (us-east-1 included), IoT account singletons
// already owned by someone else, a hosted zone that does not match the
// configuration, and IoT endpoints the caller cannot describe.
//
// It only reads: every call is a Describe/Get/List with the caller's own
// credentials. Each check yields one Result; a check that could not run
// (access denied, throttled after retries, a malformed answer, a network
// error) yields Unknown with the call and the reason, never a panic. See
// docs/preflight.md for the checks, their messages and the IAM policy.
package preflight

import (
	"fmt"
	"io"
	"strings"
	"unicode"
)

// Status is a check's verdict.
type Status int

// The verdicts. Fail decides the exit status over Unknown (see ExitCode).
const (
	// OK: the deploy will not be refused for this reason.
	OK Status = iota
	// Warn: nothing blocks the deploy, but a value was assumed (the line says which).
	Warn
	// Fail: the deploy would be refused; the line says the fix.
	Fail
	// Unknown: the check could not run (another account's resources, or an
	// API call that failed); the line names the call and the reason.
	Unknown
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	case Fail:
		return "FAIL"
	case Unknown:
		return "UNKNOWN"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Check names, as printed in the second column.
const (
	CheckCaller        = "caller"
	CheckAccount       = "account"
	CheckEIPQuota      = "eip-quota"
	CheckEndpointZones = "endpoint-zones"
	CheckBootstrap     = "bootstrap"
	CheckIoTLogging    = "iot-logging"
	CheckIoTAudit      = "iot-audit"
	CheckHostedZone    = "hosted-zone"
	CheckIoTEndpoints  = "iot-endpoints"
)

// Result is one line of the report.
type Result struct {
	// Check is one of the Check* names.
	Check string
	// Scope says what was checked, e.g. "111111111111/eu-west-1 (fleet euw1)".
	Scope string
	// Status is the verdict.
	Status Status
	// Message says what was found.
	Message string
	// Fix is the exact remedy; empty when there is nothing to do.
	Fix string
}

// maxField bounds each printed field: messages may quote AWS's own text.
const maxField = 600

// Line renders the result as one line: status, check, scope, message and,
// when there is one, the fix. Control characters (a newline in an AWS error
// message, say) are replaced so the one-line-per-check contract holds.
func (r Result) Line() string {
	var b strings.Builder
	msg := oneLine(r.Message)
	fmt.Fprintf(&b, "%-7s %-14s %s: %s", r.Status, r.Check, oneLine(r.Scope), msg)
	if r.Fix != "" {
		if !strings.HasSuffix(msg, ".") {
			b.WriteByte('.')
		}
		b.WriteString(" Fix: ")
		b.WriteString(oneLine(r.Fix))
	}
	return b.String()
}

// oneLine replaces control characters with spaces, collapses runs of spaces
// and caps the length.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		if n == maxField {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimRight(b.String(), " ")
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// Report is every result of one run, in the order the checks ran.
type Report []Result

// Write prints one line per result.
func (rep Report) Write(w io.Writer) error {
	for _, r := range rep {
		if _, err := fmt.Fprintln(w, r.Line()); err != nil {
			return err
		}
	}
	return nil
}

// Exit codes of the command.
const (
	// ExitOK: every check is ok or warn.
	ExitOK = 0
	// ExitFail: at least one check failed (or the configuration is invalid).
	ExitFail = 1
	// ExitUnknown: nothing failed, but at least one check could not run.
	ExitUnknown = 2
)

// ExitCode is ExitFail if any result failed, else ExitUnknown if any could
// not run, else ExitOK.
func (rep Report) ExitCode() int {
	code := ExitOK
	for _, r := range rep {
		switch r.Status {
		case Fail:
			return ExitFail
		case Unknown:
			code = ExitUnknown
		}
	}
	return code
}

// Counts returns how many results have each status.
func (rep Report) Counts() map[Status]int {
	c := map[Status]int{}
	for _, r := range rep {
		c[r.Status]++
	}
	return c
}
