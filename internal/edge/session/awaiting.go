package session

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Awaiting is a login whose account was still being set up when the edge
// stopped waiting: the "setting up your account" page carries it, sealed,
// and retries with it until the provisioner's decision is known.
//
// The token is bound to the browser that waits: a random value sealed in
// it must match a cookie set on that browser, so a continuation link that
// leaks (logs, history, a link sent to someone) signs nobody else in.
type Awaiting struct {
	OrganizationID string `json:"org"`
	ConnectionID   string `json:"con"`
	// Protocol is the connection's ("saml", "oidc"), for the sign-in log.
	Protocol     string `json:"pro,omitempty"`
	ExternalID   string `json:"ext"`
	ClaimsDigest string `json:"dig"`
	ReturnTo     string `json:"ret,omitempty"`
	// LoginID names the login.first-seen event: its decision is read from
	// the store when no known identity answers.
	LoginID string `json:"lid,omitempty"`
	// Unconfirmed: JetStream never acknowledged the login, which may not
	// be stored; the edge goes on publishing it in the background.
	Unconfirmed bool `json:"unc,omitempty"`
	// Abandoned (with Unconfirmed): the edge could not go on publishing
	// it either; without a decision at the first look, the person is
	// asked to sign in again.
	Abandoned bool `json:"abd,omitempty"`
	// Held: the login's sign-up is held for an admin's approval; the
	// page waits for the approval (SealAwaitingFor, a longer wait).
	Held bool `json:"held,omitempty"`
	// Since is when the edge started waiting: a decision older than that
	// is about an earlier login.
	Since     time.Time `json:"since"`
	ExpiresAt time.Time `json:"exp"`
	Binding   string    `json:"bnd"`
}

// awaitingName binds the sealed value to its use, as a cookie name does.
const awaitingName = "awaiting"

func (m *Manager) awaitingCookie() string {
	if m.secure {
		return "__Host-jitprov-wait"
	}
	return "jitprov-wait"
}

// SealAwaiting seals a into an opaque token for a URL and binds it to this
// browser with a cookie. It expires after the pending-login TTL.
func (m *Manager) SealAwaiting(w http.ResponseWriter, a Awaiting) (string, error) {
	return m.SealAwaitingFor(w, a, m.pendingTTL)
}

// SealAwaitingFor is SealAwaiting with a token that expires after ttl:
// a held sign-up waits for an admin, which takes longer than a decision.
func (m *Manager) SealAwaitingFor(w http.ResponseWriter, a Awaiting, ttl time.Duration) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	a.Binding = hex.EncodeToString(b)
	a.Since = m.now().UTC()
	a.ExpiresAt = a.Since.Add(ttl)
	raw, err := json.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("session: %w", err)
	}
	tok, err := m.keys.seal(purposeAwaiting, awaitingName, raw)
	if err != nil {
		return "", err
	}
	err = setCookie(w, &http.Cookie{Name: m.awaitingCookie(), Value: a.Binding, Path: "/",
		MaxAge: maxAge(ttl), Secure: m.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return tok, err
}

// OpenAwaiting opens a token from SealAwaiting presented by r: ErrInvalid
// when it was tampered with, sealed for another purpose, or presented by
// another browser; ErrExpired when too old.
func (m *Manager) OpenAwaiting(r *http.Request, token string) (Awaiting, error) {
	var a Awaiting
	raw, err := m.keys.open(purposeAwaiting, awaitingName, token)
	if err != nil {
		return a, ErrInvalid
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.Binding == "" {
		return a, ErrInvalid
	}
	c, err := r.Cookie(m.awaitingCookie())
	if err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.Binding)) != 1 {
		return a, fmt.Errorf("%w: the token belongs to another browser", ErrInvalid)
	}
	if !m.now().Before(a.ExpiresAt) {
		return a, ErrExpired
	}
	return a, nil
}

// ClearAwaiting ends the wait: the token cannot be used again by this
// browser.
func (m *Manager) ClearAwaiting(w http.ResponseWriter) {
	clearCookie(w, m.awaitingCookie(), "", m.secure, http.SameSiteLaxMode)
}

// Age is how long ago the edge started waiting on a, by the manager's
// clock.
func (m *Manager) Age(a Awaiting) time.Duration { return m.now().Sub(a.Since) }
