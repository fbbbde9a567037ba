package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/jitprov/jitprov/internal/store"
)

// tx is a store.Tx on a write transaction. Every transaction holds the
// database's write lock from its BEGIN IMMEDIATE to its end, so whatever it
// reads stays as read until then: the lookups that lock a user in Postgres
// (SELECT … FOR UPDATE) need nothing more here.
type tx struct {
	t   *sql.Tx
	now time.Time // the transaction's now(), as in Postgres
	// aborted is the first statement error; see errAborted.
	aborted error
}

// check refuses work in an aborted transaction.
func (x *tx) check() error {
	if x.aborted != nil {
		return fmt.Errorf("sqlite: %w (by: %s)", errAborted, x.aborted.Error())
	}
	return nil
}

// fail maps err to the store's sentinels and aborts the transaction, unless
// err only says that no row matched (which is no error in SQL).
func (x *tx) fail(err error) error {
	if err != nil && !errors.Is(err, sql.ErrNoRows) && x.aborted == nil {
		x.aborted = err
	}
	return mapErr(err)
}

type scanner interface{ Scan(dest ...any) error }

const orgColumns = `id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling,
	update_policy, link_by_email, verified_domains, seat_warning_percent, landing_url, initial_admins,
	new_people, when_full, inactive_after_seconds, field_owners`

func scanOrg(row scanner) (store.Organization, error) {
	var o store.Organization
	var inactiveAfter int64
	err := row.Scan(&o.ID, &o.Name, &o.MaxSeats, &o.SeatsUsed, jsonText{&o.Roles}, &o.DefaultRole,
		&o.JITRoleCeiling, &o.UpdatePolicy, &o.LinkByEmail, jsonText{&o.VerifiedDomains}, &o.SeatWarningPercent,
		&o.LandingURL, jsonText{&o.InitialAdmins}, &o.NewPeople, &o.WhenFull, &inactiveAfter, jsonText{&o.FieldOwners})
	o.InactiveAfter = time.Duration(inactiveAfter) * time.Second
	if len(o.FieldOwners) == 0 {
		o.FieldOwners = nil
	}
	return o, err
}

const connColumns = `org_id, id, protocol, settings, display_name, replaces`

func scanConn(row scanner) (store.Connection, error) {
	var c store.Connection
	err := row.Scan(&c.OrganizationID, &c.ID, &c.Protocol, &c.Settings, &c.DisplayName, &c.Replaces)
	return c, err
}

// userColumns names the columns of users as u.
const userColumns = `u.id, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
	u.display_name, u.groups, u.role, u.role_source, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at,
	u.suspended_reason, u.scim_managed,
	coalesce(u.scim_user_name, ''), coalesce(u.scim_external_id, ''), u.scim_deleted, u.scim_deactivated`

// userReturning is userColumns for a RETURNING clause, which names no
// table in SQLite.
var userReturning = strings.ReplaceAll(userColumns, "u.", "")

func scanUser(row scanner) (store.User, error) {
	var u store.User
	err := row.Scan(&u.ID, &u.OrganizationID, &u.Email, &u.EmailVerified,
		&u.GivenName, &u.FamilyName, &u.DisplayName, jsonText{&u.Groups}, &u.Role, &u.RoleSource, &u.Status, jsonText{&u.Attributes},
		&u.CreatedBy, timeText{&u.CreatedAt}, timeText{&u.UpdatedAt}, timeText{&u.LastLoginAt},
		&u.SuspendedReason, &u.SCIM.Managed,
		&u.SCIM.UserName, &u.SCIM.ExternalID, &u.SCIM.Deleted, &u.SCIM.Deactivated)
	return u, err
}

func (x *tx) Decision(ctx context.Context, loginID string) (store.Decision, error) {
	if err := x.check(); err != nil {
		return store.Decision{}, err
	}
	d, err := scanDecision(x.t.QueryRowContext(ctx, decisionQuery, loginID))
	if err != nil {
		return d, fmt.Errorf("sqlite: decision for login %s: %w", loginID, x.fail(err))
	}
	return d, nil
}

// Decision implements store.Store, on a reader: it never waits for the
// writer.
func (s *Store) Decision(ctx context.Context, loginID string) (store.Decision, error) {
	d, err := scanDecision(s.r.QueryRowContext(ctx, decisionQuery, loginID))
	if err != nil {
		return d, fmt.Errorf("sqlite: decision for login %s: %w", loginID, mapErr(err))
	}
	return d, nil
}

const decisionQuery = `SELECT login_id, org_id, connection_id, external_id, outcome, reason,
	coalesce(user_id, ''), result, decided_at
	FROM provisioning_decisions WHERE login_id = ?`

func scanDecision(row scanner) (store.Decision, error) {
	var d store.Decision
	err := row.Scan(&d.LoginID, &d.OrganizationID, &d.ConnectionID, &d.ExternalID, &d.Outcome, &d.Reason,
		&d.UserID, &d.Result, timeText{&d.DecidedAt})
	return d, err
}

func (x *tx) RecordDecision(ctx context.Context, d store.Decision) error {
	if err := x.check(); err != nil {
		return err
	}
	userID, err := optionalUUID(d.UserID)
	if err != nil {
		return fmt.Errorf("sqlite: record decision for login %s: %w", d.LoginID, x.fail(err))
	}
	decided := d.DecidedAt
	if decided.IsZero() {
		decided = x.now
	}
	_, err = x.t.ExecContext(ctx, `INSERT INTO provisioning_decisions
		(login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, json(?), ?)`,
		d.LoginID, d.OrganizationID, d.ConnectionID, d.ExternalID, d.Outcome, d.Reason, userID,
		string(d.Result), formatTime(decided))
	if err != nil {
		return fmt.Errorf("sqlite: record decision for login %s: %w", d.LoginID, x.fail(err))
	}
	return nil
}

func (x *tx) Organization(ctx context.Context, id string) (store.Organization, error) {
	if err := x.check(); err != nil {
		return store.Organization{}, err
	}
	o, err := scanOrg(x.t.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = ?`, id))
	if err != nil {
		return o, fmt.Errorf("sqlite: organisation %q: %w", id, x.fail(err))
	}
	return o, nil
}

func (x *tx) Connection(ctx context.Context, orgID, id string) (store.Connection, error) {
	if err := x.check(); err != nil {
		return store.Connection{}, err
	}
	c, err := scanConn(x.t.QueryRowContext(ctx, `SELECT `+connColumns+` FROM connections
		WHERE org_id = ? AND id = ?`, orgID, id))
	if err != nil {
		return c, fmt.Errorf("sqlite: connection %q of organisation %q: %w", id, orgID, x.fail(err))
	}
	return c, nil
}

func (x *tx) Connections(ctx context.Context, orgID string) ([]store.Connection, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	rows, err := x.t.QueryContext(ctx, `SELECT `+connColumns+` FROM connections WHERE org_id = ? ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: connections of %q: %w", orgID, x.fail(err))
	}
	defer rows.Close()
	var out []store.Connection
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: connections of %q: %w", orgID, x.fail(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: connections of %q: %w", orgID, x.fail(err))
	}
	return out, nil
}

func (x *tx) UserByIdentity(ctx context.Context, orgID, connID, externalID string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `SELECT `+userColumns+` FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.org_id = ? AND i.connection_id = ? AND i.external_id = ?`, orgID, connID, externalID))
	if err != nil {
		return u, fmt.Errorf("sqlite: user of identity %q of connection %q in %q: %w", externalID, connID, orgID, x.fail(err))
	}
	return u, nil
}

const identityColumns = `org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at`

func scanIdentity(row scanner) (store.Identity, error) {
	var i store.Identity
	err := row.Scan(&i.OrganizationID, &i.ConnectionID, &i.ExternalID, &i.UserID, &i.LinkedBy,
		timeText{&i.FirstSeenAt}, timeText{&i.LastSeenAt})
	return i, err
}

func (x *tx) Identities(ctx context.Context, userID string) ([]store.Identity, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	id, err := canonicalUUID(userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: identities of user %s: %w", userID, x.fail(err))
	}
	rows, err := x.t.QueryContext(ctx, `SELECT `+identityColumns+` FROM identities
		WHERE user_id = ? ORDER BY first_seen_at, connection_id, external_id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: identities of user %s: %w", userID, x.fail(err))
	}
	defer rows.Close()
	var out []store.Identity
	for rows.Next() {
		i, err := scanIdentity(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: identities of user %s: %w", userID, x.fail(err))
		}
		out = append(out, i)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: identities of user %s: %w", userID, x.fail(err))
	}
	return out, nil
}

func (x *tx) LinkIdentity(ctx context.Context, id store.Identity) (store.Identity, error) {
	if err := x.check(); err != nil {
		return store.Identity{}, err
	}
	userID, err := canonicalUUID(id.UserID)
	if err != nil {
		return store.Identity{}, fmt.Errorf("sqlite: link identity %q to user %s: %w", id.ExternalID, id.UserID, x.fail(err))
	}
	// The user must be of the identity's organisation: selected, not only
	// referenced.
	now := formatTime(x.now)
	out, err := scanIdentity(x.t.QueryRowContext(ctx, `INSERT INTO identities
		(org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at)
		SELECT ?1, ?2, ?3, u.id, ?5, ?6, ?6 FROM users u WHERE u.id = ?4 AND u.org_id = ?1
		RETURNING `+identityColumns, id.OrganizationID, id.ConnectionID, id.ExternalID, userID, id.LinkedBy, now))
	if err != nil {
		var se *msqlite.Error
		if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY { // no such connection
			x.aborted = err
			return out, fmt.Errorf("sqlite: link identity %q of connection %q in %q: %w: no such connection", id.ExternalID, id.ConnectionID, id.OrganizationID, store.ErrNotFound)
		}
		return out, fmt.Errorf("sqlite: link identity %q of connection %q in %q to user %s: %w", id.ExternalID, id.ConnectionID, id.OrganizationID, id.UserID, x.fail(err))
	}
	return out, nil
}

func (x *tx) UnlinkIdentity(ctx context.Context, orgID, connID, externalID string) (store.Identity, error) {
	if err := x.check(); err != nil {
		return store.Identity{}, err
	}
	out, err := scanIdentity(x.t.QueryRowContext(ctx, `DELETE FROM identities
		WHERE org_id = ? AND connection_id = ? AND external_id = ? RETURNING `+identityColumns, orgID, connID, externalID))
	if err != nil {
		return out, fmt.Errorf("sqlite: unlink identity %q of connection %q in %q: %w", externalID, connID, orgID, x.fail(err))
	}
	return out, nil
}

func (x *tx) SeeIdentity(ctx context.Context, orgID, connID, externalID string) error {
	if err := x.check(); err != nil {
		return err
	}
	res, err := x.t.ExecContext(ctx, `UPDATE identities SET last_seen_at = max(last_seen_at, ?4)
		WHERE org_id = ?1 AND connection_id = ?2 AND external_id = ?3`, orgID, connID, externalID, formatTime(x.now))
	if err != nil {
		return fmt.Errorf("sqlite: record a sign-in of identity %q of connection %q in %q: %w", externalID, connID, orgID, x.fail(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: record a sign-in of identity %q: %w", externalID, x.fail(err))
	} else if n == 0 {
		return fmt.Errorf("sqlite: identity %q of connection %q in %q: %w", externalID, connID, orgID, store.ErrNotFound)
	}
	if _, err := x.t.ExecContext(ctx, `UPDATE users SET last_login_at = max(coalesce(last_login_at, ?4), ?4)
		WHERE id = (SELECT user_id FROM identities WHERE org_id = ?1 AND connection_id = ?2 AND external_id = ?3)`,
		orgID, connID, externalID, formatTime(x.now)); err != nil {
		return fmt.Errorf("sqlite: record a sign-in of identity %q of connection %q in %q: %w", externalID, connID, orgID, x.fail(err))
	}
	return nil
}

func (x *tx) UserByEmail(ctx context.Context, orgID, email string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u
		WHERE org_id = ? AND email_lower = ?`, orgID, strings.ToLower(email)))
	if err != nil {
		return u, fmt.Errorf("sqlite: user by email in %q: %w", orgID, x.fail(err))
	}
	return u, nil
}

func (x *tx) TakeSeat(ctx context.Context, orgID string) (store.Organization, error) {
	if err := x.check(); err != nil {
		return store.Organization{}, err
	}
	// The conditional UPDATE is the seat check, and the only statement that
	// moves seats_used up: it cannot pass max_seats.
	o, err := scanOrg(x.t.QueryRowContext(ctx, `UPDATE organizations
		SET seats_used = seats_used + 1, updated_at = ?
		WHERE id = ? AND seats_used < max_seats
		RETURNING `+orgColumns, formatTime(x.now), orgID))
	if err == nil {
		return o, nil
	}
	if err := x.fail(err); !errors.Is(err, store.ErrNotFound) {
		return o, fmt.Errorf("sqlite: take a seat in %q: %w", orgID, err)
	}
	o, err = x.Organization(ctx, orgID)
	if err != nil {
		return o, err
	}
	return o, fmt.Errorf("sqlite: organisation %q uses %d of %d seats: %w", orgID, o.SeatsUsed, o.MaxSeats, store.ErrSeatsExhausted)
}

func (x *tx) CreateUser(ctx context.Context, u store.User) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	id, err := canonicalUUID(u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: create user in %q: %w", u.OrganizationID, x.fail(err))
	}
	now := formatTime(x.now)
	out, err := scanUser(x.t.QueryRowContext(ctx, `INSERT INTO users
		(id, org_id, email, email_lower, given_name, family_name, display_name,
		 groups, role, status, attributes, created_by, email_verified, created_at, updated_at, last_login_at, role_source, scim_managed)
		VALUES (?1, ?2, NULLIF(?3, ''), NULLIF(?4, ''), ?5, ?6, ?7,
		 ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?14, ?15, ?16)
		RETURNING `+userReturning,
		id, u.OrganizationID, u.Email, strings.ToLower(u.Email), u.GivenName,
		u.FamilyName, u.DisplayName, jsonValue(nonNil(u.Groups)), u.Role, u.Status, jsonValue(nonNilMap(u.Attributes)),
		u.CreatedBy, u.EmailVerified, now, roleSource(u), u.SCIM.Managed))
	if err != nil {
		return out, fmt.Errorf("sqlite: create user in %q: %w", u.OrganizationID, x.fail(err))
	}
	return out, nil
}

func (x *tx) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	id, err := canonicalUUID(u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: update user %s: %w", u.ID, x.fail(err))
	}
	out, err := scanUser(x.t.QueryRowContext(ctx, `UPDATE users SET
		email = NULLIF(?2, ''),
		email_lower = NULLIF(?3, ''), given_name = ?4, family_name = ?5, display_name = ?6, groups = ?7,
		role = ?8, attributes = ?9, email_verified = ?10, updated_at = ?11, last_login_at = ?11,
		role_source = coalesce(NULLIF(?12, ''), role_source)
		WHERE id = ?1
		RETURNING `+userReturning,
		id, u.Email, strings.ToLower(u.Email), u.GivenName, u.FamilyName,
		u.DisplayName, jsonValue(nonNil(u.Groups)), u.Role, jsonValue(nonNilMap(u.Attributes)), u.EmailVerified,
		formatTime(x.now), u.RoleSource))
	if err != nil {
		return out, fmt.Errorf("sqlite: update user %s: %w", u.ID, x.fail(err))
	}
	return out, nil
}

func (x *tx) PendingRoleReview(ctx context.Context, userID, role string) (store.RoleReview, error) {
	var r store.RoleReview
	if err := x.check(); err != nil {
		return r, err
	}
	id, err := canonicalUUID(userID)
	if err != nil {
		return r, fmt.Errorf("sqlite: pending review of %s for %q: %w", userID, role, x.fail(err))
	}
	err = x.t.QueryRowContext(ctx, `SELECT id, org_id, user_id, held_role, requested_role,
		status, login_id, created_at FROM role_reviews
		WHERE user_id = ? AND requested_role = ? AND status = 'pending'`, id, role).
		Scan(&r.ID, &r.OrganizationID, &r.UserID, &r.CurrentRole, &r.RequestedRole, &r.Status, &r.LoginID,
			timeText{&r.CreatedAt})
	if err != nil {
		return r, fmt.Errorf("sqlite: pending review of %s for %q: %w", userID, role, x.fail(err))
	}
	return r, nil
}

func (x *tx) CreateRoleReview(ctx context.Context, r store.RoleReview) (store.RoleReview, error) {
	if err := x.check(); err != nil {
		return r, err
	}
	id, err := canonicalUUID(r.ID)
	if err == nil {
		r.ID = id
		r.UserID, err = canonicalUUID(r.UserID)
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: create role review for %s: %w", r.UserID, x.fail(err))
	}
	err = x.t.QueryRowContext(ctx, `INSERT INTO role_reviews
		(id, org_id, user_id, held_role, requested_role, status, login_id, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) RETURNING status, created_at`,
		r.ID, r.OrganizationID, r.UserID, r.CurrentRole, r.RequestedRole, r.LoginID, formatTime(x.now)).
		Scan(&r.Status, timeText{&r.CreatedAt})
	if err != nil {
		return r, fmt.Errorf("sqlite: create role review for %s: %w", r.UserID, x.fail(err))
	}
	return r, nil
}

func (x *tx) AppendOutbox(ctx context.Context, msgs ...store.OutboxMessage) error {
	if err := x.check(); err != nil {
		return err
	}
	for _, m := range msgs {
		header, data := m.Header, m.Data
		if header == nil {
			header = map[string][]string{}
		}
		if data == nil {
			data = []byte{} // a nil []byte would be NULL
		}
		if _, err := x.t.ExecContext(ctx, `INSERT INTO outbox (event_id, subject, header, data, created_at)
			VALUES (?, ?, ?, ?, ?)`, m.EventID, m.Subject, jsonValue(header), data, formatTime(x.now)); err != nil {
			return fmt.Errorf("sqlite: append event %s to the outbox: %w", m.EventID, x.fail(err))
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
