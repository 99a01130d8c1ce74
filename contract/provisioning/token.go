package provisioning

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// An install token is what a vendor hands to one customer's installer:
//
//	agt1.<id>.<secret>
//
// id is 16 random bytes in lowercase hex (32 characters), the key of the
// token's record; secret is 32 random bytes in unpadded base64url (43
// characters). The store keeps only SecretHash(secret), so a read of the
// table yields no usable token. The customer, expiry, use count and
// revocation live in the record, never in the token: the device cannot
// change them.
const (
	// TokenPrefix names the format's version.
	TokenPrefix = "agt1"
	// TokenIDLen and TokenSecretLen are the encoded lengths.
	TokenIDLen     = 32
	TokenSecretLen = 43
	// TokenLen is a token's exact length.
	TokenLen = len(TokenPrefix) + 1 + TokenIDLen + 1 + TokenSecretLen
	// MaxTokenInput bounds what a parser reads before refusing as oversize.
	MaxTokenInput = 256
)

// Token is a parsed install token.
type Token struct {
	// ID keys the token's record.
	ID string
	// Secret proves possession; only its hash is stored.
	Secret string
}

// Token parse errors, so callers can name the refusal.
var (
	// ErrTokenOversize: longer than MaxTokenInput.
	ErrTokenOversize = errors.New("install token is oversize")
	// ErrTokenMalformed: not agt1.<32 hex>.<43 base64url>.
	ErrTokenMalformed = errors.New("install token is malformed")
)

// String is the token as handed to the customer.
func (t Token) String() string { return TokenPrefix + "." + t.ID + "." + t.Secret }

// NewToken draws a token from r (crypto/rand.Reader when nil).
func NewToken(r io.Reader) (Token, error) {
	if r == nil {
		r = rand.Reader
	}
	var id [16]byte
	var secret [32]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return Token{}, fmt.Errorf("draw token id: %w", err)
	}
	if _, err := io.ReadFull(r, secret[:]); err != nil {
		return Token{}, fmt.Errorf("draw token secret: %w", err)
	}
	return Token{ID: hex.EncodeToString(id[:]), Secret: base64.RawURLEncoding.EncodeToString(secret[:])}, nil
}

// ParseToken parses s (surrounding white space ignored).
func ParseToken(s string) (Token, error) {
	if len(s) > MaxTokenInput {
		return Token{}, ErrTokenOversize
	}
	s = strings.TrimSpace(s)
	parts := strings.Split(s, ".")
	if len(s) != TokenLen || len(parts) != 3 || parts[0] != TokenPrefix {
		return Token{}, ErrTokenMalformed
	}
	if !ValidTokenID(parts[1]) {
		return Token{}, ErrTokenMalformed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(raw) != 32 {
		return Token{}, ErrTokenMalformed
	}
	return Token{ID: parts[1], Secret: parts[2]}, nil
}

// ValidTokenID reports whether id has a token ID's form (32 lowercase hex).
func ValidTokenID(id string) bool {
	if len(id) != TokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// SecretHash is what the store keeps of a secret: hex SHA-256. The secret
// is 256 random bits, so a fast hash suffices (nothing to brute-force).
func SecretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares secret against a stored hash in constant time.
func SecretMatches(storedHash, secret string) bool {
	want := SecretHash(secret)
	return len(storedHash) == len(want) && subtle.ConstantTimeCompare([]byte(storedHash), []byte(want)) == 1
}
