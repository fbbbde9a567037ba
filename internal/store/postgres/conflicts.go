package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

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
	for _, c := range cs {
		tag, err := x.t.Exec(ctx, `INSERT INTO field_conflicts
			(org_id, user_id, field, source, rejected, kept, owner, login_id, actor)
			SELECT u.org_id, u.id, $3, $4, $5, $6, $7, $8, $9 FROM users u WHERE u.org_id = $1 AND u.id = $2
			ON CONFLICT (org_id, user_id, field) DO UPDATE SET source = excluded.source, rejected = excluded.rejected,
				kept = excluded.kept, owner = excluded.owner, login_id = excluded.login_id, actor = excluded.actor,
				count = field_conflicts.count + 1, at = now()`,
			c.OrganizationID, uuidOrNil(c.UserID), c.Field, c.Source, nonNil(c.Rejected), nonNil(c.Kept), c.Owner, c.LoginID, c.Actor)
		if err != nil {
			return fmt.Errorf("postgres: record the conflict on %s of user %s: %w", c.Field, c.UserID, mapErr(err))
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: record the conflict on %s of user %s of %q: %w", c.Field, c.UserID, c.OrganizationID, store.ErrNotFound)
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
		w.add("user_id = ?", uuidOrNil(f.UserID))
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
		w.add("(at, user_id, field) < (?, ?, ?)", at, uuidOrNil(user), field)
	}
	w.args = append(w.args, limit+1)
	rows, err := x.t.Query(ctx, `SELECT org_id, user_id::text, field, source, rejected, kept, owner, login_id, actor,
		count, first_at, at FROM field_conflicts WHERE `+w.String()+
		fmt.Sprintf(` ORDER BY at DESC, user_id DESC, field DESC LIMIT $%d`, len(w.args)), w.args...)
	if err != nil {
		return store.ConflictPage{}, fmt.Errorf("postgres: list the field conflicts of %q: %w", f.OrganizationID, mapErr(err))
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.FieldConflict, error) {
		var c store.FieldConflict
		err := r.Scan(&c.OrganizationID, &c.UserID, &c.Field, &c.Source, &c.Rejected, &c.Kept, &c.Owner, &c.LoginID, &c.Actor,
			&c.Count, &c.FirstAt, &c.At)
		return c, err
	})
	if err != nil {
		return store.ConflictPage{}, fmt.Errorf("postgres: list the field conflicts of %q: %w", f.OrganizationID, mapErr(err))
	}
	page := store.ConflictPage{Conflicts: cs}
	if len(cs) > limit {
		page.Conflicts = cs[:limit]
		last := page.Conflicts[limit-1]
		page.Next = store.TimeCursor(last.At, last.UserID+"|"+last.Field)
	}
	return page, nil
}
