package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

// directoryVisible is the users SCIM sees.
const directoryVisible = `u.scim_deleted = 0 AND u.status <> 'held'`

func (x *tx) DirectoryUsers(ctx context.Context, orgID string, key store.DirectoryKey) ([]store.User, error) {
	var where string
	args := []any{orgID, key.Value}
	switch key.Attr {
	case store.DirectoryByID:
		where, args[1] = `u.id = ?2`, strings.ToLower(key.Value)
	case store.DirectoryByUserName:
		where, args[1] = `coalesce(u.scim_user_name_lower, u.email_lower) = ?2`, strings.ToLower(key.Value)
	case store.DirectoryByExternalID:
		where = `u.scim_external_id = ?2`
	case store.DirectoryByEmail:
		where, args[1] = `u.email_lower = ?2`, strings.ToLower(key.Value)
	case store.DirectoryByIdentity:
		where = `u.id IN (SELECT i.user_id FROM identities i WHERE i.org_id = ?1 AND i.connection_id = ?3 AND i.external_id = ?2)`
		args = append(args, key.Connection)
	default:
		return nil, fmt.Errorf("sqlite: directory users by %q: not a lookup key", key.Attr)
	}
	visible := directoryVisible
	if key.All {
		visible = `TRUE`
	}
	users, err := query(ctx, x, `SELECT `+userColumns+` FROM users u WHERE u.org_id = ?1 AND `+visible+` AND `+where+`
		ORDER BY u.created_at, u.id`, args, scanUser)
	if err != nil {
		return nil, fmt.Errorf("sqlite: directory users of %q by %s: %w", orgID, key.Attr, err)
	}
	return users, nil
}

func (x *tx) DirectoryPage(ctx context.Context, orgID string, offset, limit int) ([]store.User, int, error) {
	if err := x.check(); err != nil {
		return nil, 0, err
	}
	var total int
	if err := x.t.QueryRowContext(ctx, `SELECT count(*) FROM users u WHERE u.org_id = ? AND `+directoryVisible, orgID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count the directory of %q: %w", orgID, x.fail(err))
	}
	users, err := query(ctx, x, `SELECT `+userColumns+` FROM users u WHERE u.org_id = ? AND `+directoryVisible+`
		ORDER BY u.created_at, u.id LIMIT ? OFFSET ?`, []any{orgID, limit, offset}, scanUser)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: directory page of %q: %w", orgID, err)
	}
	return users, total, nil
}

func (x *tx) CreateDirectoryUser(ctx context.Context, u store.User) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	id, err := canonicalUUID(u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: create directory user in %q: %w", u.OrganizationID, x.fail(err))
	}
	now := formatTime(x.now)
	out, err := scanUser(x.t.QueryRowContext(ctx, `INSERT INTO users
		(id, org_id, email, email_lower, given_name, family_name, display_name, groups, role, status, attributes, created_by,
		 email_verified, created_at, updated_at, scim_user_name, scim_user_name_lower, scim_external_id, scim_managed, role_source)
		VALUES (?1, ?2, NULLIF(?3, ''), NULLIF(?4, ''), ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
		 ?13, ?14, ?14, NULLIF(?15, ''), NULLIF(?16, ''), NULLIF(?17, ''), ?18, ?19)
		RETURNING `+userReturning,
		id, u.OrganizationID, u.Email, strings.ToLower(u.Email), u.GivenName, u.FamilyName, u.DisplayName,
		jsonValue(nonNil(u.Groups)), u.Role, u.Status, jsonValue(nonNilMap(u.Attributes)), u.CreatedBy,
		u.EmailVerified, now, u.SCIM.UserName, strings.ToLower(u.SCIM.UserName), u.SCIM.ExternalID, u.SCIM.Managed, roleSource(u)))
	if err != nil {
		return out, fmt.Errorf("sqlite: create directory user in %q: %w", u.OrganizationID, x.fail(err))
	}
	return out, nil
}

func (x *tx) WriteDirectoryUser(ctx context.Context, u store.User) (store.User, error) {
	if err := x.check(); err != nil {
		return store.User{}, err
	}
	out, err := scanUser(x.t.QueryRowContext(ctx, `UPDATE users SET
		email = NULLIF(?3, ''), email_lower = NULLIF(?4, ''), given_name = ?5, family_name = ?6, display_name = ?7,
		groups = ?8, attributes = ?9, email_verified = ?10, scim_user_name = NULLIF(?11, ''),
		scim_user_name_lower = NULLIF(?12, ''), scim_external_id = NULLIF(?13, ''), scim_managed = ?14, scim_deleted = ?15,
		updated_at = ?16, role = ?17, role_source = coalesce(NULLIF(?18, ''), role_source), scim_deactivated = ?19
		WHERE org_id = ?1 AND id = ?2
		RETURNING `+userReturning,
		u.OrganizationID, strings.ToLower(u.ID), u.Email, strings.ToLower(u.Email), u.GivenName, u.FamilyName, u.DisplayName,
		jsonValue(nonNil(u.Groups)), jsonValue(nonNilMap(u.Attributes)), u.EmailVerified, u.SCIM.UserName,
		strings.ToLower(u.SCIM.UserName), u.SCIM.ExternalID, u.SCIM.Managed, u.SCIM.Deleted, formatTime(x.now), u.Role, u.RoleSource, u.SCIM.Deactivated))
	if err != nil {
		return out, fmt.Errorf("sqlite: write directory user %s: %w", u.ID, x.fail(err))
	}
	return out, nil
}

const groupColumns = `g.id, g.org_id, g.display_name, coalesce(g.external_id, ''), g.created_at, g.updated_at`

func scanGroup(row scanner) (store.Group, error) {
	var g store.Group
	err := row.Scan(&g.ID, &g.OrganizationID, &g.DisplayName, &g.ExternalID, timeText{&g.CreatedAt}, timeText{&g.UpdatedAt})
	return g, err
}

func (x *tx) CreateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	if err := x.check(); err != nil {
		return store.Group{}, err
	}
	id, err := canonicalUUID(g.ID)
	if err != nil {
		return store.Group{}, fmt.Errorf("sqlite: create group in %q: %w", g.OrganizationID, x.fail(err))
	}
	out, err := scanGroup(x.t.QueryRowContext(ctx, `INSERT INTO scim_groups
		(id, org_id, display_name, display_name_lower, external_id, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, NULLIF(?5, ''), ?6, ?6)
		RETURNING `+strings.ReplaceAll(groupColumns, "g.", ""),
		id, g.OrganizationID, g.DisplayName, strings.ToLower(g.DisplayName), g.ExternalID, formatTime(x.now)))
	if err != nil {
		return out, fmt.Errorf("sqlite: create group %q in %q: %w", g.DisplayName, g.OrganizationID, x.fail(err))
	}
	return out, nil
}

func (x *tx) Groups(ctx context.Context, orgID string, key store.GroupKey) ([]store.Group, error) {
	var where string
	value := key.Value
	switch key.Attr {
	case store.GroupByID:
		where, value = `g.id = ?2`, strings.ToLower(value)
	case store.GroupByDisplayName:
		where, value = `g.display_name_lower = ?2`, strings.ToLower(value)
	case store.GroupByExternalID:
		where = `g.external_id = ?2`
	default:
		return nil, fmt.Errorf("sqlite: groups by %q: not a lookup key", key.Attr)
	}
	groups, err := query(ctx, x, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = ?1 AND `+where+`
		ORDER BY g.display_name_lower`, []any{orgID, value}, scanGroup)
	if err != nil {
		return nil, fmt.Errorf("sqlite: groups of %q by %s: %w", orgID, key.Attr, err)
	}
	return groups, nil
}

func (x *tx) GroupPage(ctx context.Context, orgID string, offset, limit int) ([]store.Group, int, error) {
	if err := x.check(); err != nil {
		return nil, 0, err
	}
	var total int
	if err := x.t.QueryRowContext(ctx, `SELECT count(*) FROM scim_groups WHERE org_id = ?`, orgID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlite: count the groups of %q: %w", orgID, x.fail(err))
	}
	groups, err := query(ctx, x, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = ?
		ORDER BY g.display_name_lower, g.id LIMIT ? OFFSET ?`, []any{orgID, limit, offset}, scanGroup)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: group page of %q: %w", orgID, err)
	}
	return groups, total, nil
}

// LockGroup needs no lock: SQLite's one writer holds the database for the
// whole transaction.
func (x *tx) LockGroup(ctx context.Context, orgID, id string) (store.Group, error) {
	if err := x.check(); err != nil {
		return store.Group{}, err
	}
	g, err := scanGroup(x.t.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM scim_groups g WHERE g.org_id = ? AND g.id = ?`,
		orgID, strings.ToLower(id)))
	if err != nil {
		return g, fmt.Errorf("sqlite: group %s of %q: %w", id, orgID, x.fail(err))
	}
	return g, nil
}

func (x *tx) UpdateGroup(ctx context.Context, g store.Group) (store.Group, error) {
	if err := x.check(); err != nil {
		return store.Group{}, err
	}
	out, err := scanGroup(x.t.QueryRowContext(ctx, `UPDATE scim_groups SET display_name = ?3, display_name_lower = ?4,
		external_id = NULLIF(?5, ''), updated_at = ?6 WHERE org_id = ?1 AND id = ?2
		RETURNING `+strings.ReplaceAll(groupColumns, "g.", ""),
		g.OrganizationID, strings.ToLower(g.ID), g.DisplayName, strings.ToLower(g.DisplayName), g.ExternalID, formatTime(x.now)))
	if err != nil {
		return out, fmt.Errorf("sqlite: update group %s: %w", g.ID, x.fail(err))
	}
	return out, nil
}

func (x *tx) DeleteGroup(ctx context.Context, orgID, id string) error {
	if err := x.check(); err != nil {
		return err
	}
	res, err := x.t.ExecContext(ctx, `DELETE FROM scim_groups WHERE org_id = ? AND id = ?`, orgID, strings.ToLower(id))
	if err != nil {
		return fmt.Errorf("sqlite: delete group %s: %w", id, x.fail(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sqlite: delete group %s of %q: %w", id, orgID, store.ErrNotFound)
	}
	return nil
}

func scanID(row scanner) (string, error) {
	var id string
	err := row.Scan(&id)
	return id, err
}

func (x *tx) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	ids, err := query(ctx, x, `SELECT user_id FROM scim_group_members WHERE group_id = ? ORDER BY user_id`,
		[]any{strings.ToLower(groupID)}, scanID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: members of group %s: %w", groupID, err)
	}
	return ids, nil
}

func (x *tx) GroupMemberUsers(ctx context.Context, groupID string) ([]store.User, error) {
	users, err := query(ctx, x, `SELECT `+userColumns+` FROM scim_group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = ? AND `+directoryVisible+` ORDER BY u.id`, []any{strings.ToLower(groupID)}, scanUser)
	if err != nil {
		return nil, fmt.Errorf("sqlite: members of group %s: %w", groupID, err)
	}
	return users, nil
}

func (x *tx) AddGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	var added []string
	for _, u := range canonicalIDs(userIDs) {
		// Only users of the group's organisation join.
		ids, err := query(ctx, x, `INSERT INTO scim_group_members (group_id, user_id)
			SELECT g.id, u.id FROM scim_groups g JOIN users u ON u.org_id = g.org_id WHERE g.id = ?1 AND u.id = ?2
			ON CONFLICT DO NOTHING RETURNING user_id`, []any{strings.ToLower(groupID), u}, scanID)
		if err != nil {
			return nil, fmt.Errorf("sqlite: add members to group %s: %w", groupID, err)
		}
		added = append(added, ids...)
	}
	return added, nil
}

func (x *tx) RemoveGroupMembers(ctx context.Context, groupID string, userIDs []string) ([]string, error) {
	var removed []string
	for _, u := range canonicalIDs(userIDs) {
		ids, err := query(ctx, x, `DELETE FROM scim_group_members WHERE group_id = ? AND user_id = ? RETURNING user_id`,
			[]any{strings.ToLower(groupID), u}, scanID)
		if err != nil {
			return nil, fmt.Errorf("sqlite: remove members from group %s: %w", groupID, err)
		}
		removed = append(removed, ids...)
	}
	return removed, nil
}

func (x *tx) UserGroups(ctx context.Context, userID string) ([]store.Group, error) {
	groups, err := query(ctx, x, `SELECT `+groupColumns+` FROM scim_groups g JOIN scim_group_members m ON m.group_id = g.id
		WHERE m.user_id = ? ORDER BY g.display_name_lower`, []any{strings.ToLower(userID)}, scanGroup)
	if err != nil {
		return nil, fmt.Errorf("sqlite: groups of user %s: %w", userID, err)
	}
	return groups, nil
}

// canonicalIDs keeps the ids that are UUIDs, in their stored form: no
// user has another.
func canonicalIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			out = append(out, u.String())
		}
	}
	return out
}
