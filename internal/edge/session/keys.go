package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length in bytes of every secret given to NewKeys.
const KeySize = 32

// purpose separates the keys of different kinds of cookie: a value sealed
// for one purpose never opens as another, even under the same secret and
// cookie name, because each purpose has its own sub-key (HKDF) and the
// purpose is also part of the additional data.
type purpose string

const (
	purposeSession  purpose = "session"
	purposePending  purpose = "pending-login"
	purposeAwaiting purpose = "awaiting-account"
)

var purposes = []purpose{purposeSession, purposePending, purposeAwaiting}

// formatVersion is the first byte of every sealed value, so that the format
// can change without old cookies being misread.
const formatVersion byte = 1

// Keys seals cookie values with AES-256-GCM under the current secret and
// opens them under the current or any previous secret, so that secrets can
// be rotated without signing everybody out: deploy the new secret as
// current with the old one as previous, and drop the old one once every
// cookie sealed under it has expired (the session TTL).
//
// Nonces are random (96 bits). Keep each secret below 2^32 sealed values —
// rotate at least yearly at a billion logins a year — to stay far inside
// GCM's random-nonce bound.
type Keys struct {
	// aeads[p][0] seals; every entry opens. Order: current, then previous.
	aeads map[purpose][]cipher.AEAD
}

// NewKeys builds Keys from the current secret and any previous ones, each
// KeySize random bytes (e.g. `openssl rand -hex 32`, read with DecodeKey).
func NewKeys(current []byte, previous ...[]byte) (*Keys, error) {
	secrets := append([][]byte{current}, previous...)
	k := &Keys{aeads: make(map[purpose][]cipher.AEAD, len(purposes))}
	for i, secret := range secrets {
		if len(secret) != KeySize {
			which := "current key"
			if i > 0 {
				which = fmt.Sprintf("previous key %d", i)
			}
			return nil, fmt.Errorf("session: %s is %d bytes, want %d", which, len(secret), KeySize)
		}
		for _, p := range purposes {
			aead, err := deriveAEAD(secret, p)
			if err != nil {
				return nil, err
			}
			k.aeads[p] = append(k.aeads[p], aead)
		}
	}
	return k, nil
}

func deriveAEAD(secret []byte, p purpose) (cipher.AEAD, error) {
	sub, err := hkdf.Key(sha256.New, secret, nil, "jitprov/edge/cookie/v1/"+string(p), KeySize)
	if err != nil {
		return nil, fmt.Errorf("session: derive %s key: %w", p, err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return aead, nil
}

// DecodeKey reads a secret written as 64 hexadecimal digits or as base64
// (standard or URL alphabet, padded or not) of KeySize bytes.
func DecodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("session: key is %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("session: key is neither 64 hex digits nor base64 of 32 bytes")
}

// additionalData binds a sealed value to its format, purpose and cookie
// name: a value moved to another cookie does not open.
func additionalData(p purpose, name string) []byte {
	return []byte("jitprov-cookie\x00v1\x00" + string(p) + "\x00" + name)
}

// seal encrypts plaintext for purpose p and cookie name, and returns a
// cookie-safe string: base64url(version || nonce || ciphertext || tag).
func (k *Keys) seal(p purpose, name string, plaintext []byte) (string, error) {
	aead := k.aeads[p][0]
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = formatVersion
	nonce := out[1:]
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("session: nonce: %w", err)
	}
	out = aead.Seal(out, nonce, plaintext, additionalData(p, name))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// errOpen is returned by open for any value that does not open; the reason
// is deliberately not told apart.
var errOpen = errors.New("value does not open under any key for this cookie")

// open reverses seal with any of the keys.
func (k *Keys) open(p purpose, name, value string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(value)
	if err != nil {
		return nil, errOpen
	}
	aeads := k.aeads[p]
	ns, overhead := aeads[0].NonceSize(), aeads[0].Overhead()
	if len(raw) < 1+ns+overhead || raw[0] != formatVersion {
		return nil, errOpen
	}
	nonce, ciphertext := raw[1:1+ns], raw[1+ns:]
	ad := additionalData(p, name)
	for _, aead := range aeads {
		if plaintext, err := aead.Open(nil, nonce, ciphertext, ad); err == nil {
			return plaintext, nil
		}
	}
	return nil, errOpen
}
