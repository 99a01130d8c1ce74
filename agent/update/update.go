// Package update is the agent's self-update path: it follows one release
// channel's retained announcement (topics.ReleaseTopic), verifies the
// signature with pinned public keys before it trusts anything in it, decides
// whether this agent takes the release (platform, rollout, versions only
// forward unless the signed manifest says rollback, sequences only forward),
// downloads the agent's build by S3 version ID with the agent's own role
// credentials (resumable, capped at the signed size, bounded in time, with a
// stall timeout), checks its SHA-256 and hands the verified file to an
// Installer. It reports progress and outcome as small JSON documents on the
// agent's up topic topics.UpTopic(customer, thing, ReportSubject).
//
// The package imports no internal package: a vendor's agent can use it with
// its own Installer.
package update

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
)

// ReportSubject is the subject of the agent's release reports:
// topics.UpTopic(customer, thing, ReportSubject).
const ReportSubject = "release"

// Defaults for Config fields left zero.
const (
	DefaultMaxDownloadTime = 30 * time.Minute
	DefaultStallTimeout    = 60 * time.Second
	DefaultAttempts        = 4
)

// Release is a verified build handed to an Installer.
type Release struct {
	// Version is the release's version.
	Version string
	// Path is the verified file (mode 0o700); the Installer may move it.
	Path string
	// SHA256 is its verified hex SHA-256.
	SHA256 string
	// Rollback is set when the signed manifest marks an older version.
	Rollback bool
	// Manifest is the whole verified manifest.
	Manifest artifacts.ReleaseManifest
}

// Installer installs a verified build. Install runs once per accepted
// release; an error means the old version keeps running (the Installer
// rolls back what it changed). An Installer that replaces the running
// program may not return at all (the process restarts).
type Installer interface {
	Install(ctx context.Context, r Release) error
}

// InstallerFunc adapts a function to Installer.
type InstallerFunc func(ctx context.Context, r Release) error

// Install calls f.
func (f InstallerFunc) Install(ctx context.Context, r Release) error { return f(ctx, r) }

// Config configures an Updater. Zero fields take the documented defaults.
type Config struct {
	// CustomerID and ThingName identify the agent (rollout and report topic).
	CustomerID, ThingName string
	// Channel is the release channel followed; default topics.DefaultReleaseChannel.
	Channel string
	// Platform is "<os>-<arch>"; default runtime.GOOS-runtime.GOARCH.
	Platform string
	// CurrentVersion is the running version (artifacts.ValidateReleaseVersion).
	CurrentVersion string
	// Keys are the pinned release signing keys (1..artifacts.MaxPinnedKeys).
	Keys []*ecdsa.PublicKey
	// Credentials are the agent's role credentials (agent.Agent.Credentials).
	Credentials aws.CredentialsProvider
	// Region of the artifacts bucket.
	Region string
	// HTTPClient carries the S3 requests; the agent's reaches S3 through the
	// relay (agent.Agent.HTTPClient). Default: http.DefaultClient.
	HTTPClient *http.Client
	// S3Endpoint overrides the S3 endpoint (tests, path-style); empty: the
	// regional virtual-hosted endpoint https://<bucket>.s3.<region>.amazonaws.com.
	S3Endpoint string
	// Dir receives downloads (and partial downloads, resumed later). Required.
	Dir string
	// StateFile keeps the last accepted sequence; empty keeps it in memory.
	StateFile string
	// Installer installs verified builds. Required.
	Installer Installer
	// Report publishes one report (JSON, at most MaxReportBytes) to
	// ReportTopic; nil: reports are only logged.
	Report func(ctx context.Context, payload []byte) error
	// MaxDownloadTime bounds one download including resumes; default
	// DefaultMaxDownloadTime.
	MaxDownloadTime time.Duration
	// StallTimeout aborts a transfer that delivers no byte for this long;
	// default DefaultStallTimeout.
	StallTimeout time.Duration
	// Attempts is how many transfers one download may take (the first
	// and its resumes); default DefaultAttempts.
	Attempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Updater follows one channel. Offer it every message of Topic; Run does
// the work, one announcement at a time, always the latest one offered.
type Updater struct {
	cfg    Config
	verify *artifacts.Verifier
	log    *slog.Logger

	mu      sync.Mutex
	pending []byte
	wake    chan struct{}
	state   state
}

// New validates cfg and loads the state file.
func New(cfg Config) (*Updater, error) {
	if err := topics.ValidateCustomerID(cfg.CustomerID); err != nil {
		return nil, err
	}
	if err := topics.ValidateThingName(cfg.ThingName); err != nil {
		return nil, err
	}
	if cfg.Channel == "" {
		cfg.Channel = topics.DefaultReleaseChannel
	}
	if err := topics.ValidateChannel(cfg.Channel); err != nil {
		return nil, err
	}
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS + "-" + runtime.GOARCH
	}
	if err := artifacts.ValidatePlatform(cfg.Platform); err != nil {
		return nil, err
	}
	if err := artifacts.ValidateReleaseVersion(cfg.CurrentVersion); err != nil {
		return nil, fmt.Errorf("current version: %w", err)
	}
	v, err := artifacts.NewVerifier(cfg.Keys...)
	if err != nil {
		return nil, err
	}
	if cfg.Installer == nil {
		return nil, errors.New("update: no Installer")
	}
	if cfg.Dir == "" {
		return nil, errors.New("update: no download directory")
	}
	if cfg.Credentials == nil || cfg.Region == "" {
		return nil, errors.New("update: credentials and region are required to download")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.MaxDownloadTime <= 0 {
		cfg.MaxDownloadTime = DefaultMaxDownloadTime
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	st, err := loadState(cfg.StateFile)
	if err != nil {
		return nil, err
	}
	return &Updater{cfg: cfg, verify: v, log: cfg.Logger, wake: make(chan struct{}, 1), state: st}, nil
}

// Topic is the exact topic to subscribe to: the channel's retained
// release announcement.
func (u *Updater) Topic() string { return topics.ReleaseTopic(u.cfg.Channel) }

// ReportTopic is where reports go: topics.UpTopic(customer, thing, ReportSubject).
func (u *Updater) ReportTopic() string {
	return topics.UpTopic(u.cfg.CustomerID, u.cfg.ThingName, ReportSubject)
}

// Offer hands over one message of Topic without blocking (it runs on the
// MQTT receive path); a later offer replaces one not yet taken.
func (u *Updater) Offer(payload []byte) {
	if len(payload) > topics.MaxMessageBytes {
		u.log.Warn("release announcement refused", "reason", ReasonMalformed, "bytes", len(payload))
		return
	}
	u.mu.Lock()
	u.pending = append([]byte(nil), payload...)
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Run processes offered announcements until ctx ends.
func (u *Updater) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-u.wake:
		}
		u.mu.Lock()
		p := u.pending
		u.pending = nil
		u.mu.Unlock()
		if p != nil {
			u.Process(ctx, p)
		}
	}
}

// LastSequence is the sequence of the last announcement decided.
func (u *Updater) LastSequence() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state.Sequence
}

// cleanDir removes partial downloads other than keep.
func (u *Updater) cleanDir(keep string) {
	matches, _ := filepath.Glob(filepath.Join(u.cfg.Dir, "*"+partSuffix))
	for _, m := range matches {
		if m != keep {
			os.Remove(m)
		}
	}
}
