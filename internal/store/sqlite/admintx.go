package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// What admins do, in a Tx (store/admin.go).

// User reads a user outside a transaction (store.Store).
func (s *Store) User(ctx context.Context, orgID, userID string) (store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.org_id = ? AND u.id = ?`,
		orgID, strings.ToLower(userID)))
	if err != nil {
		return u, fmt.Errorf("sqlite: user %s of %q: %w", userID, orgID, mapErr(err))
	}
	return u, nil
}

func (x *tx) UserByID(ctx context.Context, orgID, userID string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.org_id = ? AND u.id = ?`,
		orgID, strings.ToLower(userID)))
	if err != nil {
		return u, fmt.Errorf("sqlite: user %s of %q: %w", userID, orgID, x.fail(err))
	}
	return u, nil
}

func (x *tx) setUser(ctx context.Context, orgID, userID, column, value string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `UPDATE users SET `+column+` = ?3, updated_at = ?4
		WHERE org_id = ?1 AND id = ?2 RETURNING `+userReturning, orgID, strings.ToLower(userID), value, formatTime(x.now)))
	if err != nil {
		return u, fmt.Errorf("sqlite: set the %s of user %s: %w", column, userID, x.fail(err))
	}
	return u, nil
}

func (x *tx) SetUserStatus(ctx context.Context, orgID, userID, status string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `UPDATE users SET status = ?3, suspended_reason = '', scim_deactivated = 0, updated_at = ?4
		WHERE org_id = ?1 AND id = ?2 RETURNING `+userReturning, orgID, strings.ToLower(userID), status, formatTime(x.now)))
	if err != nil {
		return u, fmt.Errorf("sqlite: set the status of user %s: %w", userID, x.fail(err))
	}
	return u, nil
}

// inactiveSeconds is an organisation's InactiveAfter as stored: whole
// seconds, a positive duration under a second counting as one.
func inactiveSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(int64(d/time.Second), 1)
}

// SuspendInactive implements store.Tx. The transaction holds the write
// lock, so concurrent sweeps run one after the other and the second finds
// the users the first suspended no longer active.
func (x *tx) SuspendInactive(ctx context.Context, orgID string, cutoff time.Time, limit int) ([]store.User, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	limit = min(limit, store.MaxInactivePerSweep)
	var id string
	if err := x.t.QueryRowContext(ctx, `SELECT id FROM organizations WHERE id = ?`, orgID).Scan(&id); err != nil {
		return nil, fmt.Errorf("sqlite: suspend the inactive users of %q: %w", orgID, x.fail(err))
	}
	const lastSeen = `max(coalesce(c.last_login_at, c.created_at),
		coalesce((SELECT max(i.last_seen_at) FROM identities i WHERE i.user_id = c.id), c.created_at))`
	rows, err := x.t.QueryContext(ctx, `UPDATE users SET status = 'suspended', suspended_reason = 'inactive', updated_at = ?4
		WHERE status = 'active' AND id IN (
			SELECT c.id FROM users c
			WHERE c.org_id = ?1 AND c.status = 'active' AND c.created_by = 'jit' AND c.scim_managed = 0
			  AND `+lastSeen+` < ?2
			ORDER BY `+lastSeen+`, c.id
			LIMIT ?3)
		RETURNING `+userReturning, orgID, formatTime(cutoff), limit, formatTime(x.now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: suspend the inactive users of %q: %w", orgID, x.fail(err))
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: suspend the inactive users of %q: %w", orgID, x.fail(err))
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: suspend the inactive users of %q: %w", orgID, x.fail(err))
	}
	slices.SortFunc(users, func(a, b store.User) int { return strings.Compare(a.ID, b.ID) })
	return users, nil
}

func (x *tx) SetUserRole(ctx context.Context, orgID, userID, role string) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(x.t.QueryRowContext(ctx, `UPDATE users SET role = ?3, role_source = 'admin', updated_at = ?4
		WHERE org_id = ?1 AND id = ?2 RETURNING `+userReturning, orgID, strings.ToLower(userID), role, formatTime(x.now)))
	if err != nil {
		return u, fmt.Errorf("sqlite: set the role of user %s: %w", userID, x.fail(err))
	}
	return u, nil
}

func (x *tx) ReleaseSeat(ctx context.Context, orgID string) (store.Organization, error) {
	if err := x.check(); err != nil {
		return store.Organization{}, err
	}
	o, err := scanOrg(x.t.QueryRowContext(ctx, `UPDATE organizations SET seats_used = max(seats_used - 1, 0), updated_at = ?
		WHERE id = ? RETURNING `+orgColumns, formatTime(x.now), orgID))
	if err != nil {
		return o, fmt.Errorf("sqlite: release a seat of %q: %w", orgID, x.fail(err))
	}
	return o, nil
}

const reviewColumns = `id, org_id, user_id, held_role, requested_role, status, login_id, created_at,
	decided_at, coalesce(decided_by, ''), reason`

func scanReview(row scanner) (store.RoleReview, error) {
	var r store.RoleReview
	err := row.Scan(&r.ID, &r.OrganizationID, &r.UserID, &r.CurrentRole, &r.RequestedRole, &r.Status, &r.LoginID,
		timeText{&r.CreatedAt}, timeText{&r.DecidedAt}, &r.DecidedBy, &r.Reason)
	return r, err
}

func (x *tx) RoleReview(ctx context.Context, orgID, id string) (store.RoleReview, error) {
	if err := x.check(); err != nil {
		return store.RoleReview{}, err
	}
	r, err := scanReview(x.t.QueryRowContext(ctx, `SELECT `+reviewColumns+` FROM role_reviews WHERE org_id = ? AND id = ?`,
		orgID, strings.ToLower(id)))
	if err != nil {
		return r, fmt.Errorf("sqlite: role review %s of %q: %w", id, orgID, x.fail(err))
	}
	return r, nil
}

func (x *tx) DecideRoleReview(ctx context.Context, orgID, id, status, decidedBy, reason string) (store.RoleReview, error) {
	if err := x.check(); err != nil {
		return store.RoleReview{}, err
	}
	r, err := scanReview(x.t.QueryRowContext(ctx, `UPDATE role_reviews SET status = ?3, decided_at = ?4, decided_by = ?5, reason = ?6
		WHERE org_id = ?1 AND id = ?2 AND status = 'pending' RETURNING `+reviewColumns,
		orgID, strings.ToLower(id), status, formatTime(x.now), decidedBy, reason))
	if err == nil {
		return r, nil
	}
	if err := x.fail(err); !errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("sqlite: decide role review %s: %w", id, err)
	}
	cur, err := x.RoleReview(ctx, orgID, id)
	if err != nil {
		return cur, err
	}
	return cur, fmt.Errorf("sqlite: role review %s is %s already: %w", id, cur.Status, store.ErrConflict)
}

func (x *tx) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if err := x.check(); err != nil {
		return err
	}
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	_, err := x.t.ExecContext(ctx, `INSERT INTO admin_audit (org_id, actor_type, actor_id, actor_name, action, target, details, at)
		VALUES (?, ?, ?, ?, ?, ?, json(?), ?)`, e.OrganizationID, e.ActorType, e.ActorID, e.ActorName, e.Action, e.Target,
		jsonValue(details), formatTime(x.now))
	if err != nil {
		return fmt.Errorf("sqlite: audit %s: %w", e.Action, x.fail(err))
	}
	return nil
}

// where builds a WHERE clause of conditions with ? arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// query runs a list query and scans each row with scan.
func query[T any](ctx context.Context, x *tx, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	rows, err := x.t.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, x.fail(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, x.fail(err)
		}
		out = append(out, v)
	}
	return out, x.fail(rows.Err())
}

func (x *tx) ListUsers(ctx context.Context, f store.UserFilter) (store.UserPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("u.org_id = ?", f.OrganizationID)
	if f.Search != "" {
		p := store.LikePattern(f.Search)
		w.add(`(coalesce(u.email_lower, '') LIKE ? ESCAPE '\' OR lower(u.given_name || ' ' || u.family_name || ' ' || u.display_name) LIKE ? ESCAPE '\')`, p, p)
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
		w.add("u.created_at >= ?", formatTime(f.CreatedSince))
	}
	if f.ConnectionID != "" {
		w.add("EXISTS (SELECT 1 FROM identities i WHERE i.user_id = u.id AND i.connection_id = ?)", f.ConnectionID)
	}
	at, id, ok, err := store.ParseTimeCursor(f.Cursor)
	if err != nil {
		return store.UserPage{}, err
	}
	if ok {
		w.add("(u.created_at, u.id) < (?, ?)", formatTime(at), id)
	}
	users, err := query(ctx, x, `SELECT `+userColumns+` FROM users u WHERE `+w.String()+
		` ORDER BY u.created_at DESC, u.id DESC LIMIT ?`, append(w.args, limit+1), scanUser)
	if err != nil {
		return store.UserPage{}, fmt.Errorf("sqlite: list users of %q: %w", f.OrganizationID, err)
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
		w.add("user_id = ?", strings.ToLower(f.UserID))
	}
	out, err := query(ctx, x, `SELECT `+reviewColumns+` FROM role_reviews WHERE `+w.String()+
		` ORDER BY status <> 'pending', CASE WHEN status = 'pending' THEN created_at END ASC, created_at DESC LIMIT ?`,
		append(w.args, store.PageSize(f.Limit)), scanReview)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list role reviews of %q: %w", f.OrganizationID, err)
	}
	return out, nil
}

func (x *tx) ListDecisions(ctx context.Context, f store.DecisionFilter) (store.DecisionPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("org_id = ?", f.OrganizationID)
	for _, c := range []struct{ col, v string }{
		{"outcome", f.Outcome}, {"reason", f.Reason}, {"connection_id", f.ConnectionID}, {"external_id", f.ExternalID},
		{"user_id", strings.ToLower(f.UserID)},
	} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	if !f.Since.IsZero() {
		w.add("decided_at >= ?", formatTime(f.Since))
	}
	at, id, ok, err := store.ParseTimeCursor(f.Cursor)
	if err != nil {
		return store.DecisionPage{}, err
	}
	if ok {
		w.add("(decided_at, login_id) < (?, ?)", formatTime(at), id)
	}
	ds, err := query(ctx, x, `SELECT login_id, org_id, connection_id, external_id, outcome, reason,
		coalesce(user_id, ''), result, decided_at FROM provisioning_decisions WHERE `+w.String()+
		` ORDER BY decided_at DESC, login_id DESC LIMIT ?`, append(w.args, limit+1), scanDecision)
	if err != nil {
		return store.DecisionPage{}, fmt.Errorf("sqlite: list decisions of %q: %w", f.OrganizationID, err)
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
	w.add("1 = 1")
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
	es, err := query(ctx, x, `SELECT seq, org_id, actor_type, actor_id, actor_name, action, target, details, at
		FROM admin_audit WHERE `+w.String()+` ORDER BY seq DESC LIMIT ?`, append(w.args, limit+1),
		func(r scanner) (store.AuditEntry, error) {
			var e store.AuditEntry
			err := r.Scan(&e.Seq, &e.OrganizationID, &e.ActorType, &e.ActorID, &e.ActorName, &e.Action, &e.Target,
				jsonText{&e.Details}, timeText{&e.At})
			return e, err
		})
	if err != nil {
		return store.AuditPage{}, fmt.Errorf("sqlite: list the admin audit: %w", err)
	}
	page := store.AuditPage{Entries: es}
	if len(es) > limit {
		page.Entries = es[:limit]
		page.Next = fmt.Sprint(page.Entries[limit-1].Seq)
	}
	return page, nil
}

func (x *tx) DecisionCounts(ctx context.Context, orgID string, since time.Time) ([]store.DayCount, error) {
	out, err := query(ctx, x, `SELECT substr(decided_at, 1, 10), outcome, count(*)
		FROM provisioning_decisions WHERE org_id = ? AND decided_at >= ?
		GROUP BY 1, 2 ORDER BY 1, 2`, []any{orgID, formatTime(since)}, func(r scanner) (store.DayCount, error) {
		var d store.DayCount
		var day string
		if err := r.Scan(&day, &d.Outcome, &d.Count); err != nil {
			return d, err
		}
		t, err := time.Parse(time.DateOnly, day)
		d.Day = t.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: count the decisions of %q: %w", orgID, err)
	}
	return out, nil
}
