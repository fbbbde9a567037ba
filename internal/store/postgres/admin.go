package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/store"
)

// ApplyOrganizations upserts organisations and connections in one
// transaction; seats_used is never touched, so applying a file twice or
// while people sign in is safe. The organisations' rows are locked in the
// order of their ids, as a provisioner deciding several organisations in
// one transaction locks them, so that the two never deadlock.
func (s *Store) ApplyOrganizations(ctx context.Context, orgs []store.Organization, conns []store.Connection) error {
	orgs = slices.SortedFunc(slices.Values(orgs), func(a, b store.Organization) int { return strings.Compare(a.ID, b.ID) })
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		for _, o := range orgs {
			newPeople, whenFull := o.HoldSettings()
			_, err := t.Exec(ctx, `INSERT INTO organizations
				(id, name, max_seats, roles, default_role, jit_role_ceiling, update_policy, link_by_email, verified_domains,
				 seat_warning_percent, landing_url, initial_admins, new_people, when_full, inactive_after_seconds,
				 field_owners)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, max_seats = excluded.max_seats,
					roles = excluded.roles, default_role = excluded.default_role,
					jit_role_ceiling = excluded.jit_role_ceiling, update_policy = excluded.update_policy,
					link_by_email = excluded.link_by_email, verified_domains = excluded.verified_domains,
					seat_warning_percent = excluded.seat_warning_percent, landing_url = excluded.landing_url,
					initial_admins = excluded.initial_admins, new_people = excluded.new_people,
					when_full = excluded.when_full, inactive_after_seconds = excluded.inactive_after_seconds,
					field_owners = excluded.field_owners, updated_at = now()`,
				o.ID, o.Name, o.MaxSeats, o.Roles, o.DefaultRole, o.JITRoleCeiling, string(o.UpdatePolicy),
				string(o.LinkByEmail), nonNil(o.VerifiedDomains), o.SeatWarningPercent, o.LandingURL, nonNil(o.InitialAdmins),
				newPeople, whenFull, inactiveSeconds(o.InactiveAfter), fieldOwners(o.FieldOwners))
			if err != nil {
				return fmt.Errorf("organisation %q: %w", o.ID, mapErr(err))
			}
		}
		for _, c := range conns {
			settings := c.Settings
			if len(settings) == 0 {
				settings = []byte("{}")
			}
			_, err := t.Exec(ctx, `INSERT INTO connections (org_id, id, protocol, settings, display_name, replaces)
				VALUES ($1, $2, $3, $4::jsonb, $5, $6)
				ON CONFLICT (org_id, id) DO UPDATE SET protocol = excluded.protocol,
					settings = excluded.settings, display_name = excluded.display_name,
					replaces = excluded.replaces, updated_at = now()`,
				c.OrganizationID, c.ID, c.Protocol, string(settings), c.DisplayName, c.Replaces)
			if err != nil {
				return fmt.Errorf("connection %q of organisation %q: %w", c.ID, c.OrganizationID, mapErr(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: apply organisations: %w", err)
	}
	return nil
}

// outboxLock keys the advisory lock that makes one relay at a time publish:
// events then leave in outbox order, and no two relays hold the same rows.
const outboxLock = 0x6a6974_6f7574 // "jitout"

// RelayOutbox implements store.Store. The transaction holds the outbox
// lock while publish runs; if this process dies, Postgres ends the session,
// releases the lock and the rows stay unsent for the next relay, which
// publishes them again under the same Nats-Msg-Id.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxMessage) (int, error)) (int, error) {
	t, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: relay: begin: %w", mapErr(err))
	}
	defer func() { _ = t.Rollback(context.WithoutCancel(ctx)) }()
	// A relay that hangs mid-batch must not hold the outbox forever.
	if _, err := t.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = '30s'`); err != nil {
		return 0, fmt.Errorf("postgres: relay: %w", mapErr(err))
	}
	var locked bool
	if err := t.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(outboxLock)).Scan(&locked); err != nil {
		return 0, fmt.Errorf("postgres: relay: lock the outbox: %w", mapErr(err))
	}
	if !locked {
		return 0, nil
	}
	rows, err := t.Query(ctx, `SELECT seq, event_id, subject, header, data FROM outbox
		WHERE sent_at IS NULL ORDER BY seq LIMIT $1`, limit)
	if err != nil {
		return 0, fmt.Errorf("postgres: relay: read the outbox: %w", mapErr(err))
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.OutboxMessage, error) {
		var m store.OutboxMessage
		err := r.Scan(&m.Seq, &m.EventID, &m.Subject, &m.Header, &m.Data)
		return m, err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: relay: read the outbox: %w", mapErr(err))
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	sent, pubErr := publish(ctx, msgs)
	sent = min(max(sent, 0), len(msgs))
	if sent > 0 {
		// What was published is marked even when ctx ends now (shutdown):
		// otherwise it would all be published again.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		// Mark exactly the rows published: a row with a lower seq whose
		// transaction commits only now must stay unsent.
		seqs := make([]int64, sent)
		for i := range seqs {
			seqs[i] = msgs[i].Seq
		}
		if _, err := t.Exec(mctx, `UPDATE outbox SET sent_at = now() WHERE seq = ANY($1)`, seqs); err != nil {
			return 0, fmt.Errorf("postgres: relay: mark %d events sent: %w", sent, mapErr(err))
		}
		if err := t.Commit(mctx); err != nil {
			return 0, fmt.Errorf("postgres: relay: commit: %w", mapErr(err))
		}
	}
	return sent, pubErr
}

// PruneOutbox deletes events sent before the given age, keeping the outbox
// small. It returns how many rows it deleted.
func (s *Store) PruneOutbox(ctx context.Context, age time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)`, age.Seconds())
	if err != nil {
		return 0, fmt.Errorf("postgres: prune the outbox: %w", mapErr(err))
	}
	return tag.RowsAffected(), nil
}

// OutboxBacklog implements store.Store.
func (s *Store) OutboxBacklog(ctx context.Context) (store.OutboxBacklog, error) {
	var b store.OutboxBacklog
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL),
			(SELECT created_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT 1)`).Scan(&b.Unsent, &oldest)
	if err != nil {
		return b, fmt.Errorf("postgres: read the outbox backlog: %w", mapErr(err))
	}
	if oldest != nil {
		b.Oldest = oldest.UTC()
	}
	return b, nil
}

// RecordLogins implements store.Store in one statement, whatever the
// number of logins: returning logins are recorded in batches (one
// transaction, one commit, for all the login.seen in hand).
func (s *Store) RecordLogins(ctx context.Context, logins []store.Login) ([]int, error) {
	if len(logins) == 0 {
		return nil, nil
	}
	orgs, conns, exts, users := make([]string, len(logins)), make([]string, len(logins)), make([]string, len(logins)), make([]string, len(logins))
	ats := make([]time.Time, len(logins))
	for i, l := range logins {
		// Not a user id at all: no such user (NULL matches no row), and
		// no reason to fail the others' statement on a cast.
		if u, ok := uuidOrNil(l.UserID).(string); ok {
			users[i] = u
		}
		orgs[i], conns[i], exts[i], ats[i] = l.OrganizationID, l.ConnectionID, l.ExternalID, l.At
	}
	// Each user and each identity is updated once, to the latest of its
	// logins (UPDATE … FROM picks an arbitrary row among several), and in
	// id order, so that two batches sharing people lock them in the same
	// order.
	rows, err := s.pool.Query(ctx, `WITH l AS (
			SELECT org_id, connection_id, external_id, nullif(user_id, '')::uuid AS user_id, at, n
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
			  WITH ORDINALITY AS l(org_id, connection_id, external_id, user_id, at, n)),
		lu AS (SELECT org_id, user_id, max(at) AS at FROM l GROUP BY org_id, user_id),
		locked AS (SELECT u.id FROM users u JOIN lu ON u.id = lu.user_id AND u.org_id = lu.org_id
			WHERE u.last_login_at IS NULL OR u.last_login_at < lu.at ORDER BY u.id FOR UPDATE OF u),
		u AS (UPDATE users SET last_login_at = lu.at FROM lu, locked
			WHERE users.id = locked.id AND users.id = lu.user_id AND users.org_id = lu.org_id
			  AND (users.last_login_at IS NULL OR users.last_login_at < lu.at)
			RETURNING 1),
		li AS (SELECT org_id, connection_id, external_id, user_id, max(at) AS at FROM l
			GROUP BY org_id, connection_id, external_id, user_id),
		lockedi AS (SELECT i.org_id, i.connection_id, i.external_id FROM identities i JOIN li
			  ON i.org_id = li.org_id AND i.connection_id = li.connection_id AND i.external_id = li.external_id
			  AND i.user_id = li.user_id
			WHERE i.last_seen_at < li.at
			ORDER BY i.org_id, i.connection_id, i.external_id FOR UPDATE OF i),
		i AS (UPDATE identities SET last_seen_at = li.at FROM li, lockedi
			WHERE identities.org_id = lockedi.org_id AND identities.connection_id = lockedi.connection_id
			  AND identities.external_id = lockedi.external_id
			  AND identities.org_id = li.org_id AND identities.connection_id = li.connection_id
			  AND identities.external_id = li.external_id AND identities.user_id = li.user_id
			  AND identities.last_seen_at < li.at
			RETURNING 1)
		SELECT l.n FROM l WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = l.user_id AND org_id = l.org_id)
		ORDER BY l.n`, orgs, conns, exts, users, ats)
	if err != nil {
		return nil, fmt.Errorf("postgres: record %d logins: %w", len(logins), mapErr(err))
	}
	unknown, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (int, error) {
		var n int64
		err := r.Scan(&n)
		return int(n - 1), err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: record %d logins: %w", len(logins), mapErr(err))
	}
	return unknown, nil
}

// ConnectionsByDomain implements store.Store.
func (s *Store) ConnectionsByDomain(ctx context.Context, domain string) ([]store.Connection, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.org_id, c.id, c.protocol, c.settings::text, c.display_name, c.replaces
		FROM connections c JOIN organizations o ON o.id = c.org_id
		WHERE lower($1) = ANY (o.verified_domains) ORDER BY c.org_id, c.id`, domain)
	if err != nil {
		return nil, fmt.Errorf("postgres: connections for domain %q: %w", domain, mapErr(err))
	}
	conns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Connection, error) { return scanConn(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: connections for domain %q: %w", domain, mapErr(err))
	}
	return conns, nil
}

// OrganizationAdmins implements store.Store.
func (s *Store) OrganizationAdmins(ctx context.Context, orgID string) ([]store.User, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)`, orgID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: admins of %q: %w", orgID, mapErr(err))
	}
	if !exists {
		return nil, fmt.Errorf("postgres: admins of %q: %w", orgID, store.ErrNotFound)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.org_id = $1 AND u.status = 'active'
		  AND u.role = (SELECT roles[array_length(roles, 1)] FROM organizations WHERE id = $1)
		ORDER BY lower(coalesce(u.email, '')), u.id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("postgres: admins of %q: %w", orgID, mapErr(err))
	}
	admins, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: admins of %q: %w", orgID, mapErr(err))
	}
	return admins, nil
}

// Connections implements store.Store.
func (s *Store) Connections(ctx context.Context, protocol string) ([]store.Connection, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+connColumns+` FROM connections
		WHERE $1 = '' OR protocol = $1 ORDER BY org_id, id`, protocol)
	if err != nil {
		return nil, fmt.Errorf("postgres: list connections: %w", mapErr(err))
	}
	conns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Connection, error) { return scanConn(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list connections: %w", mapErr(err))
	}
	return conns, nil
}

// Organizations implements store.Store.
func (s *Store) Organizations(ctx context.Context) ([]store.Organization, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+orgColumns+` FROM organizations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list organisations: %w", mapErr(err))
	}
	orgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Organization, error) { return scanOrg(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list organisations: %w", mapErr(err))
	}
	return orgs, nil
}
