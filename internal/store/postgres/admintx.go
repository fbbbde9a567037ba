package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/store"
)

// What admins do, in a Tx (store/admin.go).

// User reads a user outside a transaction (store.Store).
func (s *Store) User(ctx context.Context, orgID, userID string) (store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.org_id = $1 AND u.id = $2`, orgID, uuidOrNil(userID)))
	if err != nil {
		return u, fmt.Errorf("postgres: user %s of %q: %w", userID, orgID, mapErr(err))
	}
	return u, nil
}

func (x *tx) UserByID(ctx context.Context, orgID, userID string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.org_id = $1 AND u.id = $2 FOR UPDATE`, orgID, uuidOrNil(userID)))
	if err != nil {
		return u, fmt.Errorf("postgres: user %s of %q: %w", userID, orgID, mapErr(err))
	}
	return u, nil
}

func (x *tx) SetUserStatus(ctx context.Context, orgID, userID, status string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `UPDATE users AS u SET status = $3, suspended_reason = '', scim_deactivated = false, updated_at = now()
		WHERE u.org_id = $1 AND u.id = $2 RETURNING `+userColumns, orgID, uuidOrNil(userID), status))
	if err != nil {
		return u, fmt.Errorf("postgres: set the status of user %s: %w", userID, mapErr(err))
	}
	return u, nil
}

func (x *tx) SetUserRole(ctx context.Context, orgID, userID, role string) (store.User, error) {
	u, err := scanUser(x.t.QueryRow(ctx, `UPDATE users AS u SET role = $3, role_source = 'admin', updated_at = now()
		WHERE u.org_id = $1 AND u.id = $2 RETURNING `+userColumns, orgID, uuidOrNil(userID), role))
	if err != nil {
		return u, fmt.Errorf("postgres: set the role of user %s: %w", userID, mapErr(err))
	}
	return u, nil
}

func (x *tx) ReleaseSeat(ctx context.Context, orgID string) (store.Organization, error) {
	o, err := scanOrg(x.t.QueryRow(ctx, `UPDATE organizations
		SET seats_used = greatest(seats_used - 1, 0), updated_at = now()
		WHERE id = $1 RETURNING `+orgColumns, orgID))
	if err != nil {
		return o, fmt.Errorf("postgres: release a seat of %q: %w", orgID, mapErr(err))
	}
	return o, nil
}

// inactiveSeconds is an organisation's InactiveAfter as stored: whole
// seconds, a positive duration under a second counting as one.
func inactiveSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(int64(d/time.Second), 1)
}

// SuspendInactive implements store.Tx. It locks the organisation's row,
// then the candidates with SKIP LOCKED: a user a sign-in or an admin holds
// is left for the next sweep, and the status is checked again under the
// lock, so concurrent sweeps suspend each user once.
func (x *tx) SuspendInactive(ctx context.Context, orgID string, cutoff time.Time, limit int) ([]store.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, store.MaxInactivePerSweep)
	// The organisation's row first, as a batch of logins locks it before
	// its users: a sweep holding a user while it waits for the seat row
	// would deadlock with such a batch. Users a login holds are skipped
	// (SKIP LOCKED), so no wait goes the other way.
	var id string
	if err := x.t.QueryRow(ctx, `SELECT id FROM organizations WHERE id = $1 FOR UPDATE`, orgID).Scan(&id); err != nil {
		return nil, fmt.Errorf("postgres: suspend the inactive users of %q: %w", orgID, mapErr(err))
	}
	rows, err := x.t.Query(ctx, `WITH candidates AS (
			SELECT c.id FROM users c
			WHERE c.org_id = $1 AND c.status = 'active' AND c.created_by = 'jit' AND NOT c.scim_managed
			  AND greatest(coalesce(c.last_login_at, c.created_at),
			               coalesce((SELECT max(i.last_seen_at) FROM identities i WHERE i.user_id = c.id), c.created_at)) < $2
			ORDER BY greatest(coalesce(c.last_login_at, c.created_at),
			               coalesce((SELECT max(i.last_seen_at) FROM identities i WHERE i.user_id = c.id), c.created_at)), c.id
			LIMIT $3
			FOR UPDATE OF c SKIP LOCKED)
		UPDATE users AS u SET status = 'suspended', suspended_reason = 'inactive', updated_at = now()
		FROM candidates WHERE u.id = candidates.id AND u.status = 'active'
		RETURNING `+userColumns, orgID, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: suspend the inactive users of %q: %w", orgID, mapErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: suspend the inactive users of %q: %w", orgID, mapErr(err))
	}
	slices.SortFunc(users, func(a, b store.User) int { return strings.Compare(a.ID, b.ID) })
	return users, nil
}

const reviewColumns = `id::text, org_id, user_id::text, held_role, requested_role, status, login_id, created_at,
	decided_at, coalesce(decided_by, ''), reason`

func scanReview(row pgx.Row) (store.RoleReview, error) {
	var r store.RoleReview
	var decided *time.Time
	err := row.Scan(&r.ID, &r.OrganizationID, &r.UserID, &r.CurrentRole, &r.RequestedRole, &r.Status, &r.LoginID,
		&r.CreatedAt, &decided, &r.DecidedBy, &r.Reason)
	if decided != nil {
		r.DecidedAt = *decided
	}
	return r, err
}

func (x *tx) RoleReview(ctx context.Context, orgID, id string) (store.RoleReview, error) {
	r, err := scanReview(x.t.QueryRow(ctx, `SELECT `+reviewColumns+` FROM role_reviews
		WHERE org_id = $1 AND id = $2 FOR UPDATE`, orgID, uuidOrNil(id)))
	if err != nil {
		return r, fmt.Errorf("postgres: role review %s of %q: %w", id, orgID, mapErr(err))
	}
	return r, nil
}

func (x *tx) DecideRoleReview(ctx context.Context, orgID, id, status, decidedBy, reason string) (store.RoleReview, error) {
	r, err := scanReview(x.t.QueryRow(ctx, `UPDATE role_reviews SET status = $3, decided_at = now(), decided_by = $4, reason = $5
		WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING `+reviewColumns, orgID, uuidOrNil(id), status, decidedBy, reason))
	if err == nil {
		return r, nil
	}
	if err := mapErr(err); !errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("postgres: decide role review %s: %w", id, err)
	}
	cur, err := x.RoleReview(ctx, orgID, id)
	if err != nil {
		return cur, err
	}
	return cur, fmt.Errorf("postgres: role review %s is %s already: %w", id, cur.Status, store.ErrConflict)
}

func (x *tx) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	_, err := x.t.Exec(ctx, `INSERT INTO admin_audit (org_id, actor_type, actor_id, actor_name, action, target, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.OrganizationID, e.ActorType, e.ActorID, e.ActorName, e.Action, e.Target, details)
	if err != nil {
		return fmt.Errorf("postgres: audit %s: %w", e.Action, mapErr(err))
	}
	return nil
}

// where builds a WHERE clause of conditions with numbered arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	for _, a := range args {
		w.args = append(w.args, a)
		cond = strings.Replace(cond, "?", fmt.Sprintf("$%d", len(w.args)), 1)
	}
	w.conds = append(w.conds, cond)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

func (x *tx) ListUsers(ctx context.Context, f store.UserFilter) (store.UserPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("u.org_id = ?", f.OrganizationID)
	if f.Search != "" {
		p := store.LikePattern(f.Search)
		w.add(`(lower(coalesce(u.email, '')) LIKE ? ESCAPE '\' OR lower(u.given_name || ' ' || u.family_name || ' ' || u.display_name) LIKE ? ESCAPE '\')`, p, p)
	}
	if f.Status != "" {
		w.add("u.status = ?", f.Status)
	}
	if f.Role != "" {
		w.add("u.role = ?", f.Role)
	}
	if f.CreatedBy != "" {
		w.add("u.created_by = ?", f.CreatedBy)
	}
	if !f.CreatedSince.IsZero() {
		w.add("u.created_at >= ?", f.CreatedSince)
	}
	if f.ConnectionID != "" {
		w.add("EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.connection_id = ?)", f.ConnectionID)
	}
	at, id, ok, err := store.ParseTimeCursor(f.Cursor)
	if err != nil {
		return store.UserPage{}, err
	}
	if ok {
		w.add("(u.created_at, u.id) < (?, ?::uuid)", at, id)
	}
	w.args = append(w.args, limit+1)
	// Planned for these very values (an unnamed statement): a plan cached
	// for any search pattern walks the organisation's users in date order
	// instead of the trigram indexes.
	rows, err := x.t.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE `+w.String()+
		fmt.Sprintf(` ORDER BY u.created_at DESC, u.id DESC LIMIT $%d`, len(w.args)), append([]any{pgx.QueryExecModeExec}, w.args...)...)
	if err != nil {
		return store.UserPage{}, fmt.Errorf("postgres: list users of %q: %w", f.OrganizationID, mapErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return store.UserPage{}, fmt.Errorf("postgres: list users of %q: %w", f.OrganizationID, mapErr(err))
	}
	page := store.UserPage{Users: users}
	if len(users) > limit {
		page.Users = users[:limit]
		last := page.Users[limit-1]
		page.Next = store.TimeCursor(last.CreatedAt, last.ID)
	}
	return page, nil
}

func (x *tx) ListRoleReviews(ctx context.Context, f store.ReviewFilter) ([]store.RoleReview, error) {
	var w where
	w.add("org_id = ?", f.OrganizationID)
	if f.Status != "" {
		w.add("status = ?", f.Status)
	}
	if f.UserID != "" {
		w.add("user_id = ?", uuidOrNil(f.UserID))
	}
	w.args = append(w.args, store.PageSize(f.Limit))
	rows, err := x.t.Query(ctx, `SELECT `+reviewColumns+` FROM role_reviews WHERE `+w.String()+
		fmt.Sprintf(` ORDER BY status <> 'pending', CASE WHEN status = 'pending' THEN created_at END ASC, created_at DESC LIMIT $%d`, len(w.args)), w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list role reviews of %q: %w", f.OrganizationID, mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.RoleReview, error) { return scanReview(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list role reviews of %q: %w", f.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) ListDecisions(ctx context.Context, f store.DecisionFilter) (store.DecisionPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("org_id = ?", f.OrganizationID)
	for _, c := range []struct{ col, v string }{
		{"outcome", f.Outcome}, {"reason", f.Reason}, {"connection_id", f.ConnectionID}, {"external_id", f.ExternalID},
	} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	if f.UserID != "" {
		w.add("user_id = ?", uuidOrNil(f.UserID))
	}
	if !f.Since.IsZero() {
		w.add("decided_at >= ?", f.Since)
	}
	at, id, ok, err := store.ParseTimeCursor(f.Cursor)
	if err != nil {
		return store.DecisionPage{}, err
	}
	if ok {
		w.add("(decided_at, login_id) < (?, ?)", at, id)
	}
	w.args = append(w.args, limit+1)
	rows, err := x.t.Query(ctx, `SELECT login_id, org_id, connection_id, external_id, outcome, reason,
		coalesce(user_id::text, ''), result, decided_at FROM provisioning_decisions WHERE `+w.String()+
		fmt.Sprintf(` ORDER BY decided_at DESC, login_id DESC LIMIT $%d`, len(w.args)), append([]any{pgx.QueryExecModeExec}, w.args...)...)
	if err != nil {
		return store.DecisionPage{}, fmt.Errorf("postgres: list decisions of %q: %w", f.OrganizationID, mapErr(err))
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Decision, error) {
		var d store.Decision
		err := r.Scan(&d.LoginID, &d.OrganizationID, &d.ConnectionID, &d.ExternalID, &d.Outcome, &d.Reason, &d.UserID, &d.Result, &d.DecidedAt)
		return d, err
	})
	if err != nil {
		return store.DecisionPage{}, fmt.Errorf("postgres: list decisions of %q: %w", f.OrganizationID, mapErr(err))
	}
	page := store.DecisionPage{Decisions: ds}
	if len(ds) > limit {
		page.Decisions = ds[:limit]
		last := page.Decisions[limit-1]
		page.Next = store.TimeCursor(last.DecidedAt, last.LoginID)
	}
	return page, nil
}

func (x *tx) ListAudit(ctx context.Context, f store.AuditFilter) (store.AuditPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("true")
	if f.OrganizationID != "" {
		w.add("org_id = ?", f.OrganizationID)
	}
	if f.Target != "" {
		w.add("target = ?", f.Target)
	}
	if f.Cursor != "" {
		var seq int64
		if _, err := fmt.Sscanf(f.Cursor, "%d", &seq); err != nil || seq <= 0 {
			return store.AuditPage{}, fmt.Errorf("%w: the cursor %q is not one this list gave", store.ErrInvalidCursor, f.Cursor)
		}
		w.add("seq < ?", seq)
	}
	w.args = append(w.args, limit+1)
	rows, err := x.t.Query(ctx, `SELECT seq, org_id, actor_type, actor_id, actor_name, action, target, details, at
		FROM admin_audit WHERE `+w.String()+fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(w.args)), w.args...)
	if err != nil {
		return store.AuditPage{}, fmt.Errorf("postgres: list the admin audit: %w", mapErr(err))
	}
	es, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEntry, error) {
		var e store.AuditEntry
		err := r.Scan(&e.Seq, &e.OrganizationID, &e.ActorType, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Details, &e.At)
		return e, err
	})
	if err != nil {
		return store.AuditPage{}, fmt.Errorf("postgres: list the admin audit: %w", mapErr(err))
	}
	page := store.AuditPage{Entries: es}
	if len(es) > limit {
		page.Entries = es[:limit]
		page.Next = fmt.Sprint(page.Entries[limit-1].Seq)
	}
	return page, nil
}

func (x *tx) DecisionCounts(ctx context.Context, orgID string, since time.Time) ([]store.DayCount, error) {
	// Finished days are counted once and kept (decision_days); a page view
	// counts only the days not counted yet, and today, from the index.
	// Days are passed as text and midnights computed AT TIME ZONE 'UTC', so
	// that the session's time zone never moves a day.
	since = since.UTC()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	sinceDay, todayDay := since.Format(time.DateOnly), today.Format(time.DateOnly)
	if since.Before(today) {
		_, err := x.t.Exec(ctx, `WITH missing AS (
				SELECT d::date AS day FROM generate_series($2::date, $3::date - 1, interval '1 day') d
				WHERE NOT EXISTS (SELECT 1 FROM decision_days_done k WHERE k.org_id = $1 AND k.day = d::date)),
			counted AS (
				INSERT INTO decision_days (org_id, day, outcome, count)
				SELECT $1, (p.decided_at AT TIME ZONE 'UTC')::date, p.outcome, count(*)
				FROM provisioning_decisions p
				WHERE p.org_id = $1 AND p.decided_at >= (SELECT min(day) FROM missing)::timestamp AT TIME ZONE 'UTC'
				  AND p.decided_at < $3::date::timestamp AT TIME ZONE 'UTC'
				  AND (p.decided_at AT TIME ZONE 'UTC')::date IN (SELECT day FROM missing)
				GROUP BY 2, 3
				ON CONFLICT DO NOTHING)
			INSERT INTO decision_days_done (org_id, day) SELECT $1, day FROM missing ON CONFLICT DO NOTHING`,
			orgID, sinceDay, todayDay)
		if err != nil {
			return nil, fmt.Errorf("postgres: count the finished days of %q: %w", orgID, mapErr(err))
		}
	}
	rows, err := x.t.Query(ctx, `SELECT day::timestamp, outcome, count FROM decision_days
			WHERE org_id = $1 AND day >= $2::date AND day < $3::date
		UNION ALL
		SELECT date_trunc('day', decided_at AT TIME ZONE 'UTC'), outcome, count(*) FROM provisioning_decisions
			WHERE org_id = $1 AND decided_at >= $4 AND decided_at >= $3::date::timestamp AT TIME ZONE 'UTC' GROUP BY 1, 2
		ORDER BY 1, 2`, orgID, sinceDay, todayDay, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: count the decisions of %q: %w", orgID, mapErr(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DayCount, error) {
		var d store.DayCount
		err := r.Scan(&d.Day, &d.Outcome, &d.Count)
		d.Day = time.Date(d.Day.Year(), d.Day.Month(), d.Day.Day(), 0, 0, 0, 0, time.UTC)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: count the decisions of %q: %w", orgID, mapErr(err))
	}
	return out, nil
}

// uuidOrNil is id as a UUID for a uuid column, or NULL (which matches no
// row) when it is not one: an id no store gave is simply not found.
func uuidOrNil(id string) any {
	u, err := uuid.Parse(id)
	if err != nil {
		return nil
	}
	return u.String()
}
