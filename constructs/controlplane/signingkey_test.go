package controlplane_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/agentgate/agentgate/constructs/controlplane"
	"github.com/agentgate/agentgate/contract/lambdaenv"
	"github.com/agentgate/agentgate/internal/testkit/cdktest"
)

// The release signing key is an ECC_NIST_P256 SIGN_VERIFY key whose key
// policy is its whole access: the account administers it and reads the
// public key but can neither sign, verify nor create grants; the release
// publisher's role (and no other principal) may sign, only digests with
// ECDSA_SHA_256, and read the public key. The publisher is told the key.
func TestReleaseSigningKeyPolicyLetsOnlyThePublisherSign(t *testing.T) {
	tm := tmpl(t)
	keys := cdktest.Resources(t, tm, "AWS::KMS::Key")
	if len(keys) != 1 {
		t.Fatalf("%d KMS keys, want 1", len(keys))
	}
	var keyID string
	var key map[string]any
	for id, k := range keys {
		keyID, key = id, k
	}
	p := cdktest.Properties(t, key)
	if p["KeySpec"] != "ECC_NIST_P256" || p["KeyUsage"] != "SIGN_VERIFY" {
		t.Fatalf("key spec %v usage %v", p["KeySpec"], p["KeyUsage"])
	}
	if key["DeletionPolicy"] != "Retain" {
		t.Errorf("DeletionPolicy %v: agents pin this key; deleting the stack must not delete it", key["DeletionPolicy"])
	}
	publisherRole := ""
	for id, fn := range cdktest.Resources(t, tm, "AWS::Lambda::Function") {
		ref, err := cdktest.Lookup(fn, "Properties", "Environment", "Variables", lambdaenv.ReleaseSigningKey)
		if err == nil {
			if got := cdktest.Get[string](t, ref, "Fn::GetAtt", 0); got != keyID {
				t.Errorf("%s: %s = %v, want the key's ARN", id, lambdaenv.ReleaseSigningKey, ref)
			}
			publisherRole = cdktest.Get[string](t, fn, "Properties", "Role", "Fn::GetAtt", 0)
		}
	}
	if publisherRole == "" {
		t.Fatal("no function is told the signing key")
	}
	type stmt struct {
		Sid       string
		Effect    string
		Principal map[string]any
		Action    any
		Resource  any
		Condition map[string]map[string]string
	}
	var doc struct{ Statement []stmt }
	b, _ := json.Marshal(p["KeyPolicy"])
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	signers, publicKeyReaders := 0, 0
	for _, s := range doc.Statement {
		if s.Effect != "Allow" {
			continue
		}
		acts := list(s.Action)
		pr, _ := json.Marshal(s.Principal)
		isPublisher := strings.Contains(string(pr), publisherRole)
		isAccount := strings.Contains(string(pr), ":root")
		if !isPublisher && !isAccount {
			t.Errorf("%s: principal %s is neither the account nor the publisher's role", s.Sid, pr)
		}
		for _, a := range acts {
			if strings.Contains(a, "*") {
				t.Errorf("%s: wildcard action %s", s.Sid, a)
			}
			switch a {
			case "kms:Sign":
				signers++
				if !isPublisher {
					t.Errorf("%s: %s may sign", s.Sid, pr)
				}
				if c := s.Condition["StringEquals"]; c["kms:SigningAlgorithm"] != "ECDSA_SHA_256" || c["kms:MessageType"] != "DIGEST" {
					t.Errorf("%s: sign condition %v", s.Sid, s.Condition)
				}
			case "kms:Verify", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo":
				t.Errorf("%s: %s is allowed to %s", s.Sid, pr, a)
			case "kms:GetPublicKey":
				publicKeyReaders++
			}
			if isPublisher && a != "kms:Sign" && a != "kms:GetPublicKey" {
				t.Errorf("%s: the publisher may %s", s.Sid, a)
			}
		}
		want := slices.Sorted(slices.Values(controlplane.SigningKeyAdminActions))
		if isAccount && !slices.Equal(slices.Sorted(slices.Values(acts)), want) {
			t.Errorf("%s: account actions %v, want %v", s.Sid, acts, want)
		}
	}
	if signers != 1 || publicKeyReaders != 2 {
		t.Errorf("%d statements allow kms:Sign (want 1), %d kms:GetPublicKey (want 2: account, publisher)", signers, publicKeyReaders)
	}
	// No identity policy of the stack grants anything on KMS either.
	for id, pol := range cdktest.Resources(t, tm, "AWS::IAM::Policy") {
		b, _ := json.Marshal(pol)
		if strings.Contains(string(b), `"kms:`) {
			t.Errorf("%s grants KMS actions outside the key policy: %s", id, b)
		}
	}
}
