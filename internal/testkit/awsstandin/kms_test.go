package awsstandin_test

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/agentgate/agentgate/contract/artifacts"
	"github.com/agentgate/agentgate/internal/testkit/awsstandin"
)

// The real SDK client signs a digest, fetches the public key, and the
// signature verifies with crypto/ecdsa and with the stand-in's Verify;
// wrong digest lengths, algorithms and unknown keys are refused as KMS does.
func TestKMSSignGetPublicKeyVerifyWithTheSDK(t *testing.T) {
	k := awsstandin.StartKMS()
	t.Cleanup(k.Close)
	arn := k.CreateSigningKey()
	c := kms.NewFromConfig(awsstandin.Config(), func(o *kms.Options) { o.BaseEndpoint = aws.String(k.URL) })
	digest := sha256.Sum256([]byte("hello"))
	out, err := c.Sign(t.Context(), &kms.SignInput{KeyId: aws.String(arn), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.KeyId) != arn {
		t.Errorf("KeyId = %s", aws.ToString(out.KeyId))
	}
	pk, err := c.GetPublicKey(t.Context(), &kms.GetPublicKeyInput{KeyId: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if pk.KeySpec != kmstypes.KeySpecEccNistP256 || pk.KeyUsage != kmstypes.KeyUsageTypeSignVerify {
		t.Errorf("key spec %s usage %s", pk.KeySpec, pk.KeyUsage)
	}
	pub, err := artifacts.ParsePublicKey(pk.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], out.Signature) {
		t.Fatal("KMS stand-in signature does not verify with crypto/ecdsa")
	}
	v, err := c.Verify(t.Context(), &kms.VerifyInput{KeyId: aws.String(arn), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, Signature: out.Signature, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
	if err != nil || !v.SignatureValid {
		t.Fatalf("Verify: %v", err)
	}
	for name, in := range map[string]*kms.SignInput{
		"short digest":  {KeyId: aws.String(arn), Message: digest[:31], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256},
		"RSA algorithm": {KeyId: aws.String(arn), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecRsassaPssSha256},
		"unknown key":   {KeyId: aws.String("nope"), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256},
		"oversize raw":  {KeyId: aws.String(arn), Message: make([]byte, 4097), SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256},
	} {
		if _, err := c.Sign(t.Context(), in); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
	k.SetDeny(func(op, _ string) bool { return op == "Sign" })
	_, err = c.Sign(t.Context(), &kms.SignInput{KeyId: aws.String(arn), Message: digest[:], MessageType: kmstypes.MessageTypeDigest, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Errorf("denied Sign: %v", err)
	}
}
