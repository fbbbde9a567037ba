package token

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/jitprov/jitprov/internal/store"
)

// Why a secret is refused. The errors Authenticate returns match one of
// them (errors.Is) or are the store's; none contains the secret.
var (
	// ErrUnknown: no token has this secret, or it is not the shape of one.
	ErrUnknown = errors.New("token: unknown API token")
	// ErrExpired: the token's expiry has passed.
	ErrExpired = errors.New("token: expired API token")
	// ErrRevoked: the token was revoked (whether or not it expired since).
	ErrRevoked = errors.New("token: revoked API token")
)

// Refused reports whether err refuses the secret presented (ErrUnknown,
// ErrExpired or ErrRevoked) rather than saying that it could not be
// checked: the failures to count against the client with Limiter.Fail.
func Refused(err error) bool {
	return errors.Is(err, ErrUnknown) || errors.Is(err, ErrExpired) || errors.Is(err, ErrRevoked)
}

// Store is what an Authenticator needs of a store.Store.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx store.Tx) error) error
}

// TouchEvery is how stale a token's recorded last use may grow before a
// use records it again: at most one write a minute per token, however busy
// it is.
const TouchEvery = time.Minute

// Authenticator checks presented secrets against the store.
type Authenticator struct {
	store Store
	clock clockwork.Clock
}

// NewAuthenticator checks secrets against s, telling the time by clock
// (nil for the real one).
func NewAuthenticator(s Store, clock clockwork.Clock) *Authenticator {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Authenticator{store: s, clock: clock}
}

// Authenticate returns the token whose secret was presented, after
// recording its use (when the recorded one is TouchEvery old or more). It
// refuses a secret of the wrong shape without asking the store.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (store.Token, error) {
	if !Valid(secret) {
		return store.Token{}, fmt.Errorf("%w: not the shape of a jitprov API token (%q and %d characters)", ErrUnknown, Prefix, secretLen)
	}
	hash := Hash(secret)
	now := a.clock.Now()
	var tok store.Token
	err := a.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		t, err := tx.TokenByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: no token has this secret", ErrUnknown)
		}
		if err != nil {
			return fmt.Errorf("token: look the secret up: %w", err)
		}
		// The store matched the hash; this compares it again, in constant
		// time, so that no match depends on how a store compares bytes.
		if subtle.ConstantTimeCompare(t.SecretHash, hash) != 1 {
			return fmt.Errorf("%w: no token has this secret", ErrUnknown)
		}
		switch {
		case !t.RevokedAt.IsZero():
			return fmt.Errorf("%w: token %s (%q) was revoked at %s", ErrRevoked, t.ID, t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
		case !now.Before(t.ExpiresAt):
			return fmt.Errorf("%w: token %s (%q) expired at %s", ErrExpired, t.ID, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		if now.Sub(t.LastUsedAt) >= TouchEvery {
			if err := tx.TouchToken(ctx, t.ID, now); err != nil {
				return fmt.Errorf("token: record a use of token %s: %w", t.ID, err)
			}
			t.LastUsedAt = now
		}
		tok = t
		return nil
	})
	if err != nil {
		return store.Token{}, err
	}
	return tok, nil
}
