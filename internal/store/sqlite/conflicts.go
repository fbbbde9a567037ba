package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/jitprov/jitprov/internal/store"
)

// fieldOwners is an organisation's field owners as stored: {} for none.
func fieldOwners(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// RecordFieldConflicts implements store.ConflictTx: an upsert per
// conflict, of the user's row only when the user is the organisation's.
func (x *tx) RecordFieldConflicts(ctx context.Context, cs ...store.FieldConflict) error {
	if err := x.check(); err != nil {
		return err
	}
	now := formatTime(x.now)
	for _, c := range cs {
		res, err := x.t.ExecContext(ctx, `INSERT INTO field_conflicts
			(org_id, user_id, field, source, rejected, kept, owner, login_id, actor, first_at, at)
			SELECT u.org_id, u.id, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10 FROM users u WHERE u.org_id = ?1 AND u.id = lower(?2)
			ON CONFLICT (org_id, user_id, field) DO UPDATE SET source = excluded.source, rejected = excluded.rejected,
				kept = excluded.kept, owner = excluded.owner, login_id = excluded.login_id, actor = excluded.actor,
				count = field_conflicts.count + 1, at = excluded.at`,
			c.OrganizationID, c.UserID, c.Field, c.Source, jsonValue(nonNil(c.Rejected)), jsonValue(nonNil(c.Kept)),
			c.Owner, c.LoginID, c.Actor, now)
		if err != nil {
			return fmt.Errorf("sqlite: record the conflict on %s of user %s: %w", c.Field, c.UserID, x.fail(err))
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: record the conflict on %s of user %s: %w", c.Field, c.UserID, x.fail(err))
		} else if n == 0 {
			return fmt.Errorf("sqlite: record the conflict on %s of user %s of %q: %w", c.Field, c.UserID, c.OrganizationID, store.ErrNotFound)
		}
	}
	return nil
}

// ListFieldConflicts implements store.ConflictTx.
func (x *tx) ListFieldConflicts(ctx context.Context, f store.ConflictFilter) (store.ConflictPage, error) {
	limit := store.PageSize(f.Limit)
	var w where
	w.add("org_id = ?", f.OrganizationID)
	if f.UserID != "" {
		w.add("user_id = lower(?)", f.UserID)
	}
	if f.Field != "" {
		w.add("field = ?", f.Field)
	}
	at, key, ok, err := store.ParseTimeCursor(f.Cursor)
	if err != nil {
		return store.ConflictPage{}, err
	}
	if ok {
		user, field, _ := strings.Cut(key, "|")
		w.add("(at, user_id, field) < (?, ?, ?)", formatTime(at), user, field)
	}
	cs, err := query(ctx, x, `SELECT org_id, user_id, field, source, rejected, kept, owner, login_id, actor,
		count, first_at, at FROM field_conflicts WHERE `+w.String()+` ORDER BY at DESC, user_id DESC, field DESC LIMIT ?`,
		append(w.args, limit+1), func(r scanner) (store.FieldConflict, error) {
			var c store.FieldConflict
			err := r.Scan(&c.OrganizationID, &c.UserID, &c.Field, &c.Source, jsonText{&c.Rejected}, jsonText{&c.Kept},
				&c.Owner, &c.LoginID, &c.Actor, &c.Count, timeText{&c.FirstAt}, timeText{&c.At})
			return c, err
		})
	if err != nil {
		return store.ConflictPage{}, fmt.Errorf("sqlite: list the field conflicts of %q: %w", f.OrganizationID, err)
	}
	page := store.ConflictPage{Conflicts: cs}
	if len(cs) > limit {
		page.Conflicts = cs[:limit]
		last := page.Conflicts[limit-1]
		page.Next = store.TimeCursor(last.At, last.UserID+"|"+last.Field)
	}
	return page, nil
}
