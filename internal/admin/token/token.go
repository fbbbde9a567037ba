// Package token is what jitprov knows of API tokens' secrets: it makes
// them, recognises their shape, hashes them for the store, authenticates a
// presented secret against the store, and limits the clients that present
// wrong ones.
//
// A secret is "jpt_" followed by 32 random bytes in unpadded base64url
// (47 characters in all). The store keeps only its SHA-256 hash; the
// secret is shown once, by whoever called Generate, and nothing in this
// package logs it or puts it in an error.
//
// No comparison here takes time that depends on a secret: a secret is
// looked up by its hash, which an attacker cannot steer byte by byte, and
// the hash the store returns is compared again in constant time. Valid's
// shape check depends only on the secret's length and alphabet.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Prefix starts every secret, so that people and secret scanners can tell
// a jitprov API token from other credentials.
const Prefix = "jpt_"

// secretBytes is how many random bytes a secret holds.
const secretBytes = 32

// secretLen is the length of a secret: the prefix and 32 bytes in
// unpadded base64.
var secretLen = len(Prefix) + base64.RawURLEncoding.EncodedLen(secretBytes)

// Generate makes a new secret and its hash, the one to store
// (store.Token.SecretHash). The secret is the caller's to show once.
func Generate() (secret string, hash []byte, err error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("token: generate a secret: %w", err)
	}
	secret = Prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, Hash(secret), nil
}

// Hash is the SHA-256 of the whole secret, prefix included: what the store
// keeps and looks tokens up by. A secret of 256 random bits needs no salt
// nor a slow hash: it cannot be guessed from its hash.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Valid reports whether secret has the shape of a secret Generate makes,
// so that anything else is refused before any database lookup.
func Valid(secret string) bool {
	if len(secret) != secretLen || !strings.HasPrefix(secret, Prefix) {
		return false
	}
	// Strict: the unused low bits of the last character must be zero, as
	// EncodeToString writes them; a secret has one spelling.
	b, err := base64.RawURLEncoding.Strict().DecodeString(secret[len(Prefix):])
	return err == nil && len(b) == secretBytes
}
