// Package authn turns an admin request into an admin.Principal: who acts,
// on which organisations, reading or writing. Two credentials are
// accepted:
//
//   - an API token, "Authorization: Bearer jpt_…" (internal/admin/token):
//     the principal is the token — its organisation ("" for a global
//     token) and its scope. Failed attempts are limited per client, and
//     successful uses per token.
//   - the edge's session cookie, sealed by sso-edge under the session keys
//     it shares with this service: the user is read again from the store
//     on every request, so a suspended or deprovisioned person, or one
//     whose role was lowered, loses their access at once. The principal
//     carries the user's current role; the admin core refuses anyone but
//     the organisation's admin.
//
// The admin API and the console both call Authenticator.Principal.
package authn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"golang.org/x/time/rate"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store"
)

// Errors of Principal, besides admin.ErrUnavailable (the store does not
// answer). Match with errors.Is; the messages say what to do and never
// contain a secret.
var (
	// ErrUnauthenticated: no credentials, or credentials that are not (or
	// no longer) good: 401.
	ErrUnauthenticated = errors.New("authn: unauthenticated")
	// ErrRateLimited: too many failed token attempts from this client, or
	// too many uses of this token: 429. errors.As gives the *LimitError.
	ErrRateLimited = errors.New("authn: rate limited")
)

// LimitError is a refusal over a rate limit, with when to come back.
type LimitError struct {
	Msg        string
	RetryAfter time.Duration
}

func (e *LimitError) Error() string { return e.Msg }

// Unwrap makes a LimitError match ErrRateLimited.
func (e *LimitError) Unwrap() error { return ErrRateLimited }

func unauthenticated(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnauthenticated}, args...)...)
}

// Store is what an Authenticator needs of a store.Store.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// Defaults of Config.
const (
	// DefaultUsesPerMinute is how many requests one token may make a
	// minute.
	DefaultUsesPerMinute = 600
)

// Config configures an Authenticator. Store is required; the rest have
// defaults.
type Config struct {
	Store Store
	// Sessions opens the edge's session cookie; nil accepts tokens only.
	Sessions *session.Manager
	// Tokens checks token secrets; nil for token.NewAuthenticator(Store,
	// Clock).
	Tokens *token.Authenticator
	// Failures limits failed token attempts per client; nil for
	// token.NewLimiter(token.DefaultFailures, token.DefaultPer, Clock).
	Failures *token.Limiter
	// UsesPerMinute bounds each token's requests (default
	// DefaultUsesPerMinute; negative: no limit).
	UsesPerMinute int
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client, for the failure limit (default none: the peer is the
	// client).
	TrustedProxies []netip.Prefix
	// Clock tells the time (nil for the real one).
	Clock clockwork.Clock
}

// Authenticator turns requests into principals. Safe for concurrent use.
type Authenticator struct {
	store    Store
	sessions *session.Manager
	tokens   *token.Authenticator
	failures *token.Limiter
	trusted  []netip.Prefix
	clock    clockwork.Clock

	perMinute int
	mu        sync.Mutex
	uses      map[string]*rate.Limiter // by token id
}

// New returns an Authenticator configured by cfg.
func New(cfg Config) *Authenticator {
	if cfg.Clock == nil {
		cfg.Clock = clockwork.NewRealClock()
	}
	if cfg.Tokens == nil {
		cfg.Tokens = token.NewAuthenticator(cfg.Store, cfg.Clock)
	}
	if cfg.Failures == nil {
		cfg.Failures = token.NewLimiter(token.DefaultFailures, token.DefaultPer, cfg.Clock)
	}
	if cfg.UsesPerMinute == 0 {
		cfg.UsesPerMinute = DefaultUsesPerMinute
	}
	return &Authenticator{store: cfg.Store, sessions: cfg.Sessions, tokens: cfg.Tokens, failures: cfg.Failures,
		trusted: cfg.TrustedProxies, clock: cfg.Clock, perMinute: cfg.UsesPerMinute, uses: map[string]*rate.Limiter{}}
}

// Principal authenticates r: by its Authorization header when it has one
// (a request presenting a token is never judged by a cookie it also
// carries), and otherwise by the edge's session cookie.
func (a *Authenticator) Principal(r *http.Request) (admin.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		return a.byToken(r, h)
	}
	return a.bySession(r)
}

// ClientKey is the client r came from, as the failure limit counts it:
// the peer, or the client a trusted proxy names in X-Forwarded-For.
func (a *Authenticator) ClientKey(r *http.Request) string { return clientAddr(r, a.trusted) }

func (a *Authenticator) byToken(r *http.Request, header string) (admin.Principal, error) {
	client := a.ClientKey(r)
	if !a.failures.Allow(client) {
		return admin.Principal{}, &LimitError{Msg: "too many failed token attempts from your address; wait before trying again",
			RetryAfter: a.failures.RetryAfter(client)}
	}
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		a.failures.Fail(client)
		return admin.Principal{}, unauthenticated("the Authorization header must be \"Bearer jpt_…\", an API token")
	}
	t, err := a.tokens.Authenticate(r.Context(), strings.TrimSpace(secret))
	switch {
	case token.Refused(err):
		a.failures.Fail(client)
		switch {
		case errors.Is(err, token.ErrExpired):
			return admin.Principal{}, unauthenticated("the API token has expired; create another")
		case errors.Is(err, token.ErrRevoked):
			return admin.Principal{}, unauthenticated("the API token was revoked")
		}
		return admin.Principal{}, unauthenticated("the API token is not one jitprov knows")
	case err != nil:
		return admin.Principal{}, fmt.Errorf("%w: checking the API token: %w", admin.ErrUnavailable, err)
	}
	if !a.allowUse(t.ID) {
		return admin.Principal{}, &LimitError{Msg: fmt.Sprintf("API token %s made more than %d requests this minute; slow down", t.ID, a.perMinute),
			RetryAfter: time.Minute / time.Duration(a.perMinute)}
	}
	return admin.Principal{Kind: store.ActorToken, ID: t.ID, Name: t.Name, Organization: t.OrganizationID,
		Write: t.Scope == store.ScopeWrite || t.Scope == store.ScopeSCIM, SCIM: t.Scope == store.ScopeSCIM}, nil
}

// allowUse counts a use of token id against its per-minute limit.
func (a *Authenticator) allowUse(id string) bool {
	if a.perMinute < 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.uses[id]
	if !ok {
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(a.perMinute)), a.perMinute)
		a.uses[id] = l
	}
	return l.AllowN(a.clock.Now(), 1)
}

func (a *Authenticator) bySession(r *http.Request) (admin.Principal, error) {
	if a.sessions == nil {
		return admin.Principal{}, unauthenticated("send an API token: Authorization: Bearer jpt_…")
	}
	s, err := a.sessions.Read(r)
	switch {
	case errors.Is(err, session.ErrNoSession):
		return admin.Principal{}, unauthenticated("sign in through your organisation's SSO, or send an API token: Authorization: Bearer jpt_…")
	case errors.Is(err, session.ErrExpired):
		return admin.Principal{}, unauthenticated("your session has expired; sign in again")
	case err != nil:
		return admin.Principal{}, unauthenticated("your session is not valid; sign in again")
	}
	var u store.User
	err = a.store.InTx(r.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		u, err = tx.UserByID(ctx, s.OrganizationID, s.UserID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return admin.Principal{}, unauthenticated("your account no longer exists")
	case err != nil:
		return admin.Principal{}, fmt.Errorf("%w: reading the signed-in user: %w", admin.ErrUnavailable, err)
	case u.Status != store.StatusActive:
		return admin.Principal{}, unauthenticated("your account is %s", u.Status)
	}
	return admin.Principal{Kind: store.ActorUser, ID: u.ID, Name: u.Email, Organization: u.OrganizationID,
		Write: true, Role: u.Role}, nil
}

// clientAddr is the address r came from: the peer, or — when the peer is
// a trusted proxy — the last address in X-Forwarded-For that is not a
// trusted proxy. Addresses a client writes into the header itself sit to
// the left of what its proxies append, so they are never believed.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer, trusted) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := host
	for i := len(hops) - 1; i >= 0; i-- {
		s := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
		if ap, perr := netip.ParseAddrPort(s); perr == nil {
			a, err = ap.Addr(), nil
		}
		if err != nil {
			break
		}
		client = a.Unmap().String()
		if !isTrusted(a, trusted) {
			break
		}
	}
	return client
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SessionManager opens the edge's session cookies as sso-edge seals them:
// the same keys (hex or base64, the first current), the same Secure
// setting and cookie domain, which together choose the cookie's name.
func SessionManager(keys []string, insecureCookies bool, cookieDomain string) (*session.Manager, error) {
	if len(keys) == 0 {
		return nil, errors.New("no session keys")
	}
	secrets := make([][]byte, len(keys))
	for i, k := range keys {
		b, err := session.DecodeKey(k)
		if err != nil {
			return nil, fmt.Errorf("session key %d: %w", i+1, err)
		}
		secrets[i] = b
	}
	ks, err := session.NewKeys(secrets[0], secrets[1:]...)
	if err != nil {
		return nil, err
	}
	return session.NewManager(ks, session.Options{Insecure: insecureCookies, Domain: cookieDomain})
}
