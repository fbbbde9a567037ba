// Package session holds the cookies of sso-edge: the application session
// (who is signed in, as what, until when) and the short-lived pending-login
// cookie that binds an SP-initiated SAML or OIDC login to the browser that
// started it. Both are encrypted and authenticated (AES-256-GCM, see Keys);
// nothing in them is readable or changeable by the browser.
//
// It also has SafeReturnTo, the allow-list check for return URLs that
// prevents open redirects.
package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Errors of Read. Match with errors.Is.
var (
	// ErrNoSession: the request carries no session cookie.
	ErrNoSession = errors.New("session: no session cookie")
	// ErrExpired: the session was valid but its time is up.
	ErrExpired = errors.New("session: session expired")
	// ErrInvalid: the cookie was changed, sealed under a key that is no
	// longer configured, or sealed for another purpose or cookie.
	ErrInvalid = errors.New("session: invalid session cookie")
	// ErrTooLarge: the cookie would exceed what browsers keep (4096 bytes)
	// and was not set.
	ErrTooLarge = errors.New("session: cookie too large for browsers")
)

// Defaults of Options.
const (
	DefaultCookieName         = "__Host-jitprov"
	DefaultDomainCookieName   = "__Secure-jitprov"
	DefaultInsecureCookieName = "jitprov"
	DefaultTTL                = 8 * time.Hour
)

// maxCookieBytes is the size browsers guarantee to keep for one cookie
// (RFC 6265 §6.1: name, value and attributes together). A larger cookie is
// silently dropped by the browser, which would look like a login loop; we
// refuse it at Issue instead.
const maxCookieBytes = 4096

// Session is the signed-in state the edge keeps in the browser.
type Session struct {
	UserID         string
	OrganizationID string
	ConnectionID   string
	Role           string
	Email          string
	// ExpiresAt is when the session ends. Issue sets it to IssuedAt + TTL
	// when zero, and never later than that (pass e.g. the IdP's
	// SessionNotOnOrAfter to end it sooner).
	ExpiresAt time.Time
	// IssuedAt is set by Issue.
	IssuedAt time.Time
}

// sessionWire is the sealed JSON form of a Session: short names and unix
// seconds keep the cookie small.
type sessionWire struct {
	UserID         string `json:"uid"`
	OrganizationID string `json:"org"`
	ConnectionID   string `json:"con,omitempty"`
	Role           string `json:"rol,omitempty"`
	Email          string `json:"eml,omitempty"`
	ExpiresAt      int64  `json:"exp"`
	IssuedAt       int64  `json:"iat"`
}

// Options configure a Manager. The zero value is the production setting.
type Options struct {
	// CookieName of the session. Default "__Host-jitprov", or "jitprov"
	// when Insecure. A "__Host-" name is only accepted by browsers with
	// Secure, Path=/ and no Domain, which is what the Manager sets: it
	// cannot be overwritten from a sibling subdomain.
	CookieName string
	// Domain, when set (e.g. "example.com"), sends the session cookie to
	// every host of that domain, so that forward-auth works for
	// applications on other hosts than the edge's. The default name is then
	// "__Secure-jitprov" ("__Host-" names cannot carry a Domain). Every
	// host of the domain receives the session: use it only for hosts you
	// trust.
	Domain string
	// TTL is the longest a session lives. Default 8h. Lowering it also
	// shortens sessions already issued.
	TTL time.Duration
	// Insecure drops the Secure attribute, for plain-HTTP development only.
	// Browsers then refuse "__Host-" and "__Secure-" names, so the default
	// names change (see CookieName, PendingCookieName).
	Insecure bool
	// SameSite of the session cookie: http.SameSiteLaxMode (the default)
	// or http.SameSiteStrictMode. Strict drops the cookie on the redirect
	// that follows the IdP's cross-site POST and on links from other
	// sites; None is refused, it would expose the session to CSRF.
	SameSite http.SameSite
	// PendingCookieName of the pending-login cookie. Default
	// "__Host-jitprov-login", or "jitprov-login" when Insecure.
	PendingCookieName string
	// PendingTTL is how long a started login may take. Default 10m.
	PendingTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Manager issues and reads the edge's cookies. It is safe for concurrent
// use.
type Manager struct {
	keys        *Keys
	name        string
	domain      string
	ttl         time.Duration
	secure      bool
	sameSite    http.SameSite
	pendingName string
	pendingTTL  time.Duration
	now         func() time.Time
}

// NewManager checks opts, applies the defaults and returns a Manager.
func NewManager(keys *Keys, opts Options) (*Manager, error) {
	if keys == nil {
		return nil, errors.New("session: no keys")
	}
	m := &Manager{
		keys:        keys,
		name:        opts.CookieName,
		domain:      strings.TrimPrefix(strings.ToLower(opts.Domain), "."),
		ttl:         opts.TTL,
		secure:      !opts.Insecure,
		sameSite:    opts.SameSite,
		pendingName: opts.PendingCookieName,
		pendingTTL:  opts.PendingTTL,
		now:         opts.Now,
	}
	if m.name == "" {
		switch {
		case !m.secure:
			m.name = DefaultInsecureCookieName
		case m.domain != "":
			m.name = DefaultDomainCookieName
		default:
			m.name = DefaultCookieName
		}
	}
	if m.domain != "" && strings.HasPrefix(m.name, "__Host-") {
		return nil, fmt.Errorf("session: cookie %q cannot carry Domain %q: browsers refuse a __Host- cookie with a Domain", m.name, m.domain)
	}
	if m.pendingName == "" {
		m.pendingName = DefaultPendingCookieName
		if !m.secure {
			m.pendingName = DefaultInsecurePendingCookieName
		}
	}
	if m.ttl == 0 {
		m.ttl = DefaultTTL
	}
	if m.pendingTTL == 0 {
		m.pendingTTL = DefaultPendingTTL
	}
	if m.now == nil {
		m.now = time.Now
	}
	switch m.sameSite {
	case 0, http.SameSiteDefaultMode:
		m.sameSite = http.SameSiteLaxMode
	case http.SameSiteLaxMode, http.SameSiteStrictMode:
	default:
		return nil, errors.New("session: the session cookie's SameSite must be Lax or Strict")
	}
	if m.ttl < time.Minute || m.pendingTTL < time.Second {
		return nil, fmt.Errorf("session: TTL %s or pending TTL %s too short", m.ttl, m.pendingTTL)
	}
	for _, name := range []string{m.name, m.pendingName} {
		if err := (&http.Cookie{Name: name, Value: "x"}).Valid(); err != nil {
			return nil, fmt.Errorf("session: cookie name %q: %w", name, err)
		}
		if !m.secure && (strings.HasPrefix(name, "__Host-") || strings.HasPrefix(name, "__Secure-")) {
			return nil, fmt.Errorf("session: browsers refuse cookie %q without Secure; pick another name when Insecure", name)
		}
	}
	if m.name == m.pendingName {
		return nil, errors.New("session: the session and pending-login cookies need different names")
	}
	return m, nil
}

// CookieName is the name of the session cookie.
func (m *Manager) CookieName() string { return m.name }

// Issue seals s into the session cookie on w. It sets IssuedAt and bounds
// ExpiresAt by the TTL; UserID and OrganizationID are required.
func (m *Manager) Issue(w http.ResponseWriter, s Session) error {
	if s.UserID == "" || s.OrganizationID == "" {
		return errors.New("session: a session needs a user id and an organisation id")
	}
	now := m.now()
	s.IssuedAt = now
	if limit := now.Add(m.ttl); s.ExpiresAt.IsZero() || s.ExpiresAt.After(limit) {
		s.ExpiresAt = limit
	}
	if !s.ExpiresAt.After(now) {
		return fmt.Errorf("session: expiry %s is not in the future", s.ExpiresAt.Format(time.RFC3339))
	}
	payload, err := json.Marshal(sessionWire{
		UserID: s.UserID, OrganizationID: s.OrganizationID, ConnectionID: s.ConnectionID,
		Role: s.Role, Email: s.Email, ExpiresAt: s.ExpiresAt.Unix(), IssuedAt: s.IssuedAt.Unix(),
	})
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	value, err := m.keys.seal(purposeSession, m.name, payload)
	if err != nil {
		return err
	}
	return setCookie(w, &http.Cookie{
		Name:     m.name,
		Value:    value,
		Path:     "/",
		Domain:   m.domain,
		MaxAge:   maxAge(s.ExpiresAt.Sub(now)),
		Secure:   m.secure,
		HttpOnly: true,
		SameSite: m.sameSite,
	})
}

// Read returns the session of the request. Errors: ErrNoSession,
// ErrExpired, ErrInvalid. When several cookies of the name are sent (one
// planted from a sibling domain, for a name without the __Host- prefix),
// the first valid one wins.
func (m *Manager) Read(r *http.Request) (Session, error) {
	cookies := r.CookiesNamed(m.name)
	if len(cookies) == 0 {
		return Session{}, ErrNoSession
	}
	var firstErr error
	for _, c := range cookies {
		s, err := m.decode(c.Value)
		if err == nil {
			return s, nil
		}
		if firstErr == nil || errors.Is(err, ErrExpired) {
			firstErr = err
		}
	}
	return Session{}, firstErr
}

func (m *Manager) decode(value string) (Session, error) {
	payload, err := m.keys.open(purposeSession, m.name, value)
	if err != nil {
		return Session{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var wire sessionWire
	if err := json.Unmarshal(payload, &wire); err != nil {
		return Session{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if wire.UserID == "" || wire.OrganizationID == "" || wire.ExpiresAt == 0 || wire.IssuedAt == 0 {
		return Session{}, fmt.Errorf("%w: incomplete session", ErrInvalid)
	}
	s := Session{
		UserID: wire.UserID, OrganizationID: wire.OrganizationID, ConnectionID: wire.ConnectionID,
		Role: wire.Role, Email: wire.Email,
		ExpiresAt: time.Unix(wire.ExpiresAt, 0), IssuedAt: time.Unix(wire.IssuedAt, 0),
	}
	now := m.now()
	// The TTL applies to cookies already issued, so that lowering it takes
	// effect at once.
	if !now.Before(s.ExpiresAt) || !now.Before(s.IssuedAt.Add(m.ttl)) {
		return Session{}, ErrExpired
	}
	return s, nil
}

// Clear removes the session cookie (logout). The removal carries the same
// Path and Secure attributes as the cookie, as browsers require.
func (m *Manager) Clear(w http.ResponseWriter) {
	clearCookie(w, m.name, m.domain, m.secure, m.sameSite)
}

func clearCookie(w http.ResponseWriter, name, domain string, secure bool, sameSite http.SameSite) {
	w.Header().Add("Set-Cookie", (&http.Cookie{
		Name:     name,
		Value:    "",
		Path:     "/",
		Domain:   domain,
		MaxAge:   -1,
		Secure:   secure,
		HttpOnly: true,
		SameSite: sameSite,
	}).String())
}

// setCookie adds c to w unless browsers would drop it.
func setCookie(w http.ResponseWriter, c *http.Cookie) error {
	if err := c.Valid(); err != nil {
		return fmt.Errorf("session: cookie %q: %w", c.Name, err)
	}
	line := c.String()
	if len(line) > maxCookieBytes {
		return fmt.Errorf("%w: %s is %d bytes, browsers keep %d", ErrTooLarge, c.Name, len(line), maxCookieBytes)
	}
	w.Header().Add("Set-Cookie", line)
	return nil
}

// maxAge is d in whole seconds, rounded up, and at least 1 (0 would mean
// "no Max-Age", i.e. a cookie that outlives its content).
func maxAge(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
