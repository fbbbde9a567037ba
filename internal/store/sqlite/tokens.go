package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/jitprov/jitprov/internal/store"
)

// API tokens, in a Tx (store/tokens.go). No error names a secret hash.

const tokenColumns = `id, name, coalesce(org_id, ''), scope, secret_hash, created_by, created_at, expires_at,
	revoked_at, last_used_at`

func scanToken(row scanner) (store.Token, error) {
	var t store.Token
	err := row.Scan(&t.ID, &t.Name, &t.OrganizationID, &t.Scope, &t.SecretHash, &t.CreatedBy,
		timeText{&t.CreatedAt}, timeText{&t.ExpiresAt}, timeText{&t.RevokedAt}, timeText{&t.LastUsedAt})
	return t, err
}

func (x *tx) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	if err := x.check(); err != nil {
		return store.Token{}, err
	}
	if t.ExpiresAt.IsZero() || len(t.SecretHash) == 0 {
		return store.Token{}, fmt.Errorf("sqlite: create token %q: %w: a token needs a secret hash and an expiry", t.Name, store.ErrInvalidData)
	}
	id, err := canonicalUUID(t.ID)
	if err != nil {
		x.aborted = err // as Postgres's failed cast does
		return store.Token{}, fmt.Errorf("sqlite: create token %q: %w: %w", t.Name, store.ErrInvalidData, err)
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = x.now
	}
	out, err := scanToken(x.t.QueryRowContext(ctx, `INSERT INTO api_tokens
		(id, name, org_id, scope, secret_hash, created_by, created_at, expires_at)
		VALUES (?, ?, NULLIF(?, ''), ?, ?, ?, ?, ?)
		RETURNING `+tokenColumns,
		id, t.Name, t.OrganizationID, t.Scope, t.SecretHash, t.CreatedBy, formatTime(created), formatTime(t.ExpiresAt)))
	if err != nil {
		var se *msqlite.Error
		if errors.As(err, &se) {
			switch se.Code() {
			case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
				x.aborted = err
				return out, fmt.Errorf("sqlite: create token %q in %q: %w: no such organisation", t.Name, t.OrganizationID, store.ErrNotFound)
			case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL: // an empty name, an unknown scope
				x.aborted = err
				return out, fmt.Errorf("sqlite: create token %q: %w: %w", t.Name, store.ErrInvalidData, err)
			}
		}
		return out, fmt.Errorf("sqlite: create token %q in %q: %w", t.Name, t.OrganizationID, x.fail(err))
	}
	return out, nil
}

func (x *tx) TokenByHash(ctx context.Context, hash []byte) (store.Token, error) {
	if err := x.check(); err != nil {
		return store.Token{}, err
	}
	t, err := scanToken(x.t.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE secret_hash = ?`, hash))
	if err != nil {
		return t, fmt.Errorf("sqlite: token by secret hash: %w", x.fail(err))
	}
	return t, nil
}

func (x *tx) ListTokens(ctx context.Context, orgID string) ([]store.Token, error) {
	var w where
	w.add("1 = 1")
	if orgID != "" {
		w.add("org_id = ?", orgID)
	}
	out, err := query(ctx, x, `SELECT `+tokenColumns+` FROM api_tokens WHERE `+w.String()+
		` ORDER BY created_at DESC, id DESC`, w.args, scanToken)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens of %q: %w", orgID, err)
	}
	return out, nil
}

// tokenID canonicalises a token id; one that is no UUID names no token.
func tokenID(id string) (string, error) {
	c, err := canonicalUUID(id)
	if err != nil {
		return "", fmt.Errorf("sqlite: token %q: %w", id, store.ErrNotFound)
	}
	return c, nil
}

func (x *tx) RevokeToken(ctx context.Context, id string) (store.Token, error) {
	if err := x.check(); err != nil {
		return store.Token{}, err
	}
	c, err := tokenID(id)
	if err != nil {
		return store.Token{}, err
	}
	t, err := scanToken(x.t.QueryRowContext(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?)
		WHERE id = ? RETURNING `+tokenColumns, formatTime(x.now), c))
	if err != nil {
		return t, fmt.Errorf("sqlite: revoke token %s: %w", id, x.fail(err))
	}
	return t, nil
}

func (x *tx) TouchToken(ctx context.Context, id string, at time.Time) error {
	if err := x.check(); err != nil {
		return err
	}
	c, err := tokenID(id)
	if err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("sqlite: record a use of token %s: %w: no time", id, store.ErrInvalidData)
	}
	// Stored times are fixed-width text: max compares them as times.
	res, err := x.t.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1`,
		c, formatTime(at))
	if err != nil {
		return fmt.Errorf("sqlite: record a use of token %s: %w", id, x.fail(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: record a use of token %s: %w", id, x.fail(err))
	} else if n == 0 {
		return fmt.Errorf("sqlite: record a use of token %s: %w", id, store.ErrNotFound)
	}
	return nil
}
