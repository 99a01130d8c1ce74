package main

// The "release" subject: upload a build, publish (or widen, pause, roll
// back) a release by writing its manifest the way the release publisher
// reads it, and print the signing key's public key for agents to pin.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/contract/topics"
)

func init() {
	register("release", subject{summary: "upload builds, publish or widen a release, print the signing public key", run: runRelease})
}

const releaseUsage = `usage: agentgate-admin release <verb> [flags]

  upload   --bucket B --channel C --version V --platform P --file F [--name N]
           upload one platform's build (S3 PutObject with a SHA-256 checksum)
  publish  --bucket B --channel C --version V --build P=N [--build ...] --percent N
           [--customers a,b] [--rollback] [--sequence S]
           write releases/C/V/manifest.json; the release publisher signs and announces it.
           Publishing again with another --percent widens or pauses (0) the rollout.
  pubkey   --key KMS-KEY-ARN [--out FILE]
           print the release signing key's public key (PEM) for agents' --release-keys

Add --json for JSON output. S3 and KMS endpoints follow AWS_ENDPOINT_URL_S3 and
AWS_ENDPOINT_URL_KMS when set.
`

// awsConfig loads the operator's AWS configuration; tests replace it.
var awsConfig = func(ctx context.Context) (aws.Config, error) { return config.LoadDefaultConfig(ctx) }

// maxUploadBytes bounds an uploaded build (what agents accept).
const maxUploadBytes = artifacts.MaxReleaseBytes

func runRelease(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(env.stderr, releaseUsage)
		if len(args) == 0 {
			return usageError{"release: no verb"}
		}
		return nil
	}
	switch args[0] {
	case "upload":
		return releaseUpload(ctx, env, args[1:])
	case "publish":
		return releasePublish(ctx, env, args[1:])
	case "pubkey":
		return releasePubkey(ctx, env, args[1:])
	}
	return usageError{fmt.Sprintf("release: unknown verb %q\n\n%s", args[0], releaseUsage)}
}

func newFlags(env *environment, verb string) (*flag.FlagSet, *bool) {
	fs := flag.NewFlagSet("agentgate-admin release "+verb, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	asJSON := fs.Bool("json", false, "JSON output")
	return fs, asJSON
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{"help shown"}
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

func s3Client(ctx context.Context, env *environment) (*s3.Client, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if u, ok := env.getenv("AWS_ENDPOINT_URL_S3"); ok && u != "" {
			o.BaseEndpoint = aws.String(u)
			o.UsePathStyle = true
		}
	}), nil
}

func kmsClient(ctx context.Context, env *environment) (*kms.Client, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) {
		if u, ok := env.getenv("AWS_ENDPOINT_URL_KMS"); ok && u != "" {
			o.BaseEndpoint = aws.String(u)
		}
	}), nil
}

// release identifies one release's folder.
type releaseFlags struct{ bucket, channel, version string }

func (r *releaseFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&r.bucket, "bucket", "", "the artifacts bucket (the control-plane stack's output)")
	fs.StringVar(&r.channel, "channel", topics.DefaultReleaseChannel, "release channel")
	fs.StringVar(&r.version, "version", "", "release version, like 1.5.0")
}

func (r *releaseFlags) check() error {
	if r.bucket == "" {
		return usageError{"--bucket is required"}
	}
	if err := topics.ValidateChannel(r.channel); err != nil {
		return usageError{"--channel: " + err.Error()}
	}
	if err := artifacts.ValidateReleaseVersion(r.version); err != nil {
		return usageError{"--version: " + err.Error()}
	}
	return nil
}

type uploadRow struct {
	Key       string `json:"key"`
	VersionID string `json:"versionId"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
}

func releaseUpload(ctx context.Context, env *environment, args []string) error {
	fs, asJSON := newFlags(env, "upload")
	var r releaseFlags
	r.add(fs)
	platform := fs.String("platform", "", "platform, like linux-amd64")
	file := fs.String("file", "", "the build to upload")
	name := fs.String("name", "agentgate-agent", "file name of the build in the release")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	if err := artifacts.ValidatePlatform(*platform); err != nil {
		return usageError{"--platform: " + err.Error()}
	}
	if err := artifacts.ValidateFileName(*name); err != nil {
		return usageError{"--name: " + err.Error()}
	}
	if *file == "" {
		return usageError{"--file is required"}
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Size() < 1 || st.Size() > maxUploadBytes {
		return fmt.Errorf("%s: a build must be a regular file of 1..%d bytes", *file, int64(maxUploadBytes))
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	sum := h.Sum(nil)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	c, err := s3Client(ctx, env)
	if err != nil {
		return err
	}
	key := artifacts.ReleaseFileKey(r.channel, r.version, *platform, *name)
	out, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(r.bucket), Key: aws.String(key), Body: f, ContentLength: aws.Int64(st.Size()),
		// A full-object SHA-256 the publisher reads back instead of
		// hashing the build again; S3 refuses the upload if it differs.
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	if aws.ToString(out.VersionId) == "" {
		return fmt.Errorf("upload %s: S3 returned no version ID; the artifacts bucket must be versioned", key)
	}
	row := uploadRow{Key: key, VersionID: aws.ToString(out.VersionId), Size: st.Size(), SHA256: fmt.Sprintf("%x", sum)}
	return printRows(env.stdout, *asJSON, []uploadRow{row}, []string{"KEY", "VERSION ID", "SIZE", "SHA-256"},
		[][]string{{row.Key, row.VersionID, fmt.Sprint(row.Size), row.SHA256}})
}

// buildsFlag collects --build platform=file.
type buildsFlag map[string]string

func (b buildsFlag) String() string { return fmt.Sprint(map[string]string(b)) }
func (b buildsFlag) Set(v string) error {
	p, f, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want platform=file, like linux-amd64=agentgate-agent")
	}
	if err := artifacts.ValidatePlatform(p); err != nil {
		return err
	}
	if err := artifacts.ValidateFileName(f); err != nil {
		return err
	}
	if _, dup := b[p]; dup {
		return fmt.Errorf("platform %s given twice", p)
	}
	b[p] = f
	return nil
}

type publishRow struct {
	Key       string   `json:"key"`
	VersionID string   `json:"versionId"`
	Sequence  uint64   `json:"sequence"`
	Percent   int      `json:"percent"`
	Customers []string `json:"customers,omitempty"`
	Rollback  bool     `json:"rollback,omitempty"`
}

func releasePublish(ctx context.Context, env *environment, args []string) error {
	fs, asJSON := newFlags(env, "publish")
	var r releaseFlags
	r.add(fs)
	builds := buildsFlag{}
	fs.Var(builds, "build", "platform=file of an uploaded build (repeat per platform)")
	percent := fs.Int("percent", -1, "rollout percentage 0..100 of the channel's (or the customers') agents; 0 pauses")
	customers := fs.String("customers", "", "comma-separated customer IDs to limit the rollout to")
	rollback := fs.Bool("rollback", false, "let agents on newer versions install this one")
	sequence := fs.Uint64("sequence", 0, "manifest sequence; default the current time in milliseconds (must exceed the channel's last)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return err
	}
	if len(builds) == 0 {
		return usageError{"at least one --build platform=file is required"}
	}
	if *percent < 0 {
		return usageError{"--percent is required (0..100): nothing rolls out to every agent by default"}
	}
	m := artifacts.UploadManifest{Version: r.version, Platforms: builds, Sequence: *sequence, Rollback: *rollback,
		Rollout: &artifacts.Rollout{Percent: *percent}}
	if m.Sequence == 0 {
		m.Sequence = uint64(time.Now().UnixMilli())
	}
	if *customers != "" {
		m.Rollout.Customers = strings.Split(*customers, ",")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := artifacts.ParseUploadManifest(body, r.version); err != nil {
		return usageError{err.Error()}
	}
	c, err := s3Client(ctx, env)
	if err != nil {
		return err
	}
	for p, f := range builds {
		key := artifacts.ReleaseFileKey(r.channel, r.version, p, f)
		if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)}); err != nil {
			return fmt.Errorf("build %s is not uploaded (release upload first): %w", key, err)
		}
	}
	key := artifacts.ReleasePrefix + r.channel + "/" + r.version + "/" + artifacts.ManifestName
	out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	row := publishRow{Key: key, VersionID: aws.ToString(out.VersionId), Sequence: m.Sequence, Percent: *percent, Customers: m.Rollout.Customers, Rollback: *rollback}
	return printRows(env.stdout, *asJSON, []publishRow{row}, []string{"MANIFEST", "VERSION ID", "SEQUENCE", "PERCENT", "CUSTOMERS", "ROLLBACK"},
		[][]string{{row.Key, row.VersionID, fmt.Sprint(row.Sequence), fmt.Sprint(row.Percent), strings.Join(row.Customers, ","), fmt.Sprint(row.Rollback)}})
}

type pubkeyRow struct {
	Key   string `json:"key"`
	KeyID string `json:"keyId"`
	PEM   string `json:"pem"`
}

func releasePubkey(ctx context.Context, env *environment, args []string) error {
	fs, asJSON := newFlags(env, "pubkey")
	key := fs.String("key", "", "ARN of the release signing key (the control-plane stack's output)")
	outFile := fs.String("out", "", "write the PEM to this file (default: print it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" {
		return usageError{"--key is required"}
	}
	c, err := kmsClient(ctx, env)
	if err != nil {
		return err
	}
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(*key)})
	if err != nil {
		return fmt.Errorf("get public key of %s: %w", *key, err)
	}
	if out.KeySpec != kmstypes.KeySpec(artifacts.KeySpec) || out.KeyUsage != kmstypes.KeyUsageTypeSignVerify {
		return fmt.Errorf("%s is a %s %s key; release signing keys are %s SIGN_VERIFY", *key, out.KeySpec, out.KeyUsage, artifacts.KeySpec)
	}
	pub, err := artifacts.ParsePublicKey(out.PublicKey)
	if err != nil {
		return err
	}
	pemBytes, err := artifacts.PublicKeyPEM(pub)
	if err != nil {
		return err
	}
	id, err := artifacts.KeyID(pub)
	if err != nil {
		return err
	}
	row := pubkeyRow{Key: aws.ToString(out.KeyId), KeyID: id, PEM: string(pemBytes)}
	if *outFile != "" {
		if err := os.WriteFile(*outFile, pemBytes, 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return printRows(env.stdout, true, []pubkeyRow{row}, nil, nil)
	}
	if *outFile == "" {
		_, err := env.stdout.Write(pemBytes)
		return err
	}
	return printRows(env.stdout, false, nil, []string{"KEY", "KEY ID", "WRITTEN TO"}, [][]string{{row.Key, row.KeyID, *outFile}})
}
