package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/store"
)

type tx struct{ t pgx.Tx }

const orgColumns = `id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
	update_policy, link_by_email, verified_domains, seat_warning_percent`

func scanOrg(row pgx.Row) (store.Organization, error) {
	var o store.Organization
	err := row.Scan(&o.ID, &o.Name, &o.MaxSeats, &o.SeatsUsed, &o.Roles, &o.DefaultRole,
		&o.JITRoleCeiling, &o.UpdatePolicy, &o.LinkByEmail, &o.VerifiedDomains, &o.SeatWarningPercent)
	return o, err
}

const userColumns = `id::text, org_id, coalesce(connection_id, ''), coalesce(external_id, ''),
	coalesce(email, ''), email_verified, given_name, family_name, display_name, groups, role, status, attributes,
	created_by, created_at, updated_at, last_login_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var lastLogin *time.Time
	err := row.Scan(&u.ID, &u.OrganizationID, &u.ConnectionID, &u.ExternalID, &u.Email, &u.EmailVerified,
		&u.GivenName, &u.FamilyName, &u.DisplayName, &u.Groups, &u.Role, &u.Status, &u.Attributes,
		&u.CreatedBy, &u.CreatedAt, &u.UpdatedAt, &lastLogin)
	if lastLogin != nil {
		u.LastLoginAt = *lastLogin
	}
	return u, err
}

func (x *tx) Decision(ctx context.Context, loginID string) (store.Decision, error) {
	return decision(ctx, x.t, loginID)
}

// Decision implements store.Store.
func (s *Store) Decision(ctx context.Context, loginID string) (store.Decision, error) {
	return decision(ctx, s.pool, loginID)
}

func decision(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, loginID string) (store.Decision, error) {
	var d store.Decision
	err := q.QueryRow(ctx, `SELECT login_id, org_id, connection_id, external_id, outcome, reason,
		coalesce(user_id::text, ''), result, decided_at
		FROM provisioning_decisions WHERE login_id = $1`, loginID).
		Scan(&d.LoginID, &d.OrganizationID, &d.ConnectionID, &d.ExternalID, &d.Outcome, &d.Reason,
			&d.UserID, &d.Result, &d.DecidedAt)
	if err != nil {
		return d, fmt.Errorf("postgres: decision for login %s: %w", loginID, mapErr(err))
	}
	return d, nil
}

func (x *tx) RecordDecision(ctx context.Context, d store.Decision) error {
	_, err := x.t.Exec(ctx, `INSERT INTO provisioning_decisions
		(login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
		VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '')::uuid, $8, coalesce($9, now()))`,
		d.LoginID, d.OrganizationID, d.ConnectionID, d.ExternalID, d.Outcome, d.Reason, d.UserID,
		string(d.Result), nullTime(d.DecidedAt))
	if err != nil {
		return fmt.Errorf("postgres: record decision for login %s: %w", d.LoginID, mapErr(err))
	}
	return nil
}

func (x *tx) Organization(ctx context.Context, id string) (store.Organization, error) {
	o, err := scanOrg(x.t.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id))
	if err != nil {
		return o, fmt.Errorf("postgres: organisation %q: %w", id, mapErr(err))
	}
	return o, nil
}

func (x *tx) Connection(ctx context.Context, orgID, id string) (store.Connection, error) {
	var c store.Connection
	err := x.t.QueryRow(ctx, `SELECT org_id, id, protocol, settings::text FROM connections
		WHERE org_id = $1 AND id = $2`, orgID, id).Scan(&c.OrganizationID, &c.ID, &c.Protocol, &c.Settings)
	if err != nil {
		return c, fmt.Errorf("postgres: connection %q of organisation %q: %w", id, orgID, mapErr(err))
	}
	return c, nil
}

func (x *tx) UserByExternalID(ctx context.Context, orgID, connID, externalID string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE org_id = $1 AND connection_id = $2 AND external_id = $3 FOR UPDATE`, orgID, connID, externalID))
	if err != nil {
		return u, fmt.Errorf("postgres: user %q of connection %q in %q: %w", externalID, connID, orgID, mapErr(err))
	}
	return u, nil
}

func (x *tx) UserByEmail(ctx context.Context, orgID, email string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `SELECT `+userColumns+` FROM users
		WHERE org_id = $1 AND lower(email) = lower($2) FOR UPDATE`, orgID, email))
	if err != nil {
		return u, fmt.Errorf("postgres: user by email in %q: %w", orgID, mapErr(err))
	}
	return u, nil
}

func (x *tx) TakeSeat(ctx context.Context, orgID string) (store.Organization, error) {
	// The conditional UPDATE is the seat check: it locks the organisation's
	// row, so concurrent first logins queue here and none can pass max_seats.
	o, err := scanOrg(x.t.QueryRow(ctx, `UPDATE organizations
		SET seats_used = seats_used + 1, updated_at = now()
		WHERE id = $1 AND seats_used < max_seats
		RETURNING `+orgColumns, orgID))
	if err == nil {
		return o, nil
	}
	if err := mapErr(err); !errors.Is(err, store.ErrNotFound) {
		return o, fmt.Errorf("postgres: take a seat in %q: %w", orgID, err)
	}
	o, err = x.Organization(ctx, orgID)
	if err != nil {
		return o, err
	}
	return o, fmt.Errorf("postgres: organisation %q uses %d of %d seats: %w", orgID, o.SeatsUsed, o.MaxSeats, store.ErrSeatsExhausted)
}

func (x *tx) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	out, err := scanUser(x.t.QueryRow(ctx, `INSERT INTO users
		(id, org_id, connection_id, external_id, email, given_name, family_name, display_name,
		 groups, role, status, attributes, created_by, email_verified, last_login_at)
		VALUES ($1::uuid, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), $6, $7, $8,
		 $9, $10, $11, $12, $13, $14, now())
		RETURNING `+userColumns,
		u.ID, u.OrganizationID, u.ConnectionID, u.ExternalID, u.Email, u.GivenName, u.FamilyName,
		u.DisplayName, nonNil(u.Groups), u.Role, u.Status, nonNilMap(u.Attributes), u.CreatedBy, u.EmailVerified))
	if err != nil {
		return out, fmt.Errorf("postgres: create user in %q: %w", u.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	out, err := scanUser(x.t.QueryRow(ctx, `UPDATE users SET
		connection_id = NULLIF($2, ''), external_id = NULLIF($3, ''), email = NULLIF($4, ''),
		given_name = $5, family_name = $6, display_name = $7, groups = $8, role = $9,
		attributes = $10, email_verified = $11, updated_at = now(), last_login_at = now()
		WHERE id = $1::uuid
		RETURNING `+userColumns,
		u.ID, u.ConnectionID, u.ExternalID, u.Email, u.GivenName, u.FamilyName, u.DisplayName,
		nonNil(u.Groups), u.Role, nonNilMap(u.Attributes), u.EmailVerified))
	if err != nil {
		return out, fmt.Errorf("postgres: update user %s: %w", u.ID, mapErr(err))
	}
	return out, nil
}

func (x *tx) PendingRoleReview(ctx context.Context, userID, role string) (store.RoleReview, error) {
	var r store.RoleReview
	err := x.t.QueryRow(ctx, `SELECT id::text, org_id, user_id::text, held_role, requested_role,
		status, login_id, created_at FROM role_reviews
		WHERE user_id = $1::uuid AND requested_role = $2 AND status = 'pending'`, userID, role).
		Scan(&r.ID, &r.OrganizationID, &r.UserID, &r.CurrentRole, &r.RequestedRole, &r.Status, &r.LoginID, &r.CreatedAt)
	if err != nil {
		return r, fmt.Errorf("postgres: pending review of %s for %q: %w", userID, role, mapErr(err))
	}
	return r, nil
}

func (x *tx) CreateRoleReview(ctx context.Context, r store.RoleReview) (store.RoleReview, error) {
	err := x.t.QueryRow(ctx, `INSERT INTO role_reviews
		(id, org_id, user_id, held_role, requested_role, status, login_id)
		VALUES ($1::uuid, $2, $3::uuid, $4, $5, 'pending', $6) RETURNING status, created_at`,
		r.ID, r.OrganizationID, r.UserID, r.CurrentRole, r.RequestedRole, r.LoginID).Scan(&r.Status, &r.CreatedAt)
	if err != nil {
		return r, fmt.Errorf("postgres: create role review for %s: %w", r.UserID, mapErr(err))
	}
	return r, nil
}

func (x *tx) AppendOutbox(ctx context.Context, msgs ...store.OutboxMessage) error {
	for _, m := range msgs {
		header, data := m.Header, m.Data
		if header == nil {
			header = map[string][]string{}
		}
		if data == nil {
			data = []byte{}
		}
		if _, err := x.t.Exec(ctx, `INSERT INTO outbox (event_id, subject, header, data) VALUES ($1, $2, $3, $4)`,
			m.EventID, m.Subject, header, data); err != nil {
			return fmt.Errorf("postgres: append event %s to the outbox: %w", m.EventID, mapErr(err))
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string][]string) map[string][]string {
	if m == nil {
		return map[string][]string{}
	}
	return m
}

// nullTime is nil for the zero time, so that the column's default applies.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
