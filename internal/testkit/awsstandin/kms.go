package awsstandin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// KMS is a stand-in of the AWS KMS API (AWS JSON 1.1, POST / with
// X-Amz-Target: TrentService.<Operation>) for asymmetric signing keys:
// Sign, Verify and GetPublicKey of ECC_NIST_P256 keys with ECDSA_SHA_256,
// as documented in the API reference
// (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html,
// API_Verify.html, API_GetPublicKey.html): Message is at most 4096 bytes,
// MessageType DIGEST needs a 32-byte digest, signatures are DER-encoded,
// the public key is a DER SubjectPublicKeyInfo. Keys are addressed by key
// ID or key ARN (aliases are not served).
type KMS struct {
	// URL is the endpoint for kms.Options.BaseEndpoint.
	URL string

	srv    *httptest.Server
	mu     sync.Mutex
	keys   map[string]*kmsKey // by key ID
	seq    int
	counts map[string]int
	// deny, when set, answers AccessDeniedException for op on key ID.
	deny func(op, keyID string) bool
}

type kmsKey struct {
	id, arn string
	priv    *ecdsa.PrivateKey
}

// kmsMaxMessage is Sign's and Verify's Message limit (API_Sign.html).
const kmsMaxMessage = 4096

// StartKMS starts the stand-in on 127.0.0.1; Close stops it.
func StartKMS() *KMS {
	k := &KMS{keys: map[string]*kmsKey{}, counts: map[string]int{}}
	k.srv = httptest.NewServer(http.HandlerFunc(k.serve))
	k.URL = k.srv.URL
	return k
}

// Close stops the server.
func (k *KMS) Close() { k.srv.CloseClientConnections(); k.srv.Close() }

// CreateSigningKey creates an ECC_NIST_P256 SIGN_VERIFY key and returns its ARN.
func (k *KMS) CreateSigningKey() string {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.seq++
	id := fmt.Sprintf("1234abcd-12ab-34cd-56ef-%012d", k.seq)
	key := &kmsKey{id: id, arn: "arn:aws:kms:eu-west-1:111111111111:key/" + id, priv: priv}
	k.keys[id] = key
	return key.arn
}

// PublicKey returns the public half of the key with this ARN or ID.
func (k *KMS) PublicKey(keyID string) *ecdsa.PublicKey {
	key := k.find(keyID)
	if key == nil {
		return nil
	}
	return &key.priv.PublicKey
}

// SetDeny installs (nil removes) a hook that answers AccessDeniedException,
// as a key policy without the permission does.
func (k *KMS) SetDeny(f func(op, keyID string) bool) { k.mu.Lock(); k.deny = f; k.mu.Unlock() }

// Count returns how many requests of op were answered successfully.
func (k *KMS) Count(op string) int { k.mu.Lock(); defer k.mu.Unlock(); return k.counts[op] }

func (k *KMS) find(id string) *kmsKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[id]; ok {
		return key
	}
	for _, key := range k.keys {
		if key.arn == id {
			return key
		}
	}
	return nil
}

func (k *KMS) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if r.Method != http.MethodPost || !ok {
		jsonError(w, http.StatusBadRequest, "UnknownOperationException", "not a KMS request")
		return
	}
	var in struct {
		KeyID            string `json:"KeyId"`
		Message          []byte
		MessageType      string
		SigningAlgorithm string
		Signature        []byte
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	key := k.find(in.KeyID)
	if key == nil {
		jsonError(w, http.StatusBadRequest, "NotFoundException", "Key '"+in.KeyID+"' does not exist")
		return
	}
	k.mu.Lock()
	deny := k.deny
	k.mu.Unlock()
	if deny != nil && deny(op, key.id) {
		jsonError(w, http.StatusBadRequest, "AccessDeniedException", "not authorized to perform kms:"+op+" on "+key.arn)
		return
	}
	switch op {
	case "GetPublicKey":
		der, _ := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
		k.count(op)
		writeKMS(w, map[string]any{"KeyId": key.arn, "PublicKey": der, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": []string{"ECDSA_SHA_256"}})
	case "Sign", "Verify":
		digest, ok := kmsDigest(w, in.Message, in.MessageType, in.SigningAlgorithm)
		if !ok {
			return
		}
		if op == "Sign" {
			sig, err := ecdsa.SignASN1(rand.Reader, key.priv, digest)
			if err != nil {
				jsonError(w, http.StatusInternalServerError, "KMSInternalException", err.Error())
				return
			}
			k.count(op)
			writeKMS(w, map[string]any{"KeyId": key.arn, "Signature": sig, "SigningAlgorithm": in.SigningAlgorithm})
			return
		}
		if !ecdsa.VerifyASN1(&key.priv.PublicKey, digest, in.Signature) {
			jsonError(w, http.StatusBadRequest, "KMSInvalidSignatureException", "signature is not valid")
			return
		}
		k.count(op)
		writeKMS(w, map[string]any{"KeyId": key.arn, "SignatureValid": true, "SigningAlgorithm": in.SigningAlgorithm})
	default:
		jsonError(w, http.StatusBadRequest, "UnsupportedOperationException", "stand-in does not serve "+op)
	}
}

func (k *KMS) count(op string) { k.mu.Lock(); k.counts[op]++; k.mu.Unlock() }

// kmsDigest checks a Sign/Verify request and returns the SHA-256 to sign.
func kmsDigest(w http.ResponseWriter, msg []byte, msgType, alg string) ([]byte, bool) {
	if alg != "ECDSA_SHA_256" {
		jsonError(w, http.StatusBadRequest, "InvalidKeyUsageException", "signing algorithm "+alg+" is not valid for an ECC_NIST_P256 key")
		return nil, false
	}
	if len(msg) == 0 || len(msg) > kmsMaxMessage {
		jsonError(w, http.StatusBadRequest, "ValidationException", "Message must be 1..4096 bytes")
		return nil, false
	}
	switch msgType {
	case "DIGEST":
		if len(msg) != sha256.Size {
			jsonError(w, http.StatusBadRequest, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
			return nil, false
		}
		return msg, true
	case "", "RAW":
		s := sha256.Sum256(msg)
		return s[:], true
	default:
		jsonError(w, http.StatusBadRequest, "ValidationException", "MessageType "+msgType)
		return nil, false
	}
}

func writeKMS(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}
