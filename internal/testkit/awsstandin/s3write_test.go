package awsstandin_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// PutObject with the real SDK client (checksummed), then a ranged GetObject
// of that version and a HeadObject in checksum mode.
func TestS3PutObjectAndRangeWithTheSDK(t *testing.T) {
	a := awsstandin.Start()
	t.Cleanup(a.Close)
	c := s3.NewFromConfig(awsstandin.Config(), func(o *s3.Options) { o.BaseEndpoint = aws.String(a.S3URL); o.UsePathStyle = true })
	body := bytes.Repeat([]byte("0123456789"), 1000)
	put, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("releases/x/1.0/linux-amd64/a"), Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.VersionId) == "" {
		t.Fatal("no version ID")
	}
	get, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("releases/x/1.0/linux-amd64/a"), VersionId: put.VersionId, Range: aws.String("bytes=9990-")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if !bytes.Equal(got, body[9990:]) || aws.ToString(get.ContentRange) != "bytes 9990-9999/10000" {
		t.Fatalf("range: %q %s", got, aws.ToString(get.ContentRange))
	}
	head, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("b"), Key: aws.String("releases/x/1.0/linux-amd64/a"), ChecksumMode: s3types.ChecksumModeEnabled})
	if err != nil || aws.ToString(head.ChecksumSHA256) == "" {
		t.Fatalf("head: %v %v", err, head)
	}
	if _, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("releases/x/1.0/linux-amd64/a"), Range: aws.String("bytes=10000-")}); err == nil {
		t.Error("range past the end answered")
	}
}
