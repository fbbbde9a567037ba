package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/jitprov/jitprov/internal/store"
)

// directoryVisible is the users SCIM sees.
const directoryVisible = `NOT u.scim_deleted AND u.status <> 'held'`

func (x *tx) DirectoryUsers(ctx context.Context, orgID string, key store.DirectoryKey) ([]store.User, error) {
	var where string
	args := []any{orgID, key.Value}
	switch key.Attr {
	case store.DirectoryByID:
		where = `u.id = $2::uuid`
		args[1] = uuidOrNil(key.Value)
	case store.DirectoryByUserName:
		where = `lower(coalesce(u.scim_user_name, u.email)) = lower($2)`
	case store.DirectoryByExternalID:
		where = `u.scim_external_id = $2`
	case store.DirectoryByEmail:
		where = `lower(u.email) = lower($2)`
	case store.DirectoryByIdentity:
		where = `u.id IN (SELECT i.user_id FROM identities i WHERE i.org_id = $1 AND i.connection_id = $3 AND i.external_id = $2)`
		args = append(args, key.Connection)
	default:
		return nil, fmt.Errorf("postgres: directory users by %q: not a lookup key", key.Attr)
	}
	visible := directoryVisible
	if key.All {
		visible = `TRUE`
	}
	rows, err := x.t.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE u.org_id = $1 AND `+visible+` AND `+where+`
		ORDER BY u.created_at, u.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: directory users of %q by %s: %w", orgID, key.Attr, mapErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: directory users of %q by %s: %w", orgID, key.Attr, mapErr(err))
	}
	return users, nil
}

func (x *tx) DirectoryPage(ctx context.Context, orgID string, offset, limit int) ([]store.User, int, error) {
	var total int
	if err := x.t.QueryRow(ctx, `SELECT count(*) FROM users u WHERE u.org_id = $1 AND `+directoryVisible, orgID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count the directory of %q: %w", orgID, mapErr(err))
	}
	rows, err := x.t.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE u.org_id = $1 AND `+directoryVisible+`
		ORDER BY u.created_at, u.id OFFSET $2 LIMIT $3`, orgID, offset, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: directory page of %q: %w", orgID, mapErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: directory page of %q: %w", orgID, mapErr(err))
	}
	return users, total, nil
}

func (x *tx) CreateDirectoryUser(ctx context.Context, u store.User) (store.User, error) {
	out, err := scanUser(x.t.QueryRow(ctx, `INSERT INTO users AS u
		(id, org_id, email, given_name, family_name, display_name, groups, role, status, attributes, created_by,
		 email_verified, scim_user_name, scim_external_id, scim_managed, role_source)
		VALUES ($1::uuid, $2, NULLIF($3, ''), $4, $5, $6, $7, $8, $9, $10, $11, $12, NULLIF($13, ''), NULLIF($14, ''), $15, $16)
		RETURNING `+userColumns,
		u.ID, u.OrganizationID, u.Email, u.GivenName, u.FamilyName, u.DisplayName, nonNil(u.Groups), u.Role, u.Status,
		nonNilMap(u.Attributes), u.CreatedBy, u.EmailVerified, u.SCIM.UserName, u.SCIM.ExternalID, u.SCIM.Managed, roleSource(u)))
	if err != nil {
		return out, fmt.Errorf("postgres: create directory user in %q: %w", u.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) WriteDirectoryUser(ctx context.Context, u store.User) (store.User, error) {
	out, err := scanUser(x.t.QueryRow(ctx, `UPDATE users AS u SET
		email = NULLIF($3, ''), given_name = $4, family_name = $5, display_name = $6, groups = $7, attributes = $8,
		email_verified = $9, scim_user_name = NULLIF($10, ''), scim_external_id = NULLIF($11, ''), scim_managed = $12,
		scim_deleted = $13, role = $14, role_source = coalesce(NULLIF($15, ''), u.role_source), scim_deactivated = $16,
		updated_at = now()
		WHERE u.org_id = $1 AND u.id = $2::uuid
		RETURNING `+userColumns,
		u.OrganizationID, uuidOrNil(u.ID), u.Email, u.GivenName, u.FamilyName, u.DisplayName, nonNil(u.Groups),
		nonNilMap(u.Attributes), u.EmailVerified, u.SCIM.UserName, u.SCIM.ExternalID, u.SCIM.Managed, u.SCIM.Deleted,
		u.Role, u.RoleSource, u.SCIM.Deactivated))
	if err != nil {
		return out, fmt.Errorf("postgres: write directory user %s: %w", u.ID, mapErr(err))
	}
	return out, nil
}

const groupColumns = `g.id::text, g.org_id, g.display_name, coalesce(g.external_id, ''), g.created_at, g.updated_at`

func scanGroup(row pgx.Row) (store.Group, error) {
	var g store.Group
	err := row.Scan(&g.ID, &g.OrganizationID, &g.DisplayName, &g.ExternalID, &g.CreatedAt, &g.UpdatedAt)
	return g, err
}

func collectGroups(rows pgx.Rows, err error) ([]store.Group, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Group, error) { return scanGroup(r) })
}

func (x *tx) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	out, err := scanGroup(x.t.QueryRow(ctx, `INSERT INTO scim_groups AS g (id, org_id, display_name, external_id)
		VALUES ($1::uuid, $2, $3, NULLIF($4, '')) RETURNING `+groupColumns, g.ID, g.OrganizationID, g.DisplayName, g.ExternalID))
	if err != nil {
		return out, fmt.Errorf("postgres: create group %q in %q: %w", g.DisplayName, g.OrganizationID, mapErr(err))
	}
	return out, nil
}

func (x *tx) Groups(ctx context.Context, orgID string, key store.GroupKey) ([]store.Group, error) {
	var where string
	value := any(key.Value)
	switch key.Attr {
	case store.GroupByID:
		where, value = `g.id = $2::uuid`, uuidOrNil(key.Value)
	case store.GroupByDisplayName:
		where = `lower(g.display_name) = lower($2)`
	case store.GroupByExternalID:
		where = `g.external_id = $2`
	default:
		return nil, fmt.Errorf("postgres: groups by %q: not a lookup key", key.Attr)
	}
	groups, err := collectGroups(x.t.Query(ctx, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = $1 AND `+where+`
		ORDER BY lower(g.display_name)`, orgID, value))
	if err != nil {
		return nil, fmt.Errorf("postgres: groups of %q by %s: %w", orgID, key.Attr, mapErr(err))
	}
	return groups, nil
}

func (x *tx) GroupPage(ctx context.Context, orgID string, offset, limit int) ([]store.Group, int, error) {
	var total int
	if err := x.t.QueryRow(ctx, `SELECT count(*) FROM scim_groups WHERE org_id = $1`, orgID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("postgres: count the groups of %q: %w", orgID, mapErr(err))
	}
	groups, err := collectGroups(x.t.Query(ctx, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = $1
		ORDER BY lower(g.display_name), g.id OFFSET $2 LIMIT $3`, orgID, offset, limit))
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: group page of %q: %w", orgID, mapErr(err))
	}
	return groups, total, nil
}

func (x *tx) LockGroup(ctx context.Context, orgID, id string) (store.Group, error) {
	g, err := scanGroup(x.t.QueryRow(ctx, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = $1 AND g.id = $2::uuid FOR UPDATE`,
		orgID, uuidOrNil(id)))
	if err != nil {
		return g, fmt.Errorf("postgres: group %s of %q: %w", id, orgID, mapErr(err))
	}
	return g, nil
}

func (x *tx) UpdateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	out, err := scanGroup(x.t.QueryRow(ctx, `UPDATE scim_groups AS g SET display_name = $3, external_id = NULLIF($4, ''), updated_at = now()
		WHERE g.org_id = $1 AND g.id = $2::uuid RETURNING `+groupColumns, g.OrganizationID, uuidOrNil(g.ID), g.DisplayName, g.ExternalID))
	if err != nil {
		return out, fmt.Errorf("postgres: update group %s: %w", g.ID, mapErr(err))
	}
	return out, nil
}

func (x *tx) DeleteGroup(ctx context.Context, orgID, id string) error {
	tag, err := x.t.Exec(ctx, `DELETE FROM scim_groups WHERE org_id = $1 AND id = $2::uuid`, orgID, uuidOrNil(id))
	if err != nil {
		return fmt.Errorf("postgres: delete group %s: %w", id, mapErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete group %s of %q: %w", id, orgID, store.ErrNotFound)
	}
	return nil
}

func (x *tx) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	rows, err := x.t.Query(ctx, `SELECT user_id::text FROM scim_group_members WHERE group_id = $1::uuid ORDER BY user_id`, uuidOrNil(groupID))
	if err != nil {
		return nil, fmt.Errorf("postgres: members of group %s: %w", groupID, mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: members of group %s: %w", groupID, mapErr(err))
	}
	return ids, nil
}

func (x *tx) GroupMemberUsers(ctx context.Context, groupID string) ([]store.User, error) {
	rows, err := x.t.Query(ctx, `SELECT `+userColumns+` FROM scim_group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = $1::uuid AND `+directoryVisible+` ORDER BY u.id`, uuidOrNil(groupID))
	if err != nil {
		return nil, fmt.Errorf("postgres: members of group %s: %w", groupID, mapErr(err))
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: members of group %s: %w", groupID, mapErr(err))
	}
	return users, nil
}

func (x *tx) AddGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	// Only users of the group's organisation join: an id of another
	// organisation's user is not found.
	rows, err := x.t.Query(ctx, `INSERT INTO scim_group_members (group_id, user_id)
		SELECT g.id, u.id FROM scim_groups g JOIN users u ON u.org_id = g.org_id
		WHERE g.id = $1::uuid AND u.id = ANY($2::uuid[])
		ON CONFLICT DO NOTHING RETURNING user_id::text`, uuidOrNil(groupID), validUUIDs(userIDs))
	if err != nil {
		return nil, fmt.Errorf("postgres: add members to group %s: %w", groupID, mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: add members to group %s: %w", groupID, mapErr(err))
	}
	return ids, nil
}

func (x *tx) RemoveGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	rows, err := x.t.Query(ctx, `DELETE FROM scim_group_members WHERE group_id = $1::uuid AND user_id = ANY($2::uuid[])
		RETURNING user_id::text`, uuidOrNil(groupID), validUUIDs(userIDs))
	if err != nil {
		return nil, fmt.Errorf("postgres: remove members from group %s: %w", groupID, mapErr(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: remove members from group %s: %w", groupID, mapErr(err))
	}
	return ids, nil
}

func (x *tx) UserGroups(ctx context.Context, userID string) ([]store.Group, error) {
	groups, err := collectGroups(x.t.Query(ctx, `SELECT `+groupColumns+` FROM scim_groups g
		JOIN scim_group_members m ON m.group_id = g.id WHERE m.user_id = $1::uuid ORDER BY lower(g.display_name)`, uuidOrNil(userID)))
	if err != nil {
		return nil, fmt.Errorf("postgres: groups of user %s: %w", userID, mapErr(err))
	}
	return groups, nil
}

// validUUIDs keeps the ids that are UUIDs: no user has another.
func validUUIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if u := uuidOrNil(id); u != nil {
			out = append(out, u.(string))
		}
	}
	return out
}
