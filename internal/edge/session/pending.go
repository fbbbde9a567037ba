package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The pending-login cookie
//
// An SP-initiated login leaves the edge for the IdP and comes back to the
// ACS as an auto-submitted form POST *from the IdP's site*: a cross-site,
// top-level POST. Browsers send SameSite=Lax cookies on cross-site
// navigations only for safe methods (GET) and Strict cookies never, so a
// Lax or Strict cookie set at login start is missing at the ACS and the
// response's InResponseTo cannot be tied to the browser that asked for it.
// The pending-login cookie is therefore SameSite=None, which browsers only
// accept with Secure (plus HttpOnly, Path=/ and the __Host- prefix, so
// scripts and sibling subdomains can neither read nor plant it). It grants
// nothing by itself: it only lists the request ids this browser is waiting
// for, sealed, for a few minutes.
//
// For the same reason no CSRF guard (Origin/Referer or token check) may sit
// in front of the ACS or the OIDC form_post callback: a legitimate response
// always comes from the IdP's origin. The ACS is protected instead by the
// response's signature, InResponseTo bound to this cookie (which defeats
// login CSRF: an attacker's response answers a request the victim's browser
// never made) and the cross-replica assertion replay cache. IdP-initiated
// logins have no request to bind to, which is why they are off by default.
//
// In Insecure (plain-HTTP development) mode browsers refuse SameSite=None
// without Secure; the cookie is then SameSite=Lax, which works only when
// the IdP is on the same site as the edge (e.g. the development IdP on
// localhost).

// Defaults of Options for the pending-login cookie.
const (
	DefaultPendingCookieName         = "__Host-jitprov-login"
	DefaultInsecurePendingCookieName = "jitprov-login"
	DefaultPendingTTL                = 10 * time.Minute
	// MaxPending is how many logins one browser may have under way at once
	// (several tabs); the oldest is dropped first.
	MaxPending = 5
)

// ErrNoPending: the browser has no pending login with that connection and
// request id (another browser started it, it expired, or it was used).
var ErrNoPending = errors.New("session: no such pending login in this browser")

// PendingLogin is an SP-initiated login under way: what the ACS or OIDC
// callback must check and where to send the person afterwards.
type PendingLogin struct {
	// RequestID is the SAML AuthnRequest ID (checked against the
	// response's InResponseTo) or the OIDC state.
	RequestID string
	// ConnectionKey names the connection, e.g. "org/connection".
	ConnectionKey string
	// ReturnTo is where to go after the login; check it with SafeReturnTo
	// before issuing.
	ReturnTo string
	// Nonce and PKCEVerifier are the OIDC nonce and PKCE code verifier.
	Nonce        string
	PKCEVerifier string
	// Traceparent is the W3C trace context of the request that started
	// the login (the redirect to the IdP), for the ACS or callback span to
	// link to; sealed with the rest, and only ever used as a link.
	Traceparent string
	// ExpiresAt is set by IssuePending when zero, and never later than the
	// pending TTL from now.
	ExpiresAt time.Time
}

type pendingWire struct {
	RequestID     string `json:"id"`
	ConnectionKey string `json:"ck"`
	ReturnTo      string `json:"rt,omitempty"`
	Nonce         string `json:"n,omitempty"`
	PKCEVerifier  string `json:"pv,omitempty"`
	Traceparent   string `json:"tp,omitempty"`
	ExpiresAt     int64  `json:"exp"`
}

// IssuePending adds p to the browser's pending logins (newest first, at
// most MaxPending; r supplies the ones already there) and sets the cookie.
// When the cookie would be too large the oldest logins are dropped; a
// single login too large for a cookie is ErrTooLarge.
func (m *Manager) IssuePending(w http.ResponseWriter, r *http.Request, p PendingLogin) error {
	if p.RequestID == "" || p.ConnectionKey == "" {
		return errors.New("session: a pending login needs a request id and a connection key")
	}
	now := m.now()
	if limit := now.Add(m.pendingTTL); p.ExpiresAt.IsZero() || p.ExpiresAt.After(limit) {
		p.ExpiresAt = limit
	}
	if !p.ExpiresAt.After(now) {
		return fmt.Errorf("session: pending login expiry %s is not in the future", p.ExpiresAt.Format(time.RFC3339))
	}
	list := []PendingLogin{p}
	for _, old := range m.pending(r) {
		if old.RequestID != p.RequestID || old.ConnectionKey != p.ConnectionKey {
			list = append(list, old)
		}
	}
	if len(list) > MaxPending {
		list = list[:MaxPending]
	}
	for {
		err := m.writePending(w, list)
		if !errors.Is(err, ErrTooLarge) || len(list) == 1 {
			return err
		}
		list = list[:len(list)-1]
	}
}

// PendingRequestIDs lists the request ids of the unexpired logins this
// browser started on the connection: the InResponseTo values the ACS may
// accept. A browser without the cookie has none.
func (m *Manager) PendingRequestIDs(r *http.Request, connectionKey string) []string {
	var ids []string
	for _, p := range m.pending(r) {
		if p.ConnectionKey == connectionKey {
			ids = append(ids, p.RequestID)
		}
	}
	return ids
}

// TakePending returns the browser's pending login with the connection and
// request id and removes it, re-issuing the cookie with the others (or
// clearing it), so that it serves once. Call it after the response was
// validated. ErrNoPending when there is none.
//
// The removal relies on the browser storing the new cookie; a copy of the
// old value could be presented again. The replay cache, not this cookie,
// is what makes every assertion single use.
func (m *Manager) TakePending(w http.ResponseWriter, r *http.Request, connectionKey, requestID string) (PendingLogin, error) {
	list := m.pending(r)
	for i, p := range list {
		if p.ConnectionKey == connectionKey && p.RequestID == requestID {
			rest := append(list[:i:i], list[i+1:]...)
			if err := m.writePending(w, rest); err != nil {
				return PendingLogin{}, err
			}
			return p, nil
		}
	}
	return PendingLogin{}, ErrNoPending
}

// PendingCookieSent reports whether r carries the pending-login cookie at
// all, whether or not it opens and lists logins: a browser that started a
// login and sends none never got it back (it was set for another host
// name, refused, or has expired).
func (m *Manager) PendingCookieSent(r *http.Request) bool {
	return len(r.CookiesNamed(m.pendingName)) > 0
}

// ClearPending removes the pending-login cookie.
func (m *Manager) ClearPending(w http.ResponseWriter) {
	clearCookie(w, m.pendingName, "", m.secure, m.pendingSameSite())
}

func (m *Manager) pendingSameSite() http.SameSite {
	if m.secure {
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

// pending reads the unexpired pending logins of the request, newest first.
// A cookie that does not open counts as none: it is only a hint list.
func (m *Manager) pending(r *http.Request) []PendingLogin {
	now := m.now()
	for _, c := range r.CookiesNamed(m.pendingName) {
		payload, err := m.keys.open(purposePending, m.pendingName, c.Value)
		if err != nil {
			continue
		}
		var wire []pendingWire
		if err := json.Unmarshal(payload, &wire); err != nil {
			continue
		}
		var list []PendingLogin
		for _, pw := range wire {
			exp := time.Unix(pw.ExpiresAt, 0)
			if pw.RequestID == "" || pw.ConnectionKey == "" || !now.Before(exp) {
				continue
			}
			list = append(list, PendingLogin{
				RequestID: pw.RequestID, ConnectionKey: pw.ConnectionKey, ReturnTo: pw.ReturnTo,
				Nonce: pw.Nonce, PKCEVerifier: pw.PKCEVerifier, Traceparent: pw.Traceparent, ExpiresAt: exp,
			})
			if len(list) == MaxPending {
				break
			}
		}
		return list
	}
	return nil
}

// writePending sets the cookie to list, or clears it when list is empty.
func (m *Manager) writePending(w http.ResponseWriter, list []PendingLogin) error {
	if len(list) == 0 {
		m.ClearPending(w)
		return nil
	}
	now := m.now()
	wire := make([]pendingWire, len(list))
	var last time.Time
	for i, p := range list {
		wire[i] = pendingWire{
			RequestID: p.RequestID, ConnectionKey: p.ConnectionKey, ReturnTo: p.ReturnTo,
			Nonce: p.Nonce, PKCEVerifier: p.PKCEVerifier, Traceparent: p.Traceparent, ExpiresAt: p.ExpiresAt.Unix(),
		}
		if p.ExpiresAt.After(last) {
			last = p.ExpiresAt
		}
	}
	payload, err := json.Marshal(wire)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	value, err := m.keys.seal(purposePending, m.pendingName, payload)
	if err != nil {
		return err
	}
	return setCookie(w, &http.Cookie{
		Name:     m.pendingName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge(last.Sub(now)),
		Secure:   m.secure,
		HttpOnly: true,
		SameSite: m.pendingSameSite(),
	})
}
