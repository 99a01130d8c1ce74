package update

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/agentgate/agentgate/contract/artifacts"
)

// Phases of a report.
const (
	PhaseDownloading = "downloading"
	PhaseInstalling  = "installing"
	PhaseInstalled   = "installed"
	PhaseSkipped     = "skipped"
	PhaseRejected    = "rejected"
	PhaseFailed      = "failed"
)

// Reasons of skipped, rejected and failed reports.
const (
	ReasonMalformed     = "malformed"
	ReasonUnknownKey    = "unknown_key"
	ReasonBadSignature  = "bad_signature"
	ReasonOtherChannel  = "other_channel"
	ReasonReplay        = "replay"
	ReasonNotInRollout  = "not_in_rollout"
	ReasonNoBuild       = "no_build_for_platform"
	ReasonCurrent       = "already_current"
	ReasonDowngrade     = "downgrade"
	ReasonDownload      = "download"
	ReasonOversize      = "oversize"
	ReasonBadSHA256     = "bad_sha256"
	ReasonInstallFailed = "install_failed"
)

// Outcome is what Process decided.
type Outcome struct {
	// Phase is PhaseInstalled, PhaseSkipped, PhaseRejected or PhaseFailed.
	Phase string
	// Reason is one of the Reason constants ("" when installed).
	Reason string
	// Version and Sequence are the announcement's, once verified.
	Version  string
	Sequence uint64
	// Err is the underlying error, if any.
	Err error
}

// Process handles one announcement to the end. Nothing of it is used before
// its signature verified with a pinned key. A sequence is remembered once
// decided (installed, skipped, refused, or installed and failed), so the
// retained message delivered again on every reconnect is not acted on
// twice; a download that failed on the network is not remembered and is
// tried again at the next delivery.
func (u *Updater) Process(ctx context.Context, payload []byte) Outcome {
	ann, err := artifacts.ParseAnnouncement(payload)
	if err != nil {
		return u.refuse(ctx, artifacts.ReleaseManifest{}, PhaseRejected, ReasonMalformed, err)
	}
	m, err := u.verify.Verify(ann)
	switch {
	case errors.Is(err, artifacts.ErrUnknownKey):
		return u.refuse(ctx, artifacts.ReleaseManifest{}, PhaseRejected, ReasonUnknownKey, err)
	case errors.Is(err, artifacts.ErrBadSignature):
		return u.refuse(ctx, artifacts.ReleaseManifest{}, PhaseRejected, ReasonBadSignature, err)
	case err != nil:
		return u.refuse(ctx, artifacts.ReleaseManifest{}, PhaseRejected, ReasonMalformed, err)
	}
	if m.Channel != u.cfg.Channel {
		return u.refuse(ctx, m, PhaseRejected, ReasonOtherChannel, nil)
	}
	last := u.LastSequence()
	if m.Sequence == last {
		if out, ok := u.pendingOutcome(ctx, m); ok {
			return out
		}
		return Outcome{Phase: PhaseSkipped, Reason: ReasonReplay, Version: m.Version, Sequence: m.Sequence} // the retained message again: quiet
	}
	if m.Sequence < last {
		return u.refuse(ctx, m, PhaseRejected, ReasonReplay, nil)
	}
	art, ok := m.Artifact(u.cfg.Platform)
	if !ok {
		return u.decide(ctx, m, PhaseSkipped, ReasonNoBuild, nil)
	}
	cmp, _ := artifacts.CompareVersions(m.Version, u.cfg.CurrentVersion) // both validated
	switch {
	case cmp == 0:
		return u.decide(ctx, m, PhaseSkipped, ReasonCurrent, nil)
	case cmp < 0 && !m.Rollback:
		return u.decide(ctx, m, PhaseRejected, ReasonDowngrade, nil)
	}
	if !m.InRollout(u.cfg.CustomerID, u.cfg.ThingName) {
		return u.decide(ctx, m, PhaseSkipped, ReasonNotInRollout, nil)
	}
	u.report(ctx, m, PhaseDownloading, "", 0, art.Size, nil)
	path, err := u.download(ctx, m, art)
	var de *downloadError
	if errors.As(err, &de) && de.terminal {
		return u.decide(ctx, m, PhaseFailed, de.reason, err)
	}
	if err != nil {
		// Network, stall or time limit: not remembered, tried again at the
		// next delivery of the retained announcement.
		u.report(ctx, m, PhaseFailed, ReasonDownload, 0, art.Size, err)
		return Outcome{Phase: PhaseFailed, Reason: ReasonDownload, Version: m.Version, Sequence: m.Sequence, Err: err}
	}
	// Remember before installing: an Installer that restarts the program
	// must not see the same announcement as new after the restart; the
	// program that then runs reports the outcome (pendingOutcome).
	if err := u.save(m.Sequence, m.Version, false); err != nil {
		os.Remove(path)
		u.report(ctx, m, PhaseFailed, ReasonInstallFailed, 0, art.Size, err)
		return Outcome{Phase: PhaseFailed, Reason: ReasonInstallFailed, Version: m.Version, Sequence: m.Sequence, Err: err}
	}
	u.report(ctx, m, PhaseInstalling, "", art.Size, art.Size, nil)
	err = u.cfg.Installer.Install(ctx, Release{Version: m.Version, Path: path, SHA256: art.SHA256, Rollback: m.Rollback, Manifest: m})
	os.Remove(path) // the Installer moved or copied it, or failed
	_ = u.save(m.Sequence, "", true)
	if err != nil {
		u.report(ctx, m, PhaseFailed, ReasonInstallFailed, art.Size, art.Size, err)
		return Outcome{Phase: PhaseFailed, Reason: ReasonInstallFailed, Version: m.Version, Sequence: m.Sequence, Err: err}
	}
	u.report(ctx, m, PhaseInstalled, "", art.Size, art.Size, nil)
	return Outcome{Phase: PhaseInstalled, Version: m.Version, Sequence: m.Sequence}
}

// refuse reports an announcement that is not remembered (it may be forged
// or old: it must not move the sequence).
func (u *Updater) refuse(ctx context.Context, m artifacts.ReleaseManifest, phase, reason string, err error) Outcome {
	u.report(ctx, m, phase, reason, 0, 0, err)
	return Outcome{Phase: phase, Reason: reason, Version: m.Version, Sequence: m.Sequence, Err: err}
}

// decide reports a verified announcement's outcome and remembers its sequence.
func (u *Updater) decide(ctx context.Context, m artifacts.ReleaseManifest, phase, reason string, err error) Outcome {
	if rerr := u.remember(m.Sequence); rerr != nil {
		err = errors.Join(err, rerr)
	}
	u.report(ctx, m, phase, reason, 0, 0, err)
	return Outcome{Phase: phase, Reason: reason, Version: m.Version, Sequence: m.Sequence, Err: err}
}

// pendingOutcome reports an install that restarted the program: after the
// restart the retained announcement arrives again, and the version now
// running says whether the new build stayed (installed) or was rolled back.
func (u *Updater) pendingOutcome(ctx context.Context, m artifacts.ReleaseManifest) (Outcome, bool) {
	u.mu.Lock()
	installing := u.state.Installing
	u.mu.Unlock()
	if installing == "" || installing != m.Version {
		return Outcome{}, false
	}
	if err := u.save(m.Sequence, "", true); err != nil {
		u.log.Warn("update state not saved", "err", err)
	}
	art, _ := m.Artifact(u.cfg.Platform)
	if u.cfg.CurrentVersion == installing {
		u.report(ctx, m, PhaseInstalled, "", art.Size, art.Size, nil)
		return Outcome{Phase: PhaseInstalled, Version: m.Version, Sequence: m.Sequence}, true
	}
	err := fmt.Errorf("running %s after installing %s: the installer rolled back", u.cfg.CurrentVersion, installing)
	u.report(ctx, m, PhaseFailed, ReasonInstallFailed, 0, art.Size, err)
	return Outcome{Phase: PhaseFailed, Reason: ReasonInstallFailed, Version: m.Version, Sequence: m.Sequence, Err: err}, true
}
