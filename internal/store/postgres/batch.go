package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/store"
)

// LookupLogins implements store.Tx in one round trip: the organisation
// (locked first when asked), its connections, and three queries over the
// whole group — the stored decisions, the users by identity, the users by
// email — pipelined as one pgx.Batch.
func (x *tx) LookupLogins(ctx context.Context, orgID string, lockOrganization bool, logins []store.LoginKey) (store.GroupLookup, error) {
	g := store.GroupLookup{Logins: make([]store.LoginLookup, len(logins))}
	loginIDs := make([]string, len(logins))
	conns := make([]string, len(logins))
	exts := make([]string, len(logins))
	var emails []string
	for i, k := range logins {
		loginIDs[i], conns[i], exts[i] = k.LoginID, k.ConnectionID, k.ExternalID
		if k.Email != "" {
			emails = append(emails, strings.ToLower(k.Email))
		}
	}
	decisions := map[string]store.Decision{}
	byIdentity := map[[2]string]string{}
	byEmail := map[string]string{}

	b := &pgx.Batch{}
	orgQuery := `SELECT ` + orgColumns + ` FROM organizations WHERE id = $1`
	if lockOrganization {
		orgQuery += ` FOR UPDATE`
	}
	b.Queue(orgQuery, orgID).QueryRow(func(row pgx.Row) error {
		o, err := scanOrg(row)
		switch {
		case err == nil:
			g.Organization, g.OrganizationFound = o, true
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		return nil
	})
	b.Queue(`SELECT `+connColumns+` FROM connections WHERE org_id = $1 ORDER BY id`, orgID).Query(func(rows pgx.Rows) error {
		var err error
		g.Connections, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Connection, error) { return scanConn(r) })
		return err
	})
	b.Queue(`SELECT login_id, org_id, connection_id, external_id, outcome, reason,
		coalesce(user_id::text, ''), result, decided_at
		FROM provisioning_decisions WHERE login_id = ANY($1)`, loginIDs).Query(func(rows pgx.Rows) error {
		var d store.Decision
		_, err := pgx.ForEachRow(rows, []any{&d.LoginID, &d.OrganizationID, &d.ConnectionID, &d.ExternalID, &d.Outcome, &d.Reason,
			&d.UserID, &d.Result, &d.DecidedAt}, func() error {
			d.Result = append([]byte(nil), d.Result...)
			decisions[d.LoginID] = d
			return nil
		})
		return err
	})
	b.Queue(`SELECT i.connection_id, i.external_id, i.user_id::text
		FROM identities i JOIN unnest($2::text[], $3::text[]) AS k(connection_id, external_id)
		  ON i.connection_id = k.connection_id AND i.external_id = k.external_id
		WHERE i.org_id = $1`, orgID, conns, exts).Query(func(rows pgx.Rows) error {
		var c, e, u string
		_, err := pgx.ForEachRow(rows, []any{&c, &e, &u}, func() error {
			byIdentity[[2]string{c, e}] = u
			return nil
		})
		return err
	})
	if len(emails) > 0 {
		// Planned for these emails each time, not from the cached generic
		// plan: with statistics taken while the organisation had few
		// people — a new deployment's first morning, before autovacuum
		// has analysed the growing table — the generic plan reads every
		// person of the organisation (users_org_created) and filters by
		// email, 2.8 ms a lookup at 1,300 people and growing with them,
		// where the unique (org_id, lower(email)) index answers at once.
		b.Queue(`SET LOCAL plan_cache_mode = force_custom_plan`)
		b.Queue(`SELECT lower(email), id::text FROM users WHERE org_id = $1 AND lower(email) = ANY($2)`, orgID, emails).
			Query(func(rows pgx.Rows) error {
				var e, u string
				_, err := pgx.ForEachRow(rows, []any{&e, &u}, func() error {
					byEmail[e] = u
					return nil
				})
				return err
			})
		b.Queue(`SET LOCAL plan_cache_mode TO DEFAULT`) // the session's own setting again
	}
	if err := x.t.SendBatch(ctx, b).Close(); err != nil {
		return g, fmt.Errorf("postgres: look up %d logins of %q: %w", len(logins), orgID, mapErr(err))
	}
	for i, k := range logins {
		l := &g.Logins[i]
		if d, ok := decisions[k.LoginID]; ok {
			l.Decision = &d
		}
		l.IdentityUserID = byIdentity[[2]string{k.ConnectionID, k.ExternalID}]
		if k.Email != "" {
			l.EmailUserID = byEmail[strings.ToLower(k.Email)]
		}
	}
	return g, nil
}

// WriteGroup implements store.Tx in one round trip: every write, and the
// seat reservation last, pipelined as one pgx.Batch. The organisation's
// row is locked from the reservation to the commit only.
func (x *tx) WriteGroup(ctx context.Context, w store.GroupWrites) (store.Organization, error) {
	b := &pgx.Batch{}
	for _, nu := range w.Users {
		u := nu.User
		b.Queue(`INSERT INTO users
			(id, org_id, email, given_name, family_name, display_name,
			 groups, role, status, attributes, created_by, email_verified, created_at, updated_at, last_login_at, role_source)
			VALUES ($1::uuid, $2, NULLIF($3, ''), $4, $5, $6,
			 $7, $8, $9, $10, $11, $12, coalesce($13, now()), coalesce($13, now()), coalesce($13, now()), $14)`,
			u.ID, u.OrganizationID, u.Email, u.GivenName, u.FamilyName,
			u.DisplayName, nonNil(u.Groups), u.Role, u.Status, nonNilMap(u.Attributes), u.CreatedBy, u.EmailVerified,
			nullTime(u.CreatedAt), roleSource(u))
		id := nu.Identity
		b.Queue(`INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by, first_seen_at, last_seen_at)
			SELECT $1, $2, $3, u.id, $5, coalesce($6, now()), coalesce($6, now()) FROM users u WHERE u.id = $4::uuid AND u.org_id = $1`,
			id.OrganizationID, id.ConnectionID, id.ExternalID, id.UserID, id.LinkedBy, nullTime(u.CreatedAt))
	}
	for _, r := range w.Reviews {
		b.Queue(`INSERT INTO role_reviews (id, org_id, user_id, held_role, requested_role, status, login_id)
			VALUES ($1::uuid, $2, $3::uuid, $4, $5, 'pending', $6)`,
			r.ID, r.OrganizationID, r.UserID, r.CurrentRole, r.RequestedRole, r.LoginID)
	}
	for _, e := range w.Audit {
		details := e.Details
		if details == nil {
			details = map[string]any{}
		}
		b.Queue(`INSERT INTO admin_audit (org_id, actor_type, actor_id, actor_name, action, target, details)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.OrganizationID, e.ActorType, e.ActorID, e.ActorName, e.Action, e.Target, details)
	}
	for _, m := range w.Outbox {
		header, data := m.Header, m.Data
		if header == nil {
			header = map[string][]string{}
		}
		if data == nil {
			data = []byte{}
		}
		b.Queue(`INSERT INTO outbox (event_id, subject, header, data) VALUES ($1, $2, $3, $4)`, m.EventID, m.Subject, header, data)
	}
	for _, d := range w.Decisions {
		b.Queue(`INSERT INTO provisioning_decisions
			(login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
			VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, '')::uuid, $8, coalesce($9, now()))`,
			d.LoginID, d.OrganizationID, d.ConnectionID, d.ExternalID, d.Outcome, d.Reason, d.UserID,
			string(d.Result), nullTime(d.DecidedAt))
	}
	var org store.Organization
	reserved := false
	if r := w.Seats; r.Seats > 0 {
		// The conditional UPDATE is the seat check, as in TakeSeat; it
		// comes last, so the row stays locked only until the commit.
		b.Queue(`UPDATE organizations SET seats_used = seats_used + $2, updated_at = now()
			WHERE id = $1 AND seats_used + $2 <= max_seats
			  AND ($3::int < 0 OR seats_used = $3)
			  AND ($4::int <= 0 OR seats_used >= $4 OR seats_used + $2 < $4)
			RETURNING `+orgColumns, w.OrganizationID, r.Seats, r.IfUsedArg(), r.NotCrossing).QueryRow(func(row pgx.Row) error {
			o, err := scanOrg(row)
			switch {
			case err == nil:
				org, reserved = o, true
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
			return nil
		})
	}
	if b.Len() == 0 {
		return org, nil
	}
	if err := x.t.SendBatch(ctx, b).Close(); err != nil {
		return org, fmt.Errorf("postgres: write %d decisions of %q: %w", len(w.Decisions), w.OrganizationID, mapErr(err))
	}
	if w.Seats.Seats > 0 && !reserved {
		return org, fmt.Errorf("postgres: organisation %q: %d seats not reserved: %w", w.OrganizationID, w.Seats.Seats, store.ErrSeatsExhausted)
	}
	return org, nil
}
