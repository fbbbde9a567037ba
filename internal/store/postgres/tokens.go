package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitprov/jitprov/internal/store"
)

// API tokens, in a Tx (store/tokens.go). No error names a secret hash.

const tokenColumns = `id::text, name, coalesce(org_id, ''), scope, secret_hash, created_by, created_at, expires_at,
	revoked_at, last_used_at`

func scanToken(row pgx.Row) (store.Token, error) {
	var t store.Token
	var revoked, used *time.Time
	err := row.Scan(&t.ID, &t.Name, &t.OrganizationID, &t.Scope, &t.SecretHash, &t.CreatedBy, &t.CreatedAt, &t.ExpiresAt,
		&revoked, &used)
	if revoked != nil {
		t.RevokedAt = *revoked
	}
	if used != nil {
		t.LastUsedAt = *used
	}
	return t, err
}

func (x *tx) CreateToken(ctx context.Context, t store.Token) (store.Token, error) {
	if t.ExpiresAt.IsZero() || len(t.SecretHash) == 0 {
		return store.Token{}, fmt.Errorf("postgres: create token %q: %w: a token needs a secret hash and an expiry", t.Name, store.ErrInvalidData)
	}
	out, err := scanToken(x.t.QueryRow(ctx, `INSERT INTO api_tokens
		(id, name, org_id, scope, secret_hash, created_by, created_at, expires_at)
		VALUES ($1::uuid, $2, NULLIF($3, ''), $4, $5, $6, coalesce($7, now()), $8)
		RETURNING `+tokenColumns,
		t.ID, t.Name, t.OrganizationID, t.Scope, t.SecretHash, t.CreatedBy, nullTime(t.CreatedAt), t.ExpiresAt))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			switch pgErr.Code {
			case "23503": // no such organisation
				return out, fmt.Errorf("postgres: create token %q in %q: %w: no such organisation", t.Name, t.OrganizationID, store.ErrNotFound)
			case "23514", "23502": // an empty name, an unknown scope
				return out, fmt.Errorf("postgres: create token %q: %w: %s", t.Name, store.ErrInvalidData, pgErr.Message)
			}
		}
		return out, fmt.Errorf("postgres: create token %q in %q: %w", t.Name, t.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) TokenByHash(ctx context.Context, hash []byte) (store.Token, error) {
	t, err := scanToken(x.t.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE secret_hash = $1`, hash))
	if err != nil {
		return t, fmt.Errorf("postgres: token by secret hash: %w", mapErr(err))
	}
	return t, nil
}

func (x *tx) ListTokens(ctx context.Context, orgID string) ([]store.Token, error) {
	var w where
	w.add("true")
	if orgID != "" {
		w.add("org_id = ?", orgID)
	}
	rows, err := x.t.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE `+w.String()+
		` ORDER BY created_at DESC, id DESC`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens of %q: %w", orgID, mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens of %q: %w", orgID, mapErr(err))
	}
	return out, nil
}

// tokenID parses a token id; one that is no UUID names no token (rather
// than failing the transaction, as a cast would).
func tokenID(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", fmt.Errorf("postgres: token %q: %w", id, store.ErrNotFound)
	}
	return u.String(), nil
}

func (x *tx) RevokeToken(ctx context.Context, id string) (store.Token, error) {
	u, err := tokenID(id)
	if err != nil {
		return store.Token{}, err
	}
	t, err := scanToken(x.t.QueryRow(ctx, `UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
		WHERE id = $1::uuid RETURNING `+tokenColumns, u))
	if err != nil {
		return t, fmt.Errorf("postgres: revoke token %s: %w", id, mapErr(err))
	}
	return t, nil
}

func (x *tx) TouchToken(ctx context.Context, id string, at time.Time) error {
	u, err := tokenID(id)
	if err != nil {
		return err
	}
	if at.IsZero() {
		return fmt.Errorf("postgres: record a use of token %s: %w: no time", id, store.ErrInvalidData)
	}
	// greatest ignores NULL: the first use is recorded too.
	tag, err := x.t.Exec(ctx, `UPDATE api_tokens SET last_used_at = greatest(last_used_at, $2) WHERE id = $1::uuid`, u, at)
	if err != nil {
		return fmt.Errorf("postgres: record a use of token %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: record a use of token %s: %w", id, store.ErrNotFound)
	}
	return nil
}
