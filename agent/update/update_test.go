package update_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentgate/agentgate/agent/update"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

const (
	bucket   = "acme-artifacts"
	customer = "acme"
	thing    = "dev-4711"
	platform = "linux-amd64"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type fixture struct {
	aws       *awsstandin.AWS
	key       *ecdsa.PrivateKey
	u         *update.Updater
	installed []update.Release
	installFn func(update.Release) error
	reports   []update.Report
	mu        sync.Mutex
	state     string
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t *testing.T, current string, mod func(*update.Config)) *fixture {
	t.Helper()
	f := &fixture{aws: awsstandin.Start(), key: newKey(t), state: filepath.Join(t.TempDir(), "update.json")}
	t.Cleanup(f.aws.Close)
	cfg := update.Config{
		CustomerID: customer, ThingName: thing, Platform: platform, CurrentVersion: current,
		Keys:        []*ecdsa.PublicKey{&f.key.PublicKey},
		Credentials: awsstandin.Config().Credentials, Region: "eu-west-1", S3Endpoint: f.aws.S3URL,
		Dir: t.TempDir(), StateFile: f.state,
		Installer: update.InstallerFunc(func(_ context.Context, r update.Release) error {
			b, err := os.ReadFile(r.Path)
			if err != nil || artifacts.SHA256Hex(b) != r.SHA256 {
				t.Errorf("installer got %s: %v", r.Path, err)
			}
			f.mu.Lock()
			f.installed = append(f.installed, r)
			fn := f.installFn
			f.mu.Unlock()
			if fn != nil {
				return fn(r)
			}
			return nil
		}),
		Report: func(_ context.Context, p []byte) error {
			if len(p) > update.MaxReportBytes {
				t.Errorf("report of %d bytes", len(p))
			}
			var r update.Report
			if err := json.Unmarshal(p, &r); err != nil {
				t.Errorf("report is not JSON: %v", err)
			}
			f.mu.Lock()
			f.reports = append(f.reports, r)
			f.mu.Unlock()
			return nil
		},
		StallTimeout: 300 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	u, err := update.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.u = u
	return f
}

// build uploads body as version's linux-amd64 build and returns its artifact.
func (f *fixture) build(version string, body []byte) artifacts.ReleaseArtifact {
	key := artifacts.ReleaseFileKey("stable", version, platform, "agentgate-agent")
	id := f.aws.PutObject(bucket, key, body, t0)
	return artifacts.ReleaseArtifact{Platform: platform, Key: key, VersionID: id, Size: int64(len(body)), SHA256: artifacts.SHA256Hex(body)}
}

func manifest(version string, seq uint64, percent int, arts ...artifacts.ReleaseArtifact) artifacts.ReleaseManifest {
	return artifacts.ReleaseManifest{Channel: "stable", Version: version, Sequence: seq, IssuedAt: "2026-12-01T10:00:00Z", Bucket: bucket,
		Rollout: artifacts.Rollout{Percent: percent}, Artifacts: arts}
}

func signWith(t testing.TB, k *ecdsa.PrivateKey, m artifacts.ReleaseManifest) []byte {
	t.Helper()
	c, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	d := artifacts.ManifestDigest(c)
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	id, _ := artifacts.KeyID(&k.PublicKey)
	b, err := artifacts.Announcement{Manifest: c, KeyID: id, Signature: sig}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) process(t *testing.T, m artifacts.ReleaseManifest) update.Outcome {
	t.Helper()
	return f.u.Process(t.Context(), signWith(t, f.key, m))
}

func (f *fixture) lastReport() update.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reports) == 0 {
		return update.Report{}
	}
	return f.reports[len(f.reports)-1]
}

func TestVerifiedReleaseIsDownloadedAndInstalled(t *testing.T) {
	f := newFixture(t, "1.4.0", nil)
	body := bytes.Repeat([]byte("new agent build "), 10000)
	out := f.process(t, manifest("1.5.0", 10, 100, f.build("1.5.0", body)))
	if out.Phase != update.PhaseInstalled {
		t.Fatalf("outcome %+v", out)
	}
	if len(f.installed) != 1 || f.installed[0].Version != "1.5.0" {
		t.Fatalf("installed %+v", f.installed)
	}
	var phases []string
	for _, r := range f.reports {
		phases = append(phases, r.Phase)
		if r.Channel != "stable" || r.Platform != platform || r.Running != "1.4.0" {
			t.Errorf("report %+v", r)
		}
	}
	if strings.Join(phases, ",") != "downloading,installing,installed" {
		t.Errorf("report phases %v", phases)
	}
	if f.u.ReportTopic() != topics.UpTopic(customer, thing, "release") || f.u.Topic() != topics.ReleaseTopic("stable") {
		t.Errorf("topics %s %s", f.u.Topic(), f.u.ReportTopic())
	}
	// The retained announcement again (reconnect): nothing happens.
	if out := f.process(t, manifest("1.5.0", 10, 100, f.build("1.5.0", body))); out.Reason != update.ReasonReplay || len(f.installed) != 1 {
		t.Errorf("redelivery: %+v", out)
	}
	// A restarted updater remembers the sequence.
	saved, _ := os.ReadFile(f.state)
	if !strings.Contains(string(saved), `"sequence":10`) {
		t.Errorf("state file %s", saved)
	}
}

// Every hostile or not-for-us announcement is refused before any download
// or install, with the reason reported.
func TestRefusals(t *testing.T) {
	body := []byte("agent build 1.5.0")
	for _, c := range []struct {
		name    string
		current string
		ann     func(f *fixture) []byte
		reason  string
	}{
		{"garbage", "1.4.0", func(f *fixture) []byte { return []byte("{nope") }, update.ReasonMalformed},
		{"unknown key", "1.4.0", func(f *fixture) []byte {
			return signWith(t, newKey(t), manifest("1.5.0", 2, 100, f.build("1.5.0", body)))
		}, update.ReasonUnknownKey},
		{"bad signature", "1.4.0", func(f *fixture) []byte {
			b := signWith(t, f.key, manifest("1.5.0", 2, 100, f.build("1.5.0", body)))
			a, _ := artifacts.ParseAnnouncement(b)
			other := signWith(t, f.key, manifest("1.6.0", 2, 100, f.build("1.6.0", body)))
			o, _ := artifacts.ParseAnnouncement(other)
			a.Signature = o.Signature // a valid signature of another manifest
			enc, _ := a.Encode()
			return enc
		}, update.ReasonBadSignature},
		{"tampered manifest", "1.4.0", func(f *fixture) []byte {
			b := signWith(t, f.key, manifest("1.5.0", 2, 10, f.build("1.5.0", body)))
			a, _ := artifacts.ParseAnnouncement(b)
			a.Manifest = bytes.Replace(a.Manifest, []byte(`"percent":10`), []byte(`"percent":99`), 1)
			enc, _ := a.Encode()
			return enc
		}, update.ReasonBadSignature},
		{"other channel", "1.4.0", func(f *fixture) []byte {
			m := manifest("1.5.0", 2, 100, f.build("1.5.0", body))
			m.Channel = "beta"
			m.Artifacts[0].Key = artifacts.ReleaseFileKey("beta", "1.5.0", platform, "a")
			return signWith(t, f.key, m)
		}, update.ReasonOtherChannel},
		{"downgrade", "1.6.0", func(f *fixture) []byte {
			return signWith(t, f.key, manifest("1.5.0", 2, 100, f.build("1.5.0", body)))
		}, update.ReasonDowngrade},
		{"other platform", "1.4.0", func(f *fixture) []byte {
			a := f.build("1.5.0", body)
			a.Platform = "windows-amd64"
			a.Key = artifacts.ReleaseFileKey("stable", "1.5.0", "windows-amd64", "agentgate-agent.exe")
			return signWith(t, f.key, manifest("1.5.0", 2, 100, a))
		}, update.ReasonNoBuild},
		{"rollout 0%", "1.4.0", func(f *fixture) []byte {
			return signWith(t, f.key, manifest("1.5.0", 2, 0, f.build("1.5.0", body)))
		}, update.ReasonNotInRollout},
		{"other customer", "1.4.0", func(f *fixture) []byte {
			m := manifest("1.5.0", 2, 100, f.build("1.5.0", body))
			m.Rollout.Customers = []string{"globex"}
			return signWith(t, f.key, m)
		}, update.ReasonNotInRollout},
		{"same version", "1.5.0", func(f *fixture) []byte {
			return signWith(t, f.key, manifest("1.5.0", 2, 100, f.build("1.5.0", body)))
		}, update.ReasonCurrent},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.current, nil)
			out := f.u.Process(t.Context(), c.ann(f))
			if out.Reason != c.reason || out.Phase == update.PhaseInstalled {
				t.Fatalf("outcome %+v, want reason %s", out, c.reason)
			}
			if len(f.installed) != 0 || f.aws.Count("GetObject") != 0 {
				t.Errorf("installed %d, %d downloads", len(f.installed), f.aws.Count("GetObject"))
			}
			// Refusals are reported; skips are only logged (every agent of
			// the channel skips at once).
			r := f.lastReport()
			if skip := out.Phase == update.PhaseSkipped; (skip && r.Phase != "") || (!skip && r.Reason != c.reason) {
				t.Errorf("outcome %s, last report %+v", out.Phase, r)
			}
		})
	}
}

// An older sequence is a replay even when correctly signed; a forged or
// unverifiable one never moves the remembered sequence.
func TestReplayedOldManifestIsRefused(t *testing.T) {
	f := newFixture(t, "1.4.0", nil)
	old := signWith(t, f.key, manifest("1.5.0", 5, 100, f.build("1.5.0", []byte("1.5.0 build"))))
	newer := manifest("1.6.0", 9, 0, f.build("1.6.0", []byte("1.6.0 build")))
	if out := f.process(t, newer); out.Reason != update.ReasonNotInRollout {
		t.Fatalf("newer: %+v", out)
	}
	if out := f.u.Process(t.Context(), old); out.Reason != update.ReasonReplay || out.Phase != update.PhaseRejected {
		t.Fatalf("replayed old manifest: %+v", out)
	}
	if len(f.installed) != 0 {
		t.Fatal("replay installed")
	}
	forged := signWith(t, newKey(t), manifest("1.7.0", 1000, 100, f.build("1.7.0", []byte("x"))))
	f.u.Process(t.Context(), forged)
	if f.u.LastSequence() != 9 {
		t.Errorf("sequence %d after a forged announcement, want 9", f.u.LastSequence())
	}
}

// A signed rollback installs an older version; widening a rollout (new
// sequence, same version) takes agents now inside.
func TestRollbackAndWidening(t *testing.T) {
	f := newFixture(t, "1.6.0", nil)
	m := manifest("1.5.0", 3, 100, f.build("1.5.0", []byte("1.5.0 build")))
	m.Rollback = true
	if out := f.process(t, m); out.Phase != update.PhaseInstalled || !f.installed[0].Rollback {
		t.Fatalf("rollback: %+v", out)
	}
	g := newFixture(t, "1.4.0", nil)
	art := g.build("1.5.0", []byte("1.5.0 build"))
	if out := g.process(t, manifest("1.5.0", 4, 0, art)); out.Reason != update.ReasonNotInRollout {
		t.Fatalf("paused: %+v", out)
	}
	if out := g.process(t, manifest("1.5.0", 5, 100, art)); out.Phase != update.PhaseInstalled {
		t.Fatalf("widened: %+v", out)
	}
}

func TestDownloadFaults(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	for _, c := range []struct {
		name      string
		fault     awsstandin.BodyFaultFunc
		mutate    func(*artifacts.ReleaseArtifact)
		installed bool
		reason    string
		resumed   bool
	}{
		{name: "cut and resumed", fault: func(_ string, n int) awsstandin.BodyFault {
			if n == 1 {
				return awsstandin.BodyFault{CutAt: 50000}
			}
			return awsstandin.BodyFault{}
		}, installed: true, resumed: true},
		{name: "stalled and resumed", fault: func(_ string, n int) awsstandin.BodyFault {
			if n == 1 {
				return awsstandin.BodyFault{StallAt: 70000}
			}
			return awsstandin.BodyFault{}
		}, installed: true, resumed: true},
		{name: "always stalls", fault: func(string, int) awsstandin.BodyFault { return awsstandin.BodyFault{StallAt: 10} }, reason: update.ReasonDownload},
		{name: "tampered object", fault: func(string, int) awsstandin.BodyFault {
			b := bytes.Clone(body)
			b[1000] ^= 0xff
			return awsstandin.BodyFault{Replace: b}
		}, reason: update.ReasonBadSHA256},
		{name: "wrong sha256 signed", mutate: func(a *artifacts.ReleaseArtifact) { a.SHA256 = strings.Repeat("0", 64) }, reason: update.ReasonBadSHA256},
		{name: "object larger than signed", mutate: func(a *artifacts.ReleaseArtifact) { a.Size -= 100 }, reason: update.ReasonOversize},
		{name: "object smaller than signed", mutate: func(a *artifacts.ReleaseArtifact) { a.Size += 100 }, reason: update.ReasonDownload},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "1.4.0", func(cfg *update.Config) { cfg.Attempts = 3 })
			art := f.build("1.5.0", body)
			if c.mutate != nil {
				c.mutate(&art)
			}
			f.aws.SetBodyFault(c.fault)
			out := f.process(t, manifest("1.5.0", 7, 100, art))
			if got := out.Phase == update.PhaseInstalled; got != c.installed || out.Reason != c.reason {
				t.Fatalf("outcome %+v", out)
			}
			if !c.installed && len(f.installed) != 0 {
				t.Fatal("a bad download reached the installer")
			}
			ranges := f.aws.GetObjectRanges(bucket, art.Key)
			if c.resumed && (len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-") {
				t.Errorf("requests' ranges %q: want a full request, then a resume from where it stopped", ranges)
			}
			if c.reason == update.ReasonDownload && f.u.LastSequence() != 0 {
				t.Error("a network failure was remembered: it would never be retried")
			}
		})
	}
}

// The installer failing (its own rollback done) is reported, remembered and
// not retried in a loop.
func TestInstallFailureIsReportedOnce(t *testing.T) {
	f := newFixture(t, "1.4.0", nil)
	f.installFn = func(update.Release) error { return errors.New("new binary exited with status 3; rolled back") }
	m := manifest("1.5.0", 2, 100, f.build("1.5.0", []byte("1.5.0 build")))
	if out := f.process(t, m); out.Reason != update.ReasonInstallFailed {
		t.Fatalf("outcome %+v", out)
	}
	if r := f.lastReport(); r.Phase != update.PhaseFailed || !strings.Contains(r.Detail, "status 3") {
		t.Errorf("report %+v", r)
	}
	if out := f.process(t, m); out.Reason != update.ReasonReplay || len(f.installed) != 1 {
		t.Errorf("second delivery: %+v, %d installs", out, len(f.installed))
	}
}

func TestConfigIsValidated(t *testing.T) {
	k := newKey(t)
	good := update.Config{CustomerID: customer, ThingName: thing, CurrentVersion: "1.0.0", Keys: []*ecdsa.PublicKey{&k.PublicKey},
		Credentials: awsstandin.Config().Credentials, Region: "eu-west-1", Dir: t.TempDir(), Installer: update.InstallerFunc(func(context.Context, update.Release) error { return nil })}
	if _, err := update.New(good); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*update.Config){
		"no keys":        func(c *update.Config) { c.Keys = nil },
		"bad version":    func(c *update.Config) { c.CurrentVersion = "dev" },
		"bad channel":    func(c *update.Config) { c.Channel = "a/b" },
		"bad platform":   func(c *update.Config) { c.Platform = "Linux" },
		"no installer":   func(c *update.Config) { c.Installer = nil },
		"no dir":         func(c *update.Config) { c.Dir = "" },
		"no credentials": func(c *update.Config) { c.Credentials = nil },
		"bad thing":      func(c *update.Config) { c.ThingName = "a/b" },
		"corrupt state": func(c *update.Config) {
			p := filepath.Join(t.TempDir(), "s")
			os.WriteFile(p, []byte("{x"), 0o600)
			c.StateFile = p
		},
		"oversize state": func(c *update.Config) {
			p := filepath.Join(t.TempDir(), "s")
			os.WriteFile(p, make([]byte, 5000), 0o600)
			c.StateFile = p
		},
	} {
		c := good
		mut(&c)
		if _, err := update.New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Offer never blocks, and Run takes the latest announcement offered.
func TestOfferKeepsTheLatest(t *testing.T) {
	f := newFixture(t, "1.4.0", nil)
	art := f.build("1.5.0", []byte("b"))
	f.u.Offer(signWith(t, f.key, manifest("1.5.0", 1, 0, art)))
	f.u.Offer(signWith(t, f.key, manifest("1.5.0", 2, 100, art)))
	f.u.Offer(make([]byte, topics.MaxMessageBytes+1)) // refused unread
	done := make(chan struct{})
	f.mu.Lock()
	f.installFn = func(update.Release) error { close(done); return nil }
	f.mu.Unlock()
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan struct{})
	go func() { f.u.Run(ctx); close(ran) }()
	<-done
	cancel()
	<-ran
	if f.installed[0].Manifest.Sequence != 2 {
		t.Errorf("installed sequence %d, want the latest (2)", f.installed[0].Manifest.Sequence)
	}
}

// An Installer that restarts the program never returns: the program that
// runs next gets the retained announcement again and reports the outcome
// by its own version — installed, or failed when it is the old one (the
// installer rolled back). It reports once.
func TestOutcomeAfterRestartIsReportedByTheNextProgram(t *testing.T) {
	for _, c := range []struct {
		name, running, phase string
	}{{"new build stayed", "1.5.0", update.PhaseInstalled}, {"rolled back", "1.4.0", update.PhaseFailed}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "1.4.0", nil)
			handed := make(chan struct{})
			release := make(chan struct{})
			f.installFn = func(update.Release) error { close(handed); <-release; return nil }
			ann := signWith(t, f.key, manifest("1.5.0", 4, 100, f.build("1.5.0", []byte("1.5.0 build"))))
			first := make(chan struct{})
			go func() { f.u.Process(context.Background(), ann); close(first) }()
			<-handed
			defer func() { close(release); <-first }() // before the temporary directories go
			// The restarted program: same state file, its own version.
			next := newFixture(t, c.running, func(cfg *update.Config) { cfg.StateFile = f.state; cfg.Keys = []*ecdsa.PublicKey{&f.key.PublicKey} })
			out := next.u.Process(t.Context(), ann)
			if out.Phase != c.phase || len(next.installed) != 0 {
				t.Fatalf("outcome %+v, %d installs", out, len(next.installed))
			}
			if r := next.lastReport(); r.Phase != c.phase || r.Version != "1.5.0" || r.Running != c.running {
				t.Errorf("report %+v", r)
			}
			if out := next.u.Process(t.Context(), ann); out.Reason != update.ReasonReplay {
				t.Errorf("reported twice: %+v", out)
			}
		})
	}
}

// A partial file left by an earlier run (here: garbage of a plausible
// length) is resumed; when the whole does not verify it is fetched again
// from the start once, and the good build is installed.
func TestCorruptPartialFileIsFetchedAgain(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, "1.4.0", func(cfg *update.Config) { cfg.Dir = dir })
	body := bytes.Repeat([]byte("good build "), 5000)
	art := f.build("1.5.0", body)
	if err := os.WriteFile(filepath.Join(dir, art.SHA256[:32]+".part"), bytes.Repeat([]byte("X"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := f.process(t, manifest("1.5.0", 3, 100, art)); out.Phase != update.PhaseInstalled {
		t.Fatalf("outcome %+v", out)
	}
	if r := f.aws.GetObjectRanges(bucket, art.Key); len(r) != 2 || r[0] != "bytes=1000-" || r[1] != "" {
		t.Errorf("requests' ranges %q: want a resume from the partial file, then a full fetch", r)
	}
}
