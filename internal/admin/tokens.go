package admin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/store"
)

// Token lifetimes.
const (
	// DefaultTokenLifetime is a new token's when the request names none.
	DefaultTokenLifetime = 90 * 24 * time.Hour
	// MaxTokenLifetime bounds every token's: every token expires.
	MaxTokenLifetime = 366 * 24 * time.Hour
	maxTokenName     = 100
)

// NewToken is a request for an API token.
type NewToken struct {
	// ID is the token's id; "" for a new random one. The API derives it
	// from an Idempotency-Key so that a retried creation is a conflict,
	// never a second token.
	ID   string
	Name string
	// OrganizationID scopes the token to one organisation; "" for a
	// global token.
	OrganizationID string
	// Scope is store.ScopeRead, store.ScopeWrite or store.ScopeSCIM (an
	// organisation's SCIM client: the SCIM endpoints of its organisation,
	// nothing else).
	Scope string
	// ExpiresAt is when the token stops working; zero for
	// DefaultTokenLifetime from now.
	ExpiresAt time.Time
}

// CreatedToken is a new token and its secret, which exists nowhere else:
// show it once.
type CreatedToken struct {
	Token  store.Token
	Secret string
}

// mayManageTokens checks that p may create or revoke (write) or list the
// tokens of orgID ("" for global tokens, or every token when listing).
//
//   - A global principal (an operator, a global token) manages every
//     token; creating or revoking takes its write scope.
//   - An organisation's admin signed in through its SSO manages that
//     organisation's tokens, never global ones.
//   - An organisation-scoped token never manages tokens, not even its
//     own organisation's: a leaked token cannot mint others.
func (c *Core) mayManageTokens(p Principal, org *store.Organization, write bool) error {
	if write && !p.Write {
		return fmt.Errorf("%w: %s %s may read, not change", ErrForbidden, p.Kind, p.ID)
	}
	if p.global() {
		return nil
	}
	if p.Kind == store.ActorToken {
		return fmt.Errorf("%w: an organisation's token does not manage tokens; an organisation admin or an operator does", ErrForbidden)
	}
	if org == nil {
		return fmt.Errorf("%w: global tokens are managed by operators only", ErrForbidden)
	}
	return c.may(p, *org, write)
}

// CreateToken creates an API token and returns its secret, the only time
// anyone sees it. See mayManageTokens for who may.
func (c *Core) CreateToken(ctx context.Context, p Principal, req NewToken) (CreatedToken, error) {
	req.Name = strings.TrimSpace(req.Name)
	now := c.now()
	switch {
	case req.Name == "":
		return CreatedToken{}, invalid("name", "required: say what the token is for, e.g. \"ci-deprovisioning\"")
	case len(req.Name) > maxTokenName:
		return CreatedToken{}, invalid("name", "%d characters is more than %d", len(req.Name), maxTokenName)
	case req.Scope != store.ScopeRead && req.Scope != store.ScopeWrite && req.Scope != store.ScopeSCIM:
		return CreatedToken{}, invalid("scope", "%q: want %q, %q or %q", req.Scope, store.ScopeRead, store.ScopeWrite, store.ScopeSCIM)
	case req.Scope == store.ScopeSCIM && req.OrganizationID == "":
		return CreatedToken{}, invalid("organization_id", "required with scope %q: a SCIM token provisions one organisation", store.ScopeSCIM)
	}
	if req.ExpiresAt.IsZero() {
		req.ExpiresAt = now.Add(DefaultTokenLifetime)
	}
	if !req.ExpiresAt.After(now) {
		return CreatedToken{}, invalid("expires_at", "%s is not in the future", req.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if req.ExpiresAt.Sub(now) > MaxTokenLifetime {
		return CreatedToken{}, invalid("expires_at", "at most %d days from now", int(MaxTokenLifetime.Hours()/24))
	}
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	secret, hash, err := token.Generate()
	if err != nil {
		return CreatedToken{}, err
	}
	var out CreatedToken
	err = c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var org *store.Organization
		if req.OrganizationID != "" {
			o, err := tx.Organization(ctx, req.OrganizationID)
			if err != nil {
				return fmt.Errorf("organisation %q: %w", req.OrganizationID, err)
			}
			org = &o
		}
		if err := c.mayManageTokens(p, org, true); err != nil {
			return err
		}
		t, err := tx.CreateToken(ctx, store.Token{ID: req.ID, Name: req.Name, OrganizationID: req.OrganizationID,
			Scope: req.Scope, SecretHash: hash, CreatedBy: p.decidedBy(), ExpiresAt: req.ExpiresAt.UTC()})
		if err != nil {
			return err
		}
		out = CreatedToken{Token: t, Secret: secret}
		ch := &change{ctx: ctx, p: p, org: req.OrganizationID}
		return ch.commit(tx, "token.create", t.ID, map[string]any{"name": t.Name, "scope": t.Scope,
			"expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)})
	})
	return out, mapErr(err)
}

// Tokens lists the tokens of orgID, or every token when orgID is "" (a
// global principal's). Secrets are never stored, so never listed.
func (c *Core) Tokens(ctx context.Context, p Principal, orgID string) ([]store.Token, error) {
	if orgID == "" && !p.global() {
		orgID = p.Organization
	}
	var out []store.Token
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		var org *store.Organization
		if orgID != "" {
			o, err := tx.Organization(ctx, orgID)
			if err != nil {
				return fmt.Errorf("organisation %q: %w", orgID, err)
			}
			org = &o
		}
		if err := c.mayManageTokens(p, org, false); err != nil {
			return err
		}
		var err error
		out, err = tx.ListTokens(ctx, orgID)
		return err
	})
	return out, mapErr(err)
}

// RevokeToken revokes a token at once; revoking a revoked token changes
// nothing (Changed false). A token p may not manage is not found.
func (c *Core) RevokeToken(ctx context.Context, p Principal, id string) (store.Token, bool, error) {
	var out store.Token
	changed := false
	err := c.store.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		scope := ""
		if !p.global() {
			scope = p.Organization
		}
		all, err := tx.ListTokens(ctx, scope)
		if err != nil {
			return err
		}
		var found *store.Token
		for i := range all {
			if all[i].ID == id {
				found = &all[i]
			}
		}
		if found == nil {
			return fmt.Errorf("%w: token %q", ErrNotFound, id)
		}
		var org *store.Organization
		if found.OrganizationID != "" {
			o, err := tx.Organization(ctx, found.OrganizationID)
			if err != nil {
				return err
			}
			org = &o
		}
		if err := c.mayManageTokens(p, org, true); err != nil {
			return err
		}
		if !found.RevokedAt.IsZero() {
			out = *found
			return nil
		}
		if out, err = tx.RevokeToken(ctx, id); err != nil {
			return err
		}
		changed = true
		ch := &change{ctx: ctx, p: p, org: found.OrganizationID}
		return ch.commit(tx, "token.revoke", id, map[string]any{"name": found.Name})
	})
	return out, changed, mapErr(err)
}
