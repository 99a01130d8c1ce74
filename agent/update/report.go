package update

import (
	"context"
	"encoding/json"
	"time"

	"github.com/agentgate/agentgate/contract/artifacts"
)

// MaxReportBytes bounds one report; its detail is cut to fit.
const MaxReportBytes = 2048

// maxDetail bounds a report's error text.
const maxDetail = 512

// reportTimeout bounds one report's publish.
const reportTimeout = 10 * time.Second

// Report is the JSON document published on the agent's release up topic.
type Report struct {
	// Channel the agent follows and Platform it runs on.
	Channel  string `json:"channel"`
	Platform string `json:"platform"`
	// Running is the version running when the report was made.
	Running string `json:"running"`
	// Version and Sequence of the announcement (empty until verified).
	Version  string `json:"version,omitempty"`
	Sequence uint64 `json:"sequence,omitempty"`
	// Phase is one of the Phase constants, Reason one of the Reason constants.
	Phase  string `json:"phase"`
	Reason string `json:"reason,omitempty"`
	// Bytes downloaded of Size.
	Bytes int64 `json:"bytes,omitempty"`
	Size  int64 `json:"size,omitempty"`
	// Detail is the error, cut to 512 bytes.
	Detail string `json:"detail,omitempty"`
	// Time is when the report was made (RFC 3339, UTC).
	Time string `json:"time"`
}

func (u *Updater) report(ctx context.Context, m artifacts.ReleaseManifest, phase, reason string, bytes, size int64, err error) {
	r := Report{Channel: u.cfg.Channel, Platform: u.cfg.Platform, Running: u.cfg.CurrentVersion, Version: m.Version, Sequence: m.Sequence,
		Phase: phase, Reason: reason, Bytes: bytes, Size: size, Time: u.cfg.Now().UTC().Format(time.RFC3339)}
	if err != nil {
		r.Detail = err.Error()
		if len(r.Detail) > maxDetail {
			r.Detail = r.Detail[:maxDetail]
		}
	}
	level := u.log.Info
	if phase == PhaseRejected || phase == PhaseFailed {
		level = u.log.Warn
	}
	level("release", "phase", phase, "reason", reason, "version", m.Version, "sequence", m.Sequence, "detail", r.Detail)
	// Skips (not in the rollout, no build for the platform, already
	// current) are only logged: every agent of a channel decides on every
	// announcement at once, and a 1 % canary must not make the other 99 %
	// publish to IoT in the same second.
	if u.cfg.Report == nil || phase == PhaseSkipped {
		return
	}
	b, _ := json.Marshal(r)
	for len(b) > MaxReportBytes && r.Detail != "" { // escaping can grow the detail
		r.Detail = r.Detail[:len(r.Detail)/2]
		b, _ = json.Marshal(r)
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if err := u.cfg.Report(ctx, b); err != nil {
		u.log.Warn("release report not published", "phase", phase, "err", err)
	}
}
