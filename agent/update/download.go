package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/backoff"
)

// partSuffix marks a partial download, named by the build's SHA-256 so a
// resume never appends to the bytes of another build.
const partSuffix = ".part"

// downloadError is a download failure; terminal ones are not retried for
// the same announcement.
type downloadError struct {
	reason   string
	terminal bool
	err      error
}

func (e *downloadError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *downloadError) Unwrap() error { return e.err }

func terminal(reason string, format string, args ...any) error {
	return &downloadError{reason: reason, terminal: true, err: fmt.Errorf(format, args...)}
}

// s3Client builds the S3 client of one download: the agent's role
// credentials, its HTTP client (through the relay), no SDK retries (the
// download resumes itself).
func (u *Updater) s3Client() *s3.Client {
	cfg := aws.Config{Region: u.cfg.Region, Credentials: u.cfg.Credentials, HTTPClient: u.cfg.HTTPClient, RetryMaxAttempts: 1}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if u.cfg.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(u.cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	})
}

// download fetches art of m into Dir, resuming a partial file, and returns
// the path of the complete file whose SHA-256 matched.
func (u *Updater) download(ctx context.Context, m artifacts.ReleaseManifest, art artifacts.ReleaseArtifact) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, u.cfg.MaxDownloadTime)
	defer cancel()
	part := filepath.Join(u.cfg.Dir, art.SHA256[:32]+partSuffix)
	u.cleanDir(part)
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	have := fi.Size()
	if have > art.Size {
		if err := f.Truncate(0); err != nil {
			return "", err
		}
		have = 0
	}
	// A partial file left by an earlier run is trusted for its length
	// only: if the whole does not hash right, it is fetched once more
	// from the start before the build is called bad.
	fromDisk := have > 0
	client := u.s3Client()
	var lastErr error
again:
	for attempt := 0; have < art.Size; attempt++ {
		if attempt >= u.cfg.Attempts {
			return "", fmt.Errorf("%d transfers ended early (%d of %d bytes): %w", attempt, have, art.Size, lastErr)
		}
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("download time limit %s: %w", u.cfg.MaxDownloadTime, lastErr)
			case <-time.After(backoff.FullJitter(200*time.Millisecond, 5*time.Second, attempt-1)):
			}
		}
		n, err := u.fetch(ctx, client, m, art, f, have)
		have += n
		var de *downloadError
		if errors.As(err, &de) && de.terminal {
			f.Close()
			os.Remove(part)
			return "", err
		}
		if err != nil {
			lastErr = err
			u.log.Info("release download interrupted; resuming", "version", m.Version, "have", have, "size", art.Size, "err", err)
			if ctx.Err() != nil {
				return "", fmt.Errorf("download time limit %s: %w", u.cfg.MaxDownloadTime, err)
			}
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, art.Size+1)); err != nil {
		return "", err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != art.SHA256 {
		if fromDisk {
			u.log.Info("resumed release download does not verify; fetching it again from the start", "version", m.Version)
			fromDisk = false
			if err := f.Truncate(0); err != nil {
				return "", err
			}
			have = 0
			goto again
		}
		f.Close()
		os.Remove(part)
		return "", terminal(ReasonBadSHA256, "downloaded %s has SHA-256 %s; the signed manifest says %s", art.Key, got, art.SHA256)
	}
	if err := f.Chmod(0o700); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	final := filepath.Join(u.cfg.Dir, m.Version+"-"+art.Platform)
	if err := os.Rename(part, final); err != nil {
		return "", err
	}
	return final, nil
}

// fetch runs one GetObject of the pinned version from offset have and
// appends to f; it returns the bytes written. It never writes past the
// signed size, and aborts a transfer that stalls for StallTimeout.
func (u *Updater) fetch(ctx context.Context, c *s3.Client, m artifacts.ReleaseManifest, art artifacts.ReleaseArtifact, f *os.File, have int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stall := newWatchdog(u.cfg.StallTimeout, cancel)
	defer stall.stop()
	in := &s3.GetObjectInput{Bucket: aws.String(m.Bucket), Key: aws.String(art.Key), VersionId: aws.String(art.VersionID)}
	if have > 0 {
		in.Range = aws.String("bytes=" + strconv.FormatInt(have, 10) + "-")
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		return 0, stall.explain(fmt.Errorf("get %s version %s: %w", art.Key, art.VersionID, err))
	}
	defer out.Body.Close()
	want := art.Size - have
	if have > 0 {
		first, total, ok := parseContentRange(aws.ToString(out.ContentRange))
		if !ok || first != have || total != art.Size {
			return 0, terminal(ReasonOversize, "range answer %q for bytes %d- of a %d-byte build", aws.ToString(out.ContentRange), have, art.Size)
		}
	}
	if l := aws.ToInt64(out.ContentLength); l > want {
		return 0, terminal(ReasonOversize, "object %s is %d bytes from offset %d; the signed manifest says %d in all", art.Key, l, have, art.Size)
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	buf := make([]byte, 32<<10)
	var n int64
	for n < want {
		k, rerr := out.Body.Read(buf[:min(int64(len(buf)), want-n)])
		if k > 0 {
			stall.kick()
			if _, err := f.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, stall.explain(rerr)
		}
	}
	if n < want {
		return n, fmt.Errorf("transfer ended after %d of %d bytes", have+n, art.Size)
	}
	// One more byte than signed is an oversize object (a server that sends
	// more than its length header says).
	var one [1]byte
	if k, _ := out.Body.Read(one[:]); k > 0 {
		return n, terminal(ReasonOversize, "object %s is longer than the signed %d bytes", art.Key, art.Size)
	}
	return n, nil
}

// parseContentRange parses "bytes first-last/total".
func parseContentRange(s string) (first, total int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	rng, tot, ok2 := strings.Cut(rest, "/")
	a, _, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	return first, total, err1 == nil && err2 == nil
}

// watchdog cancels a transfer that makes no progress for d.
type watchdog struct {
	mu    sync.Mutex
	t     *time.Timer
	d     time.Duration
	fired bool
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d}
	w.t = time.AfterFunc(d, func() {
		w.mu.Lock()
		w.fired = true
		w.mu.Unlock()
		cancel()
	})
	return w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }
func (w *watchdog) stop() { w.t.Stop() }

// explain names a stall as the cause of err.
func (w *watchdog) explain(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return fmt.Errorf("no byte for %s (stalled): %w", w.d, err)
	}
	return err
}
