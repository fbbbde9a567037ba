package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitprov/jitprov/internal/store"
)

type tx struct{ t querier }

const orgColumns = `id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
	update_policy, link_by_email, verified_domains, seat_warning_percent, landing_url, initial_admins,
	new_people, when_full, inactive_after_seconds, field_owners`

func scanOrg(row pgx.Row) (store.Organization, error) {
	var o store.Organization
	var inactiveAfter int64
	err := row.Scan(&o.ID, &o.Name, &o.MaxSeats, &o.SeatsUsed, &o.Roles, &o.DefaultRole,
		&o.JITRoleCeiling, &o.UpdatePolicy, &o.LinkByEmail, &o.VerifiedDomains, &o.SeatWarningPercent, &o.LandingURL, &o.InitialAdmins,
		&o.NewPeople, &o.WhenFull, &inactiveAfter, &o.FieldOwners)
	o.InactiveAfter = time.Duration(inactiveAfter) * time.Second
	if len(o.FieldOwners) == 0 {
		o.FieldOwners = nil
	}
	return o, err
}

const connColumns = `org_id, id, protocol, settings::text, display_name, replaces`

func scanConn(row pgx.Row) (store.Connection, error) {
	var c store.Connection
	err := row.Scan(&c.OrganizationID, &c.ID, &c.Protocol, &c.Settings, &c.DisplayName, &c.Replaces)
	return c, err
}

// userColumns names the columns of users as u.
const userColumns = `u.id::text, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
	u.display_name, u.groups, u.role, u.role_source, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at,
	u.suspended_reason, u.scim_managed,
	coalesce(u.scim_user_name, ''), coalesce(u.scim_external_id, ''), u.scim_deleted, u.scim_deactivated`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var lastLogin *time.Time
	err := row.Scan(&u.ID, &u.OrganizationID, &u.Email, &u.EmailVerified,
		&u.GivenName, &u.FamilyName, &u.DisplayName, &u.Groups, &u.Role, &u.RoleSource, &u.Status, &u.Attributes,
		&u.CreatedBy, &u.CreatedAt, &u.UpdatedAt, &lastLogin, &u.SuspendedReason, &u.SCIM.Managed,
		&u.SCIM.UserName, &u.SCIM.ExternalID, &u.SCIM.Deleted, &u.SCIM.Deactivated)
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
	c, err := scanConn(x.t.QueryRow(ctx, `SELECT `+connColumns+` FROM connections
		WHERE org_id = $1 AND id = $2`, orgID, id))
	if err != nil {
		return c, fmt.Errorf("postgres: connection %q of organisation %q: %w", id, orgID, mapErr(err))
	}
	return c, nil
}

func (x *tx) Connections(ctx context.Context, orgID string) ([]store.Connection, error) {
	rows, err := x.t.Query(ctx, `SELECT `+connColumns+` FROM connections WHERE org_id = $1 ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("postgres: connections of %q: %w", orgID, mapErr(err))
	}
	conns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Connection, error) { return scanConn(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: connections of %q: %w", orgID, mapErr(err))
	}
	return conns, nil
}

func (x *tx) UserByIdentity(ctx context.Context, orgID, connID, externalID string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `SELECT `+userColumns+` FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.org_id = $1 AND i.connection_id = $2 AND i.external_id = $3 FOR UPDATE OF u`, orgID, connID, externalID))
	if err != nil {
		return u, fmt.Errorf("postgres: user of identity %q of connection %q in %q: %w", externalID, connID, orgID, mapErr(err))
	}
	return u, nil
}

const identityColumns = `org_id, connection_id, external_id, user_id::text, linked_by, first_seen_at, last_seen_at`

func scanIdentity(row pgx.Row) (store.Identity, error) {
	var i store.Identity
	err := row.Scan(&i.OrganizationID, &i.ConnectionID, &i.ExternalID, &i.UserID, &i.LinkedBy, &i.FirstSeenAt, &i.LastSeenAt)
	return i, err
}

func (x *tx) Identities(ctx context.Context, userID string) ([]store.Identity, error) {
	rows, err := x.t.Query(ctx, `SELECT `+identityColumns+` FROM identities
		WHERE user_id = $1::uuid ORDER BY first_seen_at, connection_id, external_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: identities of user %s: %w", userID, mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Identity, error) { return scanIdentity(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: identities of user %s: %w", userID, mapErr(err))
	}
	return ids, nil
}

func (x *tx) LinkIdentity(ctx context.Context, id store.Identity) (store.Identity, error) {
	// The user must be of the identity's organisation: selected, not only
	// referenced.
	out, err := scanIdentity(x.t.QueryRow(ctx, `INSERT INTO identities
		(org_id, connection_id, external_id, user_id, linked_by)
		SELECT $1, $2, $3, u.id, $5 FROM users u WHERE u.id = $4::uuid AND u.org_id = $1
		RETURNING `+identityColumns, id.OrganizationID, id.ConnectionID, id.ExternalID, id.UserID, id.LinkedBy))
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" { // no such connection
			return out, fmt.Errorf("postgres: link identity %q of connection %q in %q: %w: %s", id.ExternalID, id.ConnectionID, id.OrganizationID, store.ErrNotFound, pgErr.Message)
		}
		return out, fmt.Errorf("postgres: link identity %q of connection %q in %q to user %s: %w", id.ExternalID, id.ConnectionID, id.OrganizationID, id.UserID, mapErr(err))
	}
	return out, nil
}

func (x *tx) UnlinkIdentity(ctx context.Context, orgID, connID, externalID string) (store.Identity, error) {
	out, err := scanIdentity(x.t.QueryRow(ctx, `DELETE FROM identities
		WHERE org_id = $1 AND connection_id = $2 AND external_id = $3 RETURNING `+identityColumns, orgID, connID, externalID))
	if err != nil {
		return out, fmt.Errorf("postgres: unlink identity %q of connection %q in %q: %w", externalID, connID, orgID, mapErr(err))
	}
	return out, nil
}

func (x *tx) SeeIdentity(ctx context.Context, orgID, connID, externalID string) error {
	tag, err := x.t.Exec(ctx, `WITH i AS (UPDATE identities SET last_seen_at = greatest(last_seen_at, now())
		  WHERE org_id = $1 AND connection_id = $2 AND external_id = $3 RETURNING user_id)
		UPDATE users u SET last_login_at = greatest(u.last_login_at, now()) FROM i WHERE u.id = i.user_id`,
		orgID, connID, externalID)
	if err != nil {
		return fmt.Errorf("postgres: record a sign-in of identity %q of connection %q in %q: %w", externalID, connID, orgID, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: identity %q of connection %q in %q: %w", externalID, connID, orgID, store.ErrNotFound)
	}
	return nil
}

func (x *tx) UserByEmail(ctx context.Context, orgID, email string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `SELECT `+userColumns+` FROM users u
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
	out, err := scanUser(x.t.QueryRow(ctx, `INSERT INTO users AS u
		(id, org_id, email, given_name, family_name, display_name,
		 groups, role, status, attributes, created_by, email_verified, last_login_at, role_source, scim_managed)
		VALUES ($1::uuid, $2, NULLIF($3, ''), $4, $5, $6,
		 $7, $8, $9, $10, $11, $12, now(), $13, $14)
		RETURNING `+userColumns,
		u.ID, u.OrganizationID, u.Email, u.GivenName, u.FamilyName,
		u.DisplayName, nonNil(u.Groups), u.Role, u.Status, nonNilMap(u.Attributes), u.CreatedBy, u.EmailVerified,
		roleSource(u), u.SCIM.Managed))
	if err != nil {
		return out, fmt.Errorf("postgres: create user in %q: %w", u.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	out, err := scanUser(x.t.QueryRow(ctx, `UPDATE users AS u SET
		email = NULLIF($2, ''),
		given_name = $3, family_name = $4, display_name = $5, groups = $6, role = $7,
		attributes = $8, email_verified = $9, role_source = coalesce(NULLIF($10, ''), role_source),
		updated_at = now(), last_login_at = now()
		WHERE id = $1::uuid
		RETURNING `+userColumns,
		u.ID, u.Email, u.GivenName, u.FamilyName, u.DisplayName,
		nonNil(u.Groups), u.Role, nonNilMap(u.Attributes), u.EmailVerified, u.RoleSource))
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

// roleSource is the source of a new user's role: u's, or the default for
// its creator.
func roleSource(u store.User) string {
	if u.RoleSource != "" {
		return u.RoleSource
	}
	return store.DefaultRoleSource(u.CreatedBy)
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
