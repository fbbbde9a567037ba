package session

import (
	"encoding/json"
	"fmt"
	"time"
)

// Awaiting is a login whose account was still being set up when the edge
// stopped waiting: the "setting up your account" page carries it, sealed,
// and retries with it until the provisioner's decision is known.
type Awaiting struct {
	OrganizationID string `json:"org"`
	ConnectionID   string `json:"con"`
	ExternalID     string `json:"ext"`
	ClaimsDigest   string `json:"dig"`
	Email          string `json:"eml,omitempty"`
	ReturnTo       string `json:"ret,omitempty"`
	// Since is when the edge started waiting: a decision older than that
	// is about an earlier login.
	Since     time.Time `json:"since"`
	ExpiresAt time.Time `json:"exp"`
}

// awaitingName binds the sealed value to its use, as a cookie name does.
const awaitingName = "awaiting"

// SealAwaiting seals a into an opaque token for a URL. It expires after
// the pending-login TTL.
func (m *Manager) SealAwaiting(a Awaiting) (string, error) {
	a.Since = m.now().UTC()
	a.ExpiresAt = a.Since.Add(m.pendingTTL)
	raw, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	return m.keys.seal(purposeAwaiting, awaitingName, raw)
}

// OpenAwaiting opens a token from SealAwaiting: ErrInvalid when it was
// tampered with or sealed for another purpose, ErrExpired when too old.
func (m *Manager) OpenAwaiting(token string) (Awaiting, error) {
	var a Awaiting
	raw, err := m.keys.open(purposeAwaiting, awaitingName, token)
	if err != nil {
		return a, ErrInvalid
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, ErrInvalid
	}
	if !m.now().Before(a.ExpiresAt) {
		return a, ErrExpired
	}
	return a, nil
}
