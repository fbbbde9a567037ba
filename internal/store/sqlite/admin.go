package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// ApplyOrganizations upserts organisations and connections in one
// transaction; seats_used is never touched, so applying a file twice or
// while people sign in is safe.
func (s *Store) ApplyOrganizations(ctx context.Context, orgs []store.Organization, conns []store.Connection) error {
	err := s.write(ctx, func(t *sql.Tx, now time.Time) error {
		ts := formatTime(now)
		for _, o := range orgs {
			newPeople, whenFull := o.HoldSettings()
			_, err := t.ExecContext(ctx, `INSERT INTO organizations
				(id, name, max_seats, roles, default_role, jit_role_ceiling, update_policy, link_by_email,
				 verified_domains, seat_warning_percent, landing_url, initial_admins, new_people, when_full, inactive_after_seconds,
				 field_owners, created_at, updated_at)
				VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?12, ?13, ?14, ?15, ?16, ?17, ?11, ?11)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, max_seats = excluded.max_seats,
					roles = excluded.roles, default_role = excluded.default_role,
					jit_role_ceiling = excluded.jit_role_ceiling, update_policy = excluded.update_policy,
					link_by_email = excluded.link_by_email, verified_domains = excluded.verified_domains,
					seat_warning_percent = excluded.seat_warning_percent, landing_url = excluded.landing_url,
					initial_admins = excluded.initial_admins, new_people = excluded.new_people,
					when_full = excluded.when_full, inactive_after_seconds = excluded.inactive_after_seconds,
					field_owners = excluded.field_owners, updated_at = excluded.updated_at`,
				o.ID, o.Name, o.MaxSeats, jsonValue(nonNil(o.Roles)), o.DefaultRole, o.JITRoleCeiling,
				string(o.UpdatePolicy), string(o.LinkByEmail), jsonValue(nonNil(o.VerifiedDomains)),
				o.SeatWarningPercent, ts, o.LandingURL, jsonValue(nonNil(o.InitialAdmins)), newPeople, whenFull,
				inactiveSeconds(o.InactiveAfter), jsonValue(fieldOwners(o.FieldOwners)))
			if err != nil {
				return fmt.Errorf("organisation %q: %w", o.ID, mapErr(err))
			}
		}
		for _, c := range conns {
			settings := c.Settings
			if len(settings) == 0 {
				settings = []byte("{}")
			}
			// json() checks the settings and stores them compact.
			_, err := t.ExecContext(ctx, `INSERT INTO connections
				(org_id, id, protocol, settings, display_name, replaces, created_at, updated_at)
				VALUES (?1, ?2, ?3, json(?4), ?6, ?7, ?5, ?5)
				ON CONFLICT (org_id, id) DO UPDATE SET protocol = excluded.protocol,
					settings = excluded.settings, display_name = excluded.display_name,
					replaces = excluded.replaces, updated_at = excluded.updated_at`,
				c.OrganizationID, c.ID, c.Protocol, string(settings), ts, c.DisplayName, c.Replaces)
			if err != nil {
				return fmt.Errorf("connection %q of organisation %q: %w", c.ID, c.OrganizationID, mapErr(err))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: apply organisations: %w", err)
	}
	return nil
}

// relayLease bounds how long a relay holds the outbox. A relay that dies
// mid-batch frees it when the lease expires; its messages stay unsent and
// the next relay publishes them again under the same Nats-Msg-Id. (The
// Postgres store's lock lasts as long, through its
// idle_in_transaction_session_timeout.)
const relayLease = 30 * time.Second

// RelayOutbox implements store.Store. Unlike the Postgres store it does not
// keep a transaction open while publish runs: that would hold the one
// writer, and every decision would wait for NATS. Instead one short
// transaction takes the outbox's lease and reads the batch, publish runs
// with no lock held, and a second transaction marks what was published and
// gives the lease back. Another relay, meanwhile, finds the lease taken and
// returns (0, nil) at once.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxMessage) (int, error)) (int, error) {
	if limit < 0 {
		return 0, fmt.Errorf("sqlite: relay: limit %d is negative", limit)
	}
	if limit == 0 {
		return 0, nil
	}
	holder := uuid.NewString()
	msgs, err := s.leaseOutbox(ctx, holder, limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: relay: %w", err)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	// The lease is given back however publish ends, a panic included.
	released := false
	defer func() {
		if !released {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := s.releaseOutbox(rctx, holder, nil); err != nil {
				s.log.WarnContext(rctx, "outbox relay: give the lease back", "err", err, "expires_in", relayLease)
			}
		}
	}()

	sent, pubErr := publish(ctx, msgs)
	sent = min(max(sent, 0), len(msgs))
	released = true
	// What was published is marked even when ctx ends now (shutdown):
	// otherwise it would all be published again.
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Mark exactly the messages published, by seq.
	seqs := make([]int64, sent)
	for i := range seqs {
		seqs[i] = msgs[i].Seq
	}
	if err := s.releaseOutbox(mctx, holder, seqs); err != nil {
		return 0, fmt.Errorf("sqlite: relay: mark %d events sent: %w", sent, err)
	}
	return sent, pubErr
}

// leaseOutbox reads up to limit unsent messages and, if there are any and
// no other relay holds the outbox, takes the lease for holder. It returns
// nothing when the outbox is empty or held; an idle poll writes nothing.
func (s *Store) leaseOutbox(ctx context.Context, holder string, limit int) ([]store.OutboxMessage, error) {
	var msgs []store.OutboxMessage
	err := s.write(ctx, func(t *sql.Tx, now time.Time) error {
		rows, err := t.QueryContext(ctx, `SELECT seq, event_id, subject, header, data FROM outbox
			WHERE sent_at IS NULL ORDER BY seq LIMIT ?`, limit)
		if err != nil {
			return fmt.Errorf("read the outbox: %w", mapErr(err))
		}
		defer rows.Close()
		for rows.Next() {
			var m store.OutboxMessage
			if err := rows.Scan(&m.Seq, &m.EventID, &m.Subject, jsonText{&m.Header}, &m.Data); err != nil {
				return fmt.Errorf("read the outbox: %w", mapErr(err))
			}
			msgs = append(msgs, m)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read the outbox: %w", mapErr(err))
		}
		if len(msgs) == 0 {
			return nil
		}
		res, err := t.ExecContext(ctx, `UPDATE outbox_relay SET holder = ?1, expires_at = ?2
			WHERE id = 1 AND (holder IS NULL OR expires_at <= ?3)`,
			holder, formatTime(now.Add(relayLease)), formatTime(now))
		if err != nil {
			return fmt.Errorf("take the outbox lease: %w", mapErr(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("take the outbox lease: %w", mapErr(err))
		} else if n == 0 {
			msgs = nil // another relay holds the outbox
		}
		return nil
	})
	return msgs, err
}

// releaseOutbox marks the messages seqs sent and gives holder's lease back,
// in one transaction. Marking what was published is right even if the
// lease expired meanwhile: those messages are in the stream.
func (s *Store) releaseOutbox(ctx context.Context, holder string, seqs []int64) error {
	return s.write(ctx, func(t *sql.Tx, now time.Time) error {
		if len(seqs) > 0 {
			if _, err := t.ExecContext(ctx, `UPDATE outbox SET sent_at = ?
				WHERE seq IN (SELECT value FROM json_each(?)) AND sent_at IS NULL`,
				formatTime(now), jsonValue(seqs)); err != nil {
				return mapErr(err)
			}
		}
		_, err := t.ExecContext(ctx, `UPDATE outbox_relay SET holder = NULL, expires_at = NULL
			WHERE id = 1 AND holder = ?`, holder)
		return mapErr(err)
	})
}

// PruneOutbox deletes events sent before the given age, keeping the outbox
// small. It returns how many rows it deleted.
func (s *Store) PruneOutbox(ctx context.Context, age time.Duration) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *sql.Tx, now time.Time) error {
		res, err := t.ExecContext(ctx, `DELETE FROM outbox WHERE sent_at < ?`, formatTime(now.Add(-age)))
		if err != nil {
			return mapErr(err)
		}
		n, err = res.RowsAffected()
		return mapErr(err)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune the outbox: %w", err)
	}
	return n, nil
}

// OutboxBacklog implements store.Store.
func (s *Store) OutboxBacklog(ctx context.Context) (store.OutboxBacklog, error) {
	var b store.OutboxBacklog
	err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL),
			(SELECT created_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT 1)`).Scan(&b.Unsent, timeText{&b.Oldest})
	if err != nil {
		return b, fmt.Errorf("sqlite: read the outbox backlog: %w", mapErr(err))
	}
	return b, nil
}

// RecordLogins implements store.Store, in one write transaction.
func (s *Store) RecordLogins(ctx context.Context, logins []store.Login) ([]int, error) {
	if len(logins) == 0 {
		return nil, nil
	}
	var unknown []int
	err := s.write(ctx, func(t *sql.Tx, _ time.Time) error {
		unknown = unknown[:0]
		for i, l := range logins {
			found, err := recordLogin(ctx, t, l)
			if err != nil {
				return err
			}
			if !found {
				unknown = append(unknown, i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: record %d logins: %w", len(logins), err)
	}
	return unknown, nil
}

// recordLogin records one login in t; false when there is no such user
// in the organisation.
func recordLogin(ctx context.Context, t *sql.Tx, l store.Login) (bool, error) {
	id, err := canonicalUUID(l.UserID)
	if err != nil {
		return false, nil // not a user id: no such user
	}
	at := formatTime(l.At)
	if _, err := t.ExecContext(ctx, `UPDATE identities SET last_seen_at = ?5
		WHERE org_id = ?1 AND connection_id = ?2 AND external_id = ?3 AND user_id = ?4 AND last_seen_at < ?5`,
		l.OrganizationID, l.ConnectionID, l.ExternalID, id, at); err != nil {
		return false, mapErr(err)
	}
	res, err := t.ExecContext(ctx, `UPDATE users SET last_login_at = ?3
		WHERE id = ?2 AND org_id = ?1 AND (last_login_at IS NULL OR last_login_at < ?3)`,
		l.OrganizationID, id, at)
	if err != nil {
		return false, mapErr(err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return n > 0, mapErr(err)
	}
	// Nothing changed: a later login is recorded, or there is no such
	// user.
	var found bool
	err = t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ? AND org_id = ?)`, id, l.OrganizationID).Scan(&found)
	return found, mapErr(err)
}

// ConnectionsByDomain implements store.Store.
func (s *Store) ConnectionsByDomain(ctx context.Context, domain string) ([]store.Connection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.org_id, c.id, c.protocol, c.settings, c.display_name, c.replaces
		FROM connections c JOIN organizations o ON o.id = c.org_id
		WHERE EXISTS (SELECT 1 FROM json_each(o.verified_domains) d WHERE d.value = ?)
		ORDER BY c.org_id, c.id`, strings.ToLower(domain))
	if err != nil {
		return nil, fmt.Errorf("sqlite: connections for domain %q: %w", domain, mapErr(err))
	}
	defer rows.Close()
	var conns []store.Connection
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: connections for domain %q: %w", domain, mapErr(err))
		}
		conns = append(conns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: connections for domain %q: %w", domain, mapErr(err))
	}
	return conns, nil
}

// OrganizationAdmins implements store.Store.
func (s *Store) OrganizationAdmins(ctx context.Context, orgID string) ([]store.User, error) {
	// One read transaction: the organisation and its admins from one
	// snapshot.
	t, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, mapErr(err))
	}
	defer func() { _ = t.Rollback() }()
	var exists bool
	if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM organizations WHERE id = ?)`, orgID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, mapErr(err))
	}
	if !exists {
		return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, store.ErrNotFound)
	}
	rows, err := t.QueryContext(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.org_id = ?1 AND u.status = 'active'
		  AND u.role = (SELECT json_extract(roles, '$[#-1]') FROM organizations WHERE id = ?1)
		ORDER BY coalesce(u.email_lower, ''), u.id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, mapErr(err))
	}
	defer rows.Close()
	var admins []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, mapErr(err))
		}
		admins = append(admins, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: admins of %q: %w", orgID, mapErr(err))
	}
	return admins, nil
}

// Connections implements store.Store.
func (s *Store) Connections(ctx context.Context, protocol string) ([]store.Connection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+connColumns+` FROM connections
		WHERE ?1 = '' OR protocol = ?1 ORDER BY org_id, id`, protocol)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list connections: %w", mapErr(err))
	}
	defer rows.Close()
	var conns []store.Connection
	for rows.Next() {
		c, err := scanConn(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list connections: %w", mapErr(err))
		}
		conns = append(conns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list connections: %w", mapErr(err))
	}
	return conns, nil
}

// Organizations implements store.Store.
func (s *Store) Organizations(ctx context.Context) ([]store.Organization, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list organisations: %w", mapErr(err))
	}
	defer rows.Close()
	var orgs []store.Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list organisations: %w", mapErr(err))
		}
		orgs = append(orgs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list organisations: %w", mapErr(err))
	}
	return orgs, nil
}
