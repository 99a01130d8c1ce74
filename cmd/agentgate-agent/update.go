package main

// Self-update of the reference agent: with --release-keys set, "run"
// follows its release channel (agent/update) and installs a verified build
// with binaryInstaller, which replaces this program's file atomically,
// health-checks the new program, and restarts into it (exec, same process
// ID, so a service manager sees no exit) or, when the new program exits or
// does not come up in time, puts the old file back and restarts into it.

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agentgate/agentgate/agent"
	"github.com/agentgate/agentgate/agent/update"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
)

// version is this build's release version, set at build time with
// -ldflags "-X main.version=1.5.0".
var version = "0.0.0"

// HealthFileEnv names the file a program started for a health check writes
// once it is connected and subscribed.
const HealthFileEnv = "AGENTGATE_UPDATE_HEALTH_FILE"

// DefaultHealthTimeout bounds how long a new program may take to come up.
const DefaultHealthTimeout = 90 * time.Second

// updateOptions are the "run" flags of self-update.
type updateOptions struct {
	keys          string // comma-separated PEM files
	channel       string
	dir           string
	health        time.Duration
	artifactsHost string // unused unless set: S3 endpoint override (tests)
}

func addUpdateFlags(fs *flag.FlagSet, u *updateOptions) {
	fs.StringVar(&u.keys, "release-keys", "", "comma-separated PEM files of the pinned release signing public keys (agentgate-admin release pubkey); empty disables self-update")
	fs.StringVar(&u.channel, "release-channel", topics.DefaultReleaseChannel, "release channel to follow")
	fs.StringVar(&u.dir, "update-dir", "", "directory for downloads and the update state (default: <state-file>.d, else a directory next to this program)")
	fs.DurationVar(&u.health, "update-health-timeout", DefaultHealthTimeout, "how long a new build may take to connect and subscribe before it is rolled back")
	fs.StringVar(&u.artifactsHost, "s3-endpoint", "", "S3 endpoint override (URL); default: the artifacts bucket's regional host through the relay")
}

// loadKeys reads 1..2 pinned public keys.
func loadKeys(list string) ([]*ecdsa.PublicKey, error) {
	var keys []*ecdsa.PublicKey
	for _, p := range strings.Split(list, ",") {
		b, err := readBounded(strings.TrimSpace(p), 16<<10)
		if err != nil {
			return nil, fmt.Errorf("--release-keys: %w", err)
		}
		k, err := artifacts.ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("--release-keys %s: %w", p, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// selfUpdate wires agent/update into "run". prepare sets OnRelease before
// agent.New; start creates the updater (it needs the agent's credentials
// and HTTP client) and runs it. A nil *selfUpdate does nothing.
type selfUpdate struct {
	o       *options
	log     *slog.Logger
	u       atomic.Pointer[update.Updater]
	restart func(path string) error
	// stopOnce is set when the installer stopped the agent; installed is
	// closed when such an install returned (a restart that worked never
	// returns).
	installed chan struct{}
	stopOnce  atomic.Bool
}

// newSelfUpdate returns nil without --release-keys, and in a program
// started as a health check: that one only proves it comes up; the program
// exec'd after it reports the outcome.
func newSelfUpdate(o *options, log *slog.Logger, getenv func(string) (string, bool)) *selfUpdate {
	if o.upd.keys == "" {
		return nil
	}
	if p, ok := getenv(HealthFileEnv); ok && p != "" {
		return nil
	}
	return &selfUpdate{o: o, log: log, restart: execSelf, installed: make(chan struct{})}
}

// afterRun: when the installer stopped the agent, wait for the install
// (which restarts the process) and return its exit code.
func (s *selfUpdate) afterRun(ctx context.Context) (int, bool) {
	if s == nil || !s.stopOnce.Load() {
		return 0, false
	}
	select {
	case <-s.installed:
		s.log.Error("self-update could not restart this program")
		return 1, true
	case <-ctx.Done():
		return 0, true
	}
}

func (s *selfUpdate) prepare(cfg *agent.Config) {
	if s == nil {
		return
	}
	cfg.ReleaseChannel = s.o.upd.channel
	cfg.OnRelease = func(p []byte) {
		if u := s.u.Load(); u != nil {
			u.Offer(p)
		}
	}
}

// start runs the updater; stopAgent ends the agent's session and returns
// once Run has returned (the installer calls it before the health check).
func (s *selfUpdate) start(ctx context.Context, a *agent.Agent, stopAgent func()) error {
	if s == nil {
		return nil
	}
	keys, err := loadKeys(s.o.upd.keys)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("self-update: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("self-update: %w", err)
	}
	dir := s.o.upd.dir
	if dir == "" && s.o.stateFile != "" {
		dir = s.o.stateFile + ".d"
	} else if dir == "" {
		dir = self + ".update"
	}
	if a.Credentials() == nil {
		return errors.New("self-update needs --transport wss (S3 downloads use the role credentials)")
	}
	stop := func() {
		s.stopOnce.Store(true)
		stopAgent()
	}
	inst := &binaryInstaller{Self: self, Args: os.Args[1:], HealthTimeout: s.o.upd.health, Stop: stop, Restart: s.restart, Log: s.log}
	u, err := update.New(update.Config{
		CustomerID: s.o.customer, ThingName: s.o.thing, Channel: s.o.upd.channel, CurrentVersion: version,
		Keys: keys, Credentials: a.Credentials(), Region: a.Region(), HTTPClient: a.HTTPClient(), S3Endpoint: s.o.upd.artifactsHost,
		Dir: dir, StateFile: filepath.Join(dir, "update-state.json"), Logger: s.log,
		Installer: update.InstallerFunc(func(ctx context.Context, r update.Release) error {
			err := inst.Install(ctx, r)
			if s.stopOnce.Load() {
				close(s.installed)
			}
			return err
		}),
		Report: func(ctx context.Context, p []byte) error {
			return a.Publish(ctx, update.ReportSubject, p) // to topics.UpTopic(customer, thing, ReportSubject)
		},
	})
	if err != nil {
		return err
	}
	s.u.Store(u)
	go u.Run(ctx)
	return nil
}

// signalHealthy writes the health file (when this program runs as a health
// check) once the agent is connected and subscribed.
func signalHealthy(ctx context.Context, a *agent.Agent, getenv func(string) (string, bool)) {
	path, ok := getenv(HealthFileEnv)
	if !ok || path == "" {
		return
	}
	go func() {
		up, _ := a.Subscribed()
		select {
		case <-ctx.Done():
		case <-up:
			_ = os.WriteFile(path, []byte(version+"\n"), 0o600)
		}
	}()
}

// binaryInstaller replaces the running program's file with a verified
// build, starts it with the same arguments to check it comes up (writes
// the health file within HealthTimeout), and then restarts into it; if it
// exits (any status) or does not come up, the old file is put back.
type binaryInstaller struct {
	// Self is this program's file; Args its arguments (without argv[0]).
	Self string
	Args []string
	// HealthTimeout bounds the new program's start.
	HealthTimeout time.Duration
	// Stop stops this program's agent (one connection per thing name: the
	// new program must not fight the old one for it) and waits for it.
	Stop func()
	// Restart replaces this process with the program at path (exec).
	Restart func(path string) error
	Log     *slog.Logger
}

// Install implements update.Installer.
func (b *binaryInstaller) Install(ctx context.Context, r update.Release) error {
	if runtime.GOOS == "windows" {
		return errors.New("self-update replaces a running program's file, which Windows does not allow")
	}
	dir := filepath.Dir(b.Self)
	prev := b.Self + ".prev"
	next := b.Self + ".next"
	if err := copyFile(r.Path, next, 0o755); err != nil {
		return fmt.Errorf("stage new build: %w", err)
	}
	defer os.Remove(next)
	// Keep the old file (a hard link costs nothing; a copy where links fail).
	os.Remove(prev)
	if err := os.Link(b.Self, prev); err != nil {
		if err := copyFile(b.Self, prev, 0o755); err != nil {
			return fmt.Errorf("keep old build: %w", err)
		}
	}
	if err := os.Rename(next, b.Self); err != nil { // atomic within one directory
		return fmt.Errorf("replace %s: %w", b.Self, err)
	}
	syncDir(dir)
	if b.Stop != nil {
		b.Stop()
	}
	herr := b.healthCheck(ctx, r.Version)
	if herr != nil {
		b.Log.Warn("new build did not come up; rolling back", "version", r.Version, "err", herr)
		if err := os.Rename(prev, b.Self); err != nil {
			return fmt.Errorf("%v; and rolling back failed: %w", herr, err)
		}
		syncDir(dir)
	} else {
		b.Log.Info("new build came up; restarting into it", "version", r.Version)
	}
	if b.Restart != nil {
		if err := b.Restart(b.Self); err != nil {
			return errors.Join(herr, fmt.Errorf("restart: %w", err))
		}
	}
	return herr
}

// healthCheck runs the installed program with this one's arguments and the
// health file set, and waits for the file, an exit, or the timeout.
func (b *binaryInstaller) healthCheck(ctx context.Context, want string) error {
	// The health file lives in a directory of its own that only this
	// user can enter (MkdirTemp creates it 0700): in a shared /tmp,
	// another local user could otherwise plant a symlink at a predictable
	// name, so the new build's write lands on a file of their choosing,
	// or write the version there to fake a healthy start.
	dir, err := os.MkdirTemp("", "agentgate-health-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	health := filepath.Join(dir, "up")
	ctx, cancel := context.WithTimeout(ctx, b.HealthTimeout)
	defer cancel()
	cmd := exec.Command(b.Self, b.Args...)
	cmd.Env = append(os.Environ(), HealthFileEnv+"="+health)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start new build: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopChild := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err == nil {
				err = errors.New("exit status 0 before coming up")
			}
			return fmt.Errorf("new build exited: %w", err)
		case <-ctx.Done():
			stopChild()
			return fmt.Errorf("new build did not connect and subscribe within %s", b.HealthTimeout)
		case <-tick.C:
			got, err := readHealth(health)
			if err != nil || len(got) == 0 {
				continue
			}
			stopChild()
			if v := strings.TrimSpace(string(got)); v != want {
				return fmt.Errorf("new build says it is version %q, the release is %q", v, want)
			}
			return nil
		}
	}
}

// maxHealthBytes bounds what healthCheck reads of the health file: a
// version line.
const maxHealthBytes = 256

// readHealth reads at most maxHealthBytes of the health file at path.
func readHealth(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxHealthBytes))
}

// execSelf replaces this process with the program at path and this
// process's arguments (Linux and other Unix).
func execSelf(path string) error {
	return syscall.Exec(path, append([]string{path}, os.Args[1:]...), os.Environ())
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
