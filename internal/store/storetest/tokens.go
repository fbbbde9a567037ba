package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// API tokens (store/tokens.go).

// apiToken returns a valid token of orgID ("" for a global one) whose
// secret hash is derived from name.
func apiToken(orgID, name string, created time.Time) store.Token {
	h := sha256.Sum256([]byte("secret of " + name))
	return store.Token{ID: uuid.NewString(), Name: name, OrganizationID: orgID, Scope: store.ScopeRead,
		SecretHash: h[:], CreatedBy: "user:admin-1", CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
}

func createToken(t *testing.T, s store.Store, tok store.Token) store.Token {
	t.Helper()
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Token, error) { return tx.CreateToken(ctx, tok) })
	if err != nil {
		t.Fatalf("CreateToken(%q): %v", tok.Name, err)
	}
	return got
}

func tokenByHash(t *testing.T, s store.Store, hash []byte) (store.Token, error) {
	t.Helper()
	return read(t, s, func(ctx context.Context, tx store.Tx) (store.Token, error) { return tx.TokenByHash(ctx, hash) })
}

// checkToken compares every field of got with want.
func checkToken(t *testing.T, what string, got, want store.Token) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.OrganizationID != want.OrganizationID || got.Scope != want.Scope ||
		!bytes.Equal(got.SecretHash, want.SecretHash) || got.CreatedBy != want.CreatedBy ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.RevokedAt.Equal(want.RevokedAt) || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Errorf("%s: got token %+v, want %+v", what, got, want)
	}
}

// A token is kept as given, global or of one organisation, found by its
// secret's hash only, and refused when it could not be told apart or used.
func testCreateToken(t *testing.T, s store.Store) {
	seed(t, s, 10)
	now := timestamp()
	global := apiToken("", "ci", now)
	global.Scope = store.ScopeWrite
	ofA := apiToken(orgA, "acme reports", now)
	for _, tok := range []store.Token{global, ofA} {
		checkToken(t, "CreateToken", createToken(t, s, tok), tok)
		got, err := tokenByHash(t, s, tok.SecretHash)
		if err != nil {
			t.Fatalf("TokenByHash(%q): %v", tok.Name, err)
		}
		checkToken(t, "TokenByHash", got, tok)
	}

	// The store sets the creation time when none is given.
	before := time.Now().Add(-time.Minute)
	unset := apiToken(orgB, "no time", time.Time{})
	unset.ExpiresAt = now.Add(time.Hour)
	if got := createToken(t, s, unset); got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("CreateToken with no creation time: got %v, want about now", got.CreatedAt)
	}

	other := sha256.Sum256([]byte("never stored"))
	_, err := tokenByHash(t, s, other[:])
	wantErr(t, "TokenByHash of an unknown hash", err, store.ErrNotFound)
	_, err = tokenByHash(t, s, ofA.SecretHash[:16])
	wantErr(t, "TokenByHash of a prefix of a hash", err, store.ErrNotFound)

	for _, c := range []struct {
		name   string
		change func(*store.Token)
		want   error
	}{
		{"a taken secret hash", func(tok *store.Token) { tok.SecretHash = ofA.SecretHash }, store.ErrConflict},
		{"a taken id", func(tok *store.Token) { tok.ID = ofA.ID }, store.ErrConflict},
		{"an unknown organisation", func(tok *store.Token) { tok.OrganizationID = "no-such-org" }, store.ErrNotFound},
		{"no expiry", func(tok *store.Token) { tok.ExpiresAt = time.Time{} }, store.ErrInvalidData},
		{"no secret hash", func(tok *store.Token) { tok.SecretHash = nil }, store.ErrInvalidData},
		{"no name", func(tok *store.Token) { tok.Name = "" }, store.ErrInvalidData},
		{"an unknown scope", func(tok *store.Token) { tok.Scope = "admin" }, store.ErrInvalidData},
		{"an id that is no UUID", func(tok *store.Token) { tok.ID = "token-1" }, store.ErrInvalidData},
	} {
		tok := apiToken(orgA, "refused: "+c.name, now)
		c.change(&tok)
		_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Token, error) { return tx.CreateToken(ctx, tok) })
		wantErr(t, "CreateToken with "+c.name, err, c.want)
	}
	all, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Token, error) { return tx.ListTokens(ctx, "") })
	if err != nil || len(all) != 3 {
		t.Errorf("ListTokens after refused creations: %d tokens, %v; want 3", len(all), err)
	}
}

// The tokens of one organisation, or all of them, newest first.
func testListTokens(t *testing.T, s store.Store) {
	seed(t, s, 10)
	base := timestamp().Add(-time.Hour)
	var names []string
	for i, org := range []string{orgA, "", orgB, orgA, "", orgA} {
		name := fmt.Sprintf("token-%d", i)
		createToken(t, s, apiToken(org, name, base.Add(time.Duration(i)*time.Minute)))
		names = append(names, name)
	}
	list := func(orgID string) []string {
		t.Helper()
		toks, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.Token, error) { return tx.ListTokens(ctx, orgID) })
		if err != nil {
			t.Fatalf("ListTokens(%q): %v", orgID, err)
		}
		var out []string
		for _, tok := range toks {
			out = append(out, tok.Name)
		}
		return out
	}
	for _, c := range []struct {
		org  string
		want []string
	}{
		{orgA, []string{"token-5", "token-3", "token-0"}},
		{orgB, []string{"token-2"}},
		{"", []string{"token-5", "token-4", "token-3", "token-2", "token-1", "token-0"}},
		{"no-such-org", nil},
	} {
		if got := list(c.org); !slices.Equal(got, c.want) {
			t.Errorf("ListTokens(%q): got %v, want %v", c.org, got, c.want)
		}
	}
}

// A token is revoked once: revoking it again keeps the first time.
func testRevokeToken(t *testing.T, s store.Store) {
	seed(t, s, 10)
	tok := createToken(t, s, apiToken(orgA, "deploy", timestamp()))
	kept := createToken(t, s, apiToken(orgA, "kept", timestamp()))
	revoke := func(id string) (store.Token, error) {
		return read(t, s, func(ctx context.Context, tx store.Tx) (store.Token, error) { return tx.RevokeToken(ctx, id) })
	}
	first, err := revoke(tok.ID)
	if err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if first.RevokedAt.IsZero() || first.RevokedAt.Before(tok.CreatedAt.Add(-time.Minute)) {
		t.Errorf("RevokeToken: revoked at %v, want about now", first.RevokedAt)
	}
	want := tok
	want.RevokedAt = first.RevokedAt
	checkToken(t, "RevokeToken", first, want)
	time.Sleep(5 * time.Millisecond)
	second, err := revoke(strings.ToUpper(tok.ID))
	if err != nil {
		t.Fatalf("RevokeToken again (the id in upper case): %v", err)
	}
	checkToken(t, "RevokeToken again", second, want)
	got, err := tokenByHash(t, s, tok.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	checkToken(t, "TokenByHash of a revoked token", got, want)
	if got, err := tokenByHash(t, s, kept.SecretHash); err != nil || !got.RevokedAt.IsZero() {
		t.Errorf("another token after a revocation: %+v, %v; want it unrevoked", got, err)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid", ""} {
		_, err := revoke(id)
		wantErr(t, fmt.Sprintf("RevokeToken(%q)", id), err, store.ErrNotFound)
	}
}

// A token's last use only moves forward.
func testTouchToken(t *testing.T, s store.Store) {
	seed(t, s, 10)
	now := timestamp()
	tok := createToken(t, s, apiToken(orgA, "monitoring", now))
	other := createToken(t, s, apiToken(orgA, "other", now))
	touch := func(id string, at time.Time) error {
		return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error { return tx.TouchToken(ctx, id, at) })
	}
	for _, c := range []struct {
		name   string
		at     time.Time
		wantAt time.Time
	}{
		{"first use", now.Add(time.Minute), now.Add(time.Minute)},
		{"a later use", now.Add(2 * time.Minute), now.Add(2 * time.Minute)},
		{"an earlier use, recorded late", now.Add(time.Second), now.Add(2 * time.Minute)},
		{"the same time again", now.Add(2 * time.Minute), now.Add(2 * time.Minute)},
	} {
		if err := touch(tok.ID, c.at); err != nil {
			t.Fatalf("TouchToken (%s): %v", c.name, err)
		}
		got, err := tokenByHash(t, s, tok.SecretHash)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastUsedAt.Equal(c.wantAt) {
			t.Errorf("TouchToken (%s) at %v: last used %v, want %v", c.name, c.at, got.LastUsedAt, c.wantAt)
		}
	}
	if got, err := tokenByHash(t, s, other.SecretHash); err != nil || !got.LastUsedAt.IsZero() {
		t.Errorf("another token after a use: %+v, %v; want it never used", got, err)
	}
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		wantErr(t, fmt.Sprintf("TouchToken(%q)", id), touch(id, now), store.ErrNotFound)
	}
}
