package token_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"

	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// start is the tests' clock's start: a time the store does not set.
var start = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is a migrated Postgres store, counting the uses it records, and a
// clock the test turns.
type fixture struct {
	store   *countingStore
	clock   *clockwork.FakeClock
	auth    *token.Authenticator
	touches atomic.Int32
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{{
		ID: "acme", Name: "Acme", MaxSeats: 10, Roles: []string{"viewer", "admin"}, DefaultRole: "viewer",
		JITRoleCeiling: "viewer", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
	}}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	f := &fixture{clock: clockwork.NewFakeClockAt(start)}
	f.store = &countingStore{Store: s, touches: &f.touches}
	f.auth = token.NewAuthenticator(f.store, f.clock)
	return f
}

// create stores a new token expiring in ttl (from the clock's now) and
// returns it and its secret.
func (f *fixture) create(t *testing.T, orgID, scope string, ttl time.Duration) (store.Token, string) {
	t.Helper()
	secret, hash, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	var tok store.Token
	err = f.store.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		tok, err = tx.CreateToken(ctx, store.Token{ID: uuid.NewString(), Name: "token " + scope, OrganizationID: orgID,
			Scope: scope, SecretHash: hash, CreatedBy: "user:admin-1", CreatedAt: now, ExpiresAt: now.Add(ttl)})
		return err
	})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return tok, secret
}

func (f *fixture) revoke(t *testing.T, id string) {
	t.Helper()
	if err := f.store.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.RevokeToken(ctx, id)
		return err
	}); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
}

// stored reads the token as stored, without recording a use.
func (f *fixture) stored(t *testing.T, secret string) store.Token {
	t.Helper()
	var tok store.Token
	if err := f.store.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		tok, err = tx.TokenByHash(ctx, token.Hash(secret))
		return err
	}); err != nil {
		t.Fatalf("TokenByHash: %v", err)
	}
	return tok
}

// countingStore counts the uses its transactions record.
type countingStore struct {
	store.Store
	touches *atomic.Int32
}

func (s *countingStore) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	return s.Store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		return fn(ctx, countingTx{tx, s.touches})
	})
}

type countingTx struct {
	store.Tx
	touches *atomic.Int32
}

func (x countingTx) TouchToken(ctx context.Context, id string, at time.Time) error {
	x.touches.Add(1)
	return x.Tx.TouchToken(ctx, id, at)
}

// leaks names the renderings of secret (and of its hash) found in s.
func leaks(s, secret string) []string {
	hash := token.Hash(secret)
	var found []string
	for _, r := range []string{secret, strings.TrimPrefix(secret, token.Prefix), hex.EncodeToString(hash),
		base64.StdEncoding.EncodeToString(hash), base64.RawURLEncoding.EncodeToString(hash)} {
		if len(r) >= 16 && strings.Contains(s, r) {
			found = append(found, r)
		}
	}
	return found
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t)
	write, writeSecret := f.create(t, "", store.ScopeWrite, 90*24*time.Hour)
	read, readSecret := f.create(t, "acme", store.ScopeRead, time.Second)
	revoked, revokedSecret := f.create(t, "acme", store.ScopeWrite, time.Hour)
	f.revoke(t, revoked.ID)
	_, expiredSecret := f.create(t, "", store.ScopeRead, -time.Second)
	_, expiringSecret := f.create(t, "", store.ScopeRead, 0)
	both, bothSecret := f.create(t, "", store.ScopeRead, -time.Hour)
	f.revoke(t, both.ID)
	unknownSecret, _, _ := token.Generate()

	sentinels := []error{token.ErrUnknown, token.ErrExpired, token.ErrRevoked}
	for _, c := range []struct {
		name   string
		secret string
		want   store.Token // when no error
		err    error
	}{
		{"a global write token", writeSecret, write, nil},
		{"an organisation's read token, a second before it expires", readSecret, read, nil},
		{"a secret no token has", unknownSecret, store.Token{}, token.ErrUnknown},
		{"a revoked token", revokedSecret, store.Token{}, token.ErrRevoked},
		{"a token expired a second ago", expiredSecret, store.Token{}, token.ErrExpired},
		{"a token expiring now", expiringSecret, store.Token{}, token.ErrExpired},
		{"a revoked and expired token", bothSecret, store.Token{}, token.ErrRevoked},
		{"a secret of the wrong shape", writeSecret[:len(writeSecret)-1], store.Token{}, token.ErrUnknown},
		{"a secret with a trailing space", writeSecret + " ", store.Token{}, token.ErrUnknown},
		{"a secret in another case", strings.ToUpper(writeSecret), store.Token{}, token.ErrUnknown},
		{"an empty secret", "", store.Token{}, token.ErrUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.auth.Authenticate(t.Context(), c.secret)
			if c.err == nil {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if got.ID != c.want.ID || got.Scope != c.want.Scope || got.OrganizationID != c.want.OrganizationID ||
					!got.LastUsedAt.Equal(f.clock.Now()) {
					t.Errorf("Authenticate: got %+v, want %+v used now", got, c.want)
				}
				return
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == c.err) {
					t.Errorf("Authenticate: error %v; errors.Is(%v) = %v, want only %v", err, s, errors.Is(err, s), c.err)
				}
			}
			if !token.Refused(err) {
				t.Errorf("Refused(%v) = false", err)
			}
			if got.ID != "" {
				t.Errorf("Authenticate refused the secret but returned token %+v", got)
			}
			if l := leaks(err.Error(), c.secret); len(l) > 0 && c.secret != "" {
				t.Errorf("the error %q contains the secret: %q", err, l)
			}
		})
	}
	for _, secret := range []string{revokedSecret, expiredSecret, bothSecret} {
		if used := f.stored(t, secret).LastUsedAt; !used.IsZero() {
			t.Errorf("a refused token's use was recorded: %v", used)
		}
	}
}

// A token's use is written at most once a minute, and never backwards.
func TestAuthenticateRecordsUseOnceAMinute(t *testing.T) {
	f := newFixture(t)
	_, secret := f.create(t, "", store.ScopeRead, 24*time.Hour)
	for _, c := range []struct {
		advance  time.Duration
		uses     int
		touches  int32     // written so far
		lastUsed time.Time // as stored
	}{
		{0, 1, 1, start},
		{time.Second, 50, 1, start},
		{58 * time.Second, 1, 1, start},
		{time.Second, 1, 2, start.Add(time.Minute)},
		{30 * time.Second, 10, 2, start.Add(time.Minute)},
		{time.Hour, 1, 3, start.Add(time.Hour + 90*time.Second)},
	} {
		f.clock.Advance(c.advance)
		for range c.uses {
			tok, err := f.auth.Authenticate(t.Context(), secret)
			if err != nil {
				t.Fatalf("Authenticate at %v: %v", f.clock.Now(), err)
			}
			if !tok.LastUsedAt.Equal(c.lastUsed) {
				t.Errorf("at %v: Authenticate says last used %v, want %v", f.clock.Now(), tok.LastUsedAt, c.lastUsed)
			}
		}
		if got := f.touches.Load(); got != c.touches {
			t.Errorf("at %v: %d uses written, want %d", f.clock.Now(), got, c.touches)
		}
		if got := f.stored(t, secret).LastUsedAt; !got.Equal(c.lastUsed) {
			t.Errorf("at %v: stored last use %v, want %v", f.clock.Now(), got, c.lastUsed)
		}
	}
}

func TestAuthenticateConcurrently(t *testing.T) {
	f := newFixture(t)
	_, secret := f.create(t, "", store.ScopeWrite, time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := f.auth.Authenticate(t.Context(), secret); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Authenticate: %v", err)
	}
	if got := f.stored(t, secret).LastUsedAt; !got.Equal(start) {
		t.Errorf("stored last use %v, want %v", got, start)
	}
}

// unavailableStore fails every transaction, and counts them.
type unavailableStore struct{ calls atomic.Int32 }

func (s *unavailableStore) InTx(context.Context, func(context.Context, store.Tx) error) error {
	s.calls.Add(1)
	return fmt.Errorf("fake: %w", store.ErrUnavailable)
}

// A secret of the wrong shape never reaches the store; a store that fails
// is not a refusal.
func TestAuthenticateWithoutTheStore(t *testing.T) {
	s := &unavailableStore{}
	auth := token.NewAuthenticator(s, nil)
	if _, err := auth.Authenticate(t.Context(), "jpt_short"); !errors.Is(err, token.ErrUnknown) || s.calls.Load() != 0 {
		t.Errorf("a malformed secret: %v after %d transactions; want ErrUnknown after none", err, s.calls.Load())
	}
	secret, _, _ := token.Generate()
	_, err := auth.Authenticate(t.Context(), secret)
	if !errors.Is(err, store.ErrUnavailable) || token.Refused(err) {
		t.Errorf("a store that fails: %v; want ErrUnavailable, not a refusal", err)
	}
	if l := leaks(err.Error(), secret); len(l) > 0 {
		t.Errorf("the error %q contains the secret: %q", err, l)
	}
}

// How an HTTP layer uses the two: at most 10 failures a minute per client,
// then 429 for that client only, even with a good token.
func TestHTTPLayerRefusesAfterTenFailures(t *testing.T) {
	f := newFixture(t)
	_, good := f.create(t, "", store.ScopeRead, time.Hour)
	limiter := token.NewLimiter(token.DefaultFailures, token.DefaultPer, f.clock)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.RemoteAddr
		if !limiter.Allow(client) {
			w.Header().Set("Retry-After", fmt.Sprint(int(limiter.RetryAfter(client).Seconds()+0.999)))
			http.Error(w, "too many failed attempts", http.StatusTooManyRequests)
			return
		}
		secret, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tok, err := f.auth.Authenticate(r.Context(), secret)
		switch {
		case token.Refused(err):
			limiter.Fail(client)
			http.Error(w, "invalid token", http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, tok.ID)
		}
	})
	do := func(client, secret string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/admin/api/orgs", nil)
		r.RemoteAddr = client
		r.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 10 {
		wrong, _, _ := token.Generate()
		if w := do("10.0.0.1:1", wrong); w.Code != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d, want 401", i, w.Code)
		}
	}
	if w := do("10.0.0.1:1", good); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "6" {
		t.Errorf("a good secret after 10 failures: %d, Retry-After %q; want 429 and 6", w.Code, w.Header().Get("Retry-After"))
	}
	if w := do("10.0.0.2:1", good); w.Code != http.StatusOK {
		t.Errorf("another client: %d, want 200", w.Code)
	}
	f.clock.Advance(6 * time.Second)
	if w := do("10.0.0.1:1", good); w.Code != http.StatusOK {
		t.Errorf("6s later: %d, want 200", w.Code)
	}
}
