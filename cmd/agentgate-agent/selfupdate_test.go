//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/agentgate/agentgate/agent/update"
	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
	"github.com/agentgate/agentgate/internal/testkit/agentlab"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
	"github.com/agentgate/agentgate/internal/testkit/releasekit"
	"github.com/agentgate/agentgate/internal/testkit/syncbuf"
)

const labBucket = "acme-artifacts"

// buildAgent builds this program at version v.
func buildAgent(t *testing.T, v, out string) []byte {
	t.Helper()
	if b, err := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.version="+v, ".").CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v %s", v, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSelfUpdateOfARunningAgent runs a real agentgate-agent 1.4.0 process
// against the lab with a pinned KMS key, announces a release signed by the
// KMS stand-in, and watches the process download it through the relays,
// replace its own file, health-check the new program and exec it (same
// PID), whose report on the up topic says installed. With a new build
// that exits 3 instead, the file is put back, the old program runs again
// (same PID) and reports the failed install.
func TestSelfUpdateOfARunningAgent(t *testing.T) {
	bins := fakeBuilds(t)
	dir := t.TempDir()
	oldBody := buildAgent(t, "1.4.0", filepath.Join(dir, "agent-1.4.0"))
	newBody := buildAgent(t, "1.5.0", filepath.Join(dir, "agent-1.5.0"))
	crashBody, err := os.ReadFile(bins["crash"])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name           string
		build          []byte
		phase, running string
		inPlace        []byte
		logLine        string
	}{
		{"new build comes up", newBody, update.PhaseInstalled, "1.5.0", newBody, "new build came up; restarting into it"},
		{"new build exits 3", crashBody, update.PhaseFailed, "1.4.0", oldBody, "new build did not come up; rolling back"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, err := agentlab.Start(t.TempDir(), agentlab.Options{ArtifactsBucket: labBucket})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(l.Close)
			k := awsstandin.StartKMS()
			t.Cleanup(k.Close)
			keyARN := k.CreateSigningKey()
			pemBytes, _ := artifacts.PublicKeyPEM(k.PublicKey(keyARN))
			work := t.TempDir()
			keyFile := filepath.Join(work, "release.pem")
			os.WriteFile(keyFile, pemBytes, 0o644)
			self := filepath.Join(work, "agentgate-agent")
			if err := os.WriteFile(self, oldBody, 0o755); err != nil {
				t.Fatal(err)
			}

			reports := releasekit.SubscribeReports(t, l)
			// The release: the build in the lab's bucket, the manifest signed by KMS.
			key := artifacts.ReleaseFileKey("stable", "1.5.0", "linux-amd64", "agentgate-agent")
			vid := l.S3.PutObject(labBucket, key, c.build, time.Now())
			m := artifacts.ReleaseManifest{Channel: "stable", Version: "1.5.0", Sequence: 1, IssuedAt: time.Now().UTC().Format(time.RFC3339), Bucket: labBucket,
				Rollout: artifacts.Rollout{Percent: 100}, Artifacts: []artifacts.ReleaseArtifact{{Platform: "linux-amd64", Key: key, VersionID: vid, Size: int64(len(c.build)), SHA256: artifacts.SHA256Hex(c.build)}}}
			canon, err := m.Canonical()
			if err != nil {
				t.Fatal(err)
			}
			d := artifacts.ManifestDigest(canon)
			kc := kms.NewFromConfig(awsstandin.Config(), func(o *kms.Options) { o.BaseEndpoint = aws.String(k.URL) })
			sig, err := kc.Sign(t.Context(), &kms.SignInput{KeyId: aws.String(keyARN), Message: d[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
			if err != nil {
				t.Fatal(err)
			}
			id, _ := artifacts.KeyID(k.PublicKey(keyARN))
			ann, _ := artifacts.Announcement{Manifest: canon, KeyID: id, Signature: sig.Signature}.Encode()
			if err := l.Broker.Publish(topics.ReleaseTopic("stable"), ann, true, 1); err != nil {
				t.Fatal(err)
			}

			cmd := exec.Command(self, "run", "--log-level", "info")
			cmd.Env = os.Environ()
			for k, v := range labEnv(l) {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Env = append(cmd.Env, "AGENTGATE_RELEASE_KEYS="+keyFile, "AGENTGATE_STATE_FILE="+filepath.Join(work, "state.json"),
				"AGENTGATE_UPDATE_HEALTH_TIMEOUT=30s", "AGENTGATE_BACKOFF_BASE=100ms", "AGENTGATE_BACKOFF_MAX=1s")
			var logs syncbuf.Buffer
			cmd.Stderr = &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(20 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			deadline := time.After(120 * time.Second) // deadlock guard, not a performance bound
			for done := false; !done; {
				select {
				case r := <-reports:
					if r.Phase == c.phase && r.Version == "1.5.0" && r.Running == c.running {
						done = true
					}
				case err := <-exited:
					t.Fatalf("agent exited: %v\n%s", err, logs.String())
				case <-deadline:
					t.Fatalf("no %s report; log:\n%s", c.phase, logs.String())
				}
			}
			now, err := os.ReadFile(self)
			if err != nil || !bytes.Equal(now, c.inPlace) {
				t.Fatalf("program file after the update is not the expected build (%v)", err)
			}
			// The report comes from the program running after the restart, so
			// the installer's decision is logged by now.
			if !bytes.Contains([]byte(logs.String()), []byte(c.logLine)) {
				t.Errorf("log lacks %q:\n%s", c.logLine, logs.String())
			}
			// Same process: exec kept the PID, and it is still running.
			if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
				t.Fatalf("the agent process is gone: %v", err)
			}
		})
	}
}
