package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

type standins struct {
	aws *awsstandin.AWS
	kms *awsstandin.KMS
	key string
}

func startStandins(t *testing.T) *standins {
	s := &standins{aws: awsstandin.Start(), kms: awsstandin.StartKMS()}
	t.Cleanup(s.aws.Close)
	t.Cleanup(s.kms.Close)
	s.key = s.kms.CreateSigningKey()
	prev := awsConfig
	awsConfig = func(context.Context) (aws.Config, error) { return awsstandin.Config(), nil }
	t.Cleanup(func() { awsConfig = prev })
	return s
}

func (s *standins) run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	vars := map[string]string{"AWS_ENDPOINT_URL_S3": s.aws.S3URL, "AWS_ENDPOINT_URL_KMS": s.kms.URL}
	env := &environment{stdout: &out, stderr: &errb, getenv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	code := run(t.Context(), args, env)
	return code, out.String(), errb.String()
}

// upload, publish and pubkey against the S3 and KMS stand-ins: the build
// lands under its release key with a version ID and the checksum the
// publisher reads back, the manifest is what the publisher parses, and the
// printed key verifies the KMS key's signatures.
func TestReleaseUploadPublishPubkey(t *testing.T) {
	s := startStandins(t)
	build := filepath.Join(t.TempDir(), "agentgate-agent")
	body := bytes.Repeat([]byte("build"), 1000)
	if err := os.WriteFile(build, body, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := s.run(t, "release", "upload", "--json", "--bucket", "acme-artifacts", "--version", "1.5.0", "--platform", "linux-amd64", "--file", build)
	if code != 0 {
		t.Fatalf("upload: %d %s", code, errOut)
	}
	var up []uploadRow
	if err := json.Unmarshal([]byte(out), &up); err != nil || len(up) != 1 {
		t.Fatalf("upload output %q: %v", out, err)
	}
	if up[0].Key != "releases/stable/1.5.0/linux-amd64/agentgate-agent" || up[0].VersionID == "" || up[0].SHA256 != artifacts.SHA256Hex(body) || up[0].Size != int64(len(body)) {
		t.Errorf("upload row %+v", up[0])
	}
	if s.aws.Count("PutObject ok") != 1 {
		t.Fatalf("PutObject ok = %d", s.aws.Count("PutObject ok"))
	}

	code, out, errOut = s.run(t, "release", "publish", "--bucket", "acme-artifacts", "--version", "1.5.0", "--build", "linux-amd64=agentgate-agent", "--percent", "10", "--customers", "acme,globex", "--sequence", "42")
	if code != 0 {
		t.Fatalf("publish: %d %s", code, errOut)
	}
	if !strings.Contains(out, "releases/stable/1.5.0/manifest.json") || !strings.Contains(out, "42") {
		t.Errorf("publish table %q", out)
	}
	// Read the manifest back the way the publisher does.
	c, _ := s3Client(t.Context(), &environment{getenv: func(k string) (string, bool) { return s.aws.S3URL, k == "AWS_ENDPOINT_URL_S3" }})
	obj, err := c.GetObject(t.Context(), s3GetInput("acme-artifacts", "releases/stable/1.5.0/manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	raw := new(bytes.Buffer)
	raw.ReadFrom(obj.Body)
	m, err := artifacts.ParseUploadManifest(raw.Bytes(), "1.5.0")
	if err != nil {
		t.Fatalf("the publisher would refuse the manifest: %v", err)
	}
	if m.Sequence != 42 || m.Rollout.Percent != 10 || strings.Join(m.Rollout.Customers, ",") != "acme,globex" || m.Platforms["linux-amd64"] != "agentgate-agent" {
		t.Errorf("manifest %+v", m)
	}

	pemFile := filepath.Join(t.TempDir(), "release.pem")
	code, out, errOut = s.run(t, "release", "pubkey", "--key", s.key, "--out", pemFile)
	if code != 0 {
		t.Fatalf("pubkey: %d %s", code, errOut)
	}
	b, _ := os.ReadFile(pemFile)
	pub, err := artifacts.ParsePublicKey(b)
	if err != nil || !pub.Equal(s.kms.PublicKey(s.key)) {
		t.Fatalf("pubkey wrote a different key: %v", err)
	}
	id, _ := artifacts.KeyID(pub)
	if !strings.Contains(out, id) {
		t.Errorf("pubkey table %q lacks the key ID %s", out, id)
	}
	if code, out, _ := s.run(t, "release", "pubkey", "--key", s.key); code != 0 || !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("pubkey to stdout: %d %q", code, out)
	}
}

func TestReleaseRefusesBadInput(t *testing.T) {
	s := startStandins(t)
	build := filepath.Join(t.TempDir(), "b")
	os.WriteFile(build, []byte("x"), 0o755)
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o755)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"release"}, 2, "no verb"},
		{[]string{"release", "nosuch"}, 2, "unknown verb"},
		{[]string{"release", "upload", "--bucket", "b", "--version", "1.5.0-rc1", "--platform", "linux-amd64", "--file", build}, 2, "--version"},
		{[]string{"release", "upload", "--bucket", "b", "--version", "1.5.0", "--platform", "Linux", "--file", build}, 2, "--platform"},
		{[]string{"release", "upload", "--bucket", "b", "--version", "1.5.0", "--platform", "linux-amd64", "--name", "../x", "--file", build}, 2, "--name"},
		{[]string{"release", "upload", "--bucket", "b", "--version", "1.5.0", "--platform", "linux-amd64", "--file", empty}, 1, "1.."},
		{[]string{"release", "upload", "--version", "1.5.0", "--platform", "linux-amd64", "--file", build}, 2, "--bucket"},
		{[]string{"release", "publish", "--bucket", "b", "--version", "1.5.0", "--build", "linux-amd64=a"}, 2, "--percent is required"},
		{[]string{"release", "publish", "--bucket", "b", "--version", "1.5.0", "--build", "linux-amd64=a", "--percent", "101"}, 2, "percent"},
		{[]string{"release", "publish", "--bucket", "b", "--version", "1.5.0", "--build", "nope", "--percent", "5"}, 2, "platform=file"},
		{[]string{"release", "publish", "--bucket", "b", "--version", "1.5.0", "--build", "linux-amd64=a", "--percent", "5", "--customers", "a/b"}, 2, "customer"},
		{[]string{"release", "publish", "--bucket", "b", "--version", "1.5.0", "--build", "linux-amd64=missing", "--percent", "5"}, 1, "not uploaded"},
		{[]string{"release", "pubkey"}, 2, "--key"},
		{[]string{"release", "pubkey", "--key", "arn:aws:kms:eu-west-1:111111111111:key/none"}, 1, "NotFoundException"},
	} {
		code, _, errOut := s.run(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%q: %d %q, want %d with %q", c.args, code, errOut, c.code, c.msg)
		}
	}
	if n := s.aws.Count("PutObject"); n != 0 {
		t.Errorf("%d PutObject calls for refused input", n)
	}
}

func s3GetInput(bucket, key string) *s3.GetObjectInput {
	return &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}
