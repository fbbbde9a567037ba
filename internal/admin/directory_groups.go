package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/store"
)

// A SCIM group's members are the organisation's users. A membership change
// is a change of the member's groups (users.groups, as a login's groups
// claim sets it), and of their role where the organisation's group rules
// (group_roles of its connections) say so: the same rules as a sign-in's
// groups, with one difference: a role above the JIT ceiling is not
// granted and opens no review (SCIM has nobody to tell). A role above the
// ceiling (an admin's grant) is never taken away by a group change.

// DirectoryGroup is a SCIM group and its members.
type DirectoryGroup struct {
	Group   store.Group
	Members []DirectoryMember
}

// DirectoryMember is a member of a group as SCIM lists it.
type DirectoryMember struct {
	ID      string
	Display string // the member's userName
}

// Version is the group's entity tag.
func (g DirectoryGroup) Version() string { return version(g.Group.UpdatedAt.UnixMicro()) }

// GroupChange is what a PUT or PATCH of a group changes; nil and empty
// fields change nothing.
type GroupChange struct {
	DisplayName *string
	ExternalID  *string
	// SetMembers replaces the members (a PUT, or a PATCH replacing
	// members); then Add and Remove are ignored.
	SetMembers *[]string
	Add        []string
	Remove     []string
}

func checkGroupExternalID(ext string) error {
	switch {
	case len(ext) > maxDirectoryValue:
		return invalid("externalId", "%d bytes is more than %d", len(ext), maxDirectoryValue)
	case strings.ContainsRune(ext, 0):
		return invalid("externalId", "contains a NUL character")
	}
	return nil
}

func checkGroupName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalid("displayName", "required: the group's name, as the group rules (group_roles) name it")
	case len(name) > maxDirectoryValue:
		return invalid("displayName", "%d bytes is more than %d", len(name), maxDirectoryValue)
	case strings.ContainsRune(name, 0):
		return invalid("displayName", "contains a NUL character")
	}
	return nil
}

func directoryGroup(ctx context.Context, tx store.Tx, g store.Group) (DirectoryGroup, error) {
	users, err := tx.GroupMemberUsers(ctx, g.ID)
	if err != nil {
		return DirectoryGroup{}, err
	}
	out := DirectoryGroup{Group: g, Members: make([]DirectoryMember, 0, len(users))}
	for _, u := range users {
		out.Members = append(out.Members, DirectoryMember{ID: u.ID, Display: DirectoryUser{User: u}.UserName()})
	}
	return out, nil
}

// CreateDirectoryGroup is a SCIM client's POST of a group, with its first
// members; ErrConflict (uniqueness) when the organisation has a group of
// that name.
func (c *Core) CreateDirectoryGroup(ctx context.Context, p Principal, orgID, name, externalID string, members []string) (DirectoryGroup, error) {
	if err := checkGroupName(name); err != nil {
		return DirectoryGroup{}, err
	}
	if err := checkGroupExternalID(externalID); err != nil {
		return DirectoryGroup{}, err
	}
	var out DirectoryGroup
	err := c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		g, err := tx.CreateGroup(ctx, store.Group{ID: uuid.NewString(), OrganizationID: org.ID, DisplayName: name, ExternalID: externalID})
		if err != nil {
			return uniqueness(err)
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := c.changeMembers(ctx, tx, ch, org, g, GroupChange{Add: members}); err != nil {
			return err
		}
		if out, err = directoryGroup(ctx, tx, g); err != nil {
			return err
		}
		return ch.commit(tx, "scim.group.create", g.ID, map[string]any{"display_name": name, "members": len(out.Members)})
	})
	return out, err
}

// DirectoryGroup reads a group of the organisation.
func (c *Core) DirectoryGroup(ctx context.Context, p Principal, orgID, groupID string) (DirectoryGroup, error) {
	var out DirectoryGroup
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		groups, err := tx.Groups(ctx, org.ID, store.GroupKey{Attr: store.GroupByID, Value: groupID})
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			return fmt.Errorf("%w: group %s", ErrNotFound, groupID)
		}
		out, err = directoryGroup(ctx, tx, groups[0])
		return err
	})
	return out, err
}

// FindDirectoryGroups finds the groups whose attr (a store.GroupBy* key)
// equals value.
func (c *Core) FindDirectoryGroups(ctx context.Context, p Principal, orgID, attr, value string) ([]DirectoryGroup, error) {
	var out []DirectoryGroup
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		groups, err := tx.Groups(ctx, org.ID, store.GroupKey{Attr: attr, Value: value})
		if err != nil {
			return err
		}
		for _, g := range groups {
			dg, err := directoryGroup(ctx, tx, g)
			if err != nil {
				return err
			}
			out = append(out, dg)
		}
		return nil
	})
	return out, err
}

// DirectoryGroups is a page of the organisation's groups by name, and how
// many there are; members are left out unless withMembers.
func (c *Core) DirectoryGroups(ctx context.Context, p Principal, orgID string, offset, limit int, withMembers bool) ([]DirectoryGroup, int, error) {
	var out []DirectoryGroup
	var total int
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		groups, n, err := tx.GroupPage(ctx, org.ID, offset, limit)
		if err != nil {
			return err
		}
		total = n
		for _, g := range groups {
			dg := DirectoryGroup{Group: g}
			if withMembers {
				if dg, err = directoryGroup(ctx, tx, g); err != nil {
					return err
				}
			}
			out = append(out, dg)
		}
		return nil
	})
	return out, total, err
}

// ChangeDirectoryGroup is a SCIM client's PUT or PATCH of a group.
// ifVersion, when set, must be the group's Version.
func (c *Core) ChangeDirectoryGroup(ctx context.Context, p Principal, orgID, groupID string, gc GroupChange, ifVersion string) (DirectoryGroup, error) {
	if gc.DisplayName != nil {
		if err := checkGroupName(*gc.DisplayName); err != nil {
			return DirectoryGroup{}, err
		}
	}
	if gc.ExternalID != nil {
		if err := checkGroupExternalID(*gc.ExternalID); err != nil {
			return DirectoryGroup{}, err
		}
	}
	var out DirectoryGroup
	err := c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		g, err := tx.LockGroup(ctx, org.ID, groupID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: group %s", ErrNotFound, groupID)
		} else if err != nil {
			return err
		}
		if ifVersion != "" && ifVersion != version(g.UpdatedAt.UnixMicro()) {
			return fmt.Errorf("%w: group %s is at version %s, not %s", ErrPrecondition, g.ID, version(g.UpdatedAt.UnixMicro()), ifVersion)
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		renamed, meta := false, false
		if (gc.DisplayName != nil && *gc.DisplayName != g.DisplayName) || (gc.ExternalID != nil && *gc.ExternalID != g.ExternalID) {
			next := g
			if gc.DisplayName != nil {
				next.DisplayName = *gc.DisplayName
			}
			if gc.ExternalID != nil {
				next.ExternalID = *gc.ExternalID
			}
			renamed, meta = next.DisplayName != g.DisplayName, true
			if g, err = tx.UpdateGroup(ctx, next); err != nil {
				return uniqueness(err)
			}
		}
		if gc.SetMembers != nil {
			current, err := tx.GroupMembers(ctx, g.ID)
			if err != nil {
				return err
			}
			want := canonical(*gc.SetMembers)
			gc.Add, gc.Remove = nil, nil
			for _, id := range want {
				if !slices.Contains(current, id) {
					gc.Add = append(gc.Add, id)
				}
			}
			for _, id := range current {
				if !slices.Contains(want, id) {
					gc.Remove = append(gc.Remove, id)
				}
			}
		}
		// Every user this change may touch is locked once, in id order,
		// before any write: changes of groups that share members queue on
		// them in one order and never deadlock.
		touched := slices.Concat(gc.Add, gc.Remove)
		var members []string
		if renamed {
			if members, err = tx.GroupMembers(ctx, g.ID); err != nil {
				return err
			}
			touched = append(touched, members...)
		}
		if err := lockUsers(ctx, tx, org.ID, touched); err != nil {
			return err
		}
		if renamed {
			// Every member's groups name the group: all of them change.
			if err := c.refreshMembers(ctx, tx, ch, org, members); err != nil {
				return err
			}
		}
		if err := c.changeMembers(ctx, tx, ch, org, g, gc); err != nil {
			return err
		}
		if out, err = directoryGroup(ctx, tx, g); err != nil {
			return err
		}
		if !meta && len(ch.outbox) == 0 {
			return nil
		}
		return ch.commit(tx, "scim.group.change", g.ID, map[string]any{"display_name": g.DisplayName,
			"added": len(gc.Add), "removed": len(gc.Remove)})
	})
	return out, err
}

// DeleteDirectoryGroup removes a group; its members lose it (and the role
// it gave them).
func (c *Core) DeleteDirectoryGroup(ctx context.Context, p Principal, orgID, groupID string) error {
	return c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		g, err := tx.LockGroup(ctx, org.ID, groupID)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: group %s", ErrNotFound, groupID)
		} else if err != nil {
			return err
		}
		members, err := tx.GroupMembers(ctx, g.ID)
		if err != nil {
			return err
		}
		// The members first, in id order, as every change of members does.
		if err := lockUsers(ctx, tx, org.ID, members); err != nil {
			return err
		}
		if err := tx.DeleteGroup(ctx, org.ID, g.ID); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if err := c.refreshMembers(ctx, tx, ch, org, members); err != nil {
			return err
		}
		return ch.commit(tx, "scim.group.delete", g.ID, map[string]any{"display_name": g.DisplayName, "members": len(members)})
	})
}

// changeMembers adds and removes members (ErrInvalid naming an id that is
// no user SCIM sees) and refreshes the groups and role of each whose
// membership changed.
func (c *Core) changeMembers(ctx context.Context, tx store.Tx, ch *change, org store.Organization, g store.Group, gc GroupChange) error {
	add, remove := canonical(gc.Add), canonical(gc.Remove)
	// Lock every user whose membership may change, in id order, before
	// touching memberships: concurrent changes of groups that share
	// members then queue on the users in one order and never deadlock.
	all := slices.Concat(add, remove)
	slices.Sort(all)
	for _, id := range slices.Compact(all) {
		u, err := tx.UserByID(ctx, org.ID, id)
		visible := err == nil && !u.SCIM.Deleted && u.Status != store.StatusHeld
		switch {
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		case !visible && slices.Contains(add, id):
			return invalid("members", "%q is no user of organisation %q that SCIM sees", id, org.ID)
		}
	}
	var touched []string
	if len(add) > 0 {
		added, err := tx.AddGroupMembers(ctx, g.ID, add)
		if err != nil {
			return err
		}
		touched = append(touched, added...)
	}
	if len(remove) > 0 {
		removed, err := tx.RemoveGroupMembers(ctx, g.ID, remove)
		if err != nil {
			return err
		}
		touched = append(touched, removed...)
	}
	return c.refreshMembers(ctx, tx, ch, org, touched)
}

// lockUsers locks the users of ids (those that exist) in id order.
func lockUsers(ctx context.Context, tx store.Tx, orgID string, ids []string) error {
	ids = canonical(ids)
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := tx.UserByID(ctx, orgID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// refreshMembers sets each user's groups to their SCIM groups' names and
// their role to what the group rules give, announcing each change — as
// far as the organisation's field owners let SCIM change groups and
// roles: what they keep out is recorded as field conflicts.
func (c *Core) refreshMembers(ctx context.Context, tx store.Tx, ch *change, org store.Organization, userIDs []string) error {
	if len(userIDs) == 0 {
		return nil
	}
	rules, err := c.rules(ctx, tx, org.ID)
	if err != nil {
		return err
	}
	slices.Sort(userIDs)
	for _, id := range slices.Compact(userIDs) {
		u, err := tx.UserByID(ctx, org.ID, id)
		if err != nil {
			return err
		}
		groups, err := tx.UserGroups(ctx, u.ID)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(groups))
		for _, g := range groups {
			names = append(names, g.DisplayName)
		}
		actor := ch.p.actor()
		role, source := groupRole(org, rules, names, u)
		names, role, source, conflicts := ownedMembership(org, u, names, role, source, ch.p.decidedBy())
		if len(conflicts) > 0 {
			if err := tx.RecordFieldConflicts(ctx, conflicts...); err != nil {
				return err
			}
		}
		if slices.Equal(names, u.Groups) && role == u.Role {
			continue
		}
		next := u
		next.Groups, next.Role, next.RoleSource = names, role, source
		updated, err := tx.WriteDirectoryUser(ctx, next)
		if err != nil {
			return err
		}
		if !slices.Equal(names, u.Groups) {
			if err := ch.emit(events.TypeUserUpdatedV2, u.ID, events.UserUpdated{User: outbox.UserV2(updated, "", ""), Changed: []string{"groups"}, Actor: &actor}); err != nil {
				return err
			}
		}
		if role != u.Role {
			if err := ch.emit(events.TypeUserRoleChanged, u.ID, events.UserRoleChanged{User: userEvent(updated),
				PreviousRole: u.Role, Actor: actor}); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupRole is the role, and its source, that groups give under the
// organisation's group rules, as a sign-in's groups would: the highest
// role they claim at or below the JIT ceiling, else the default role. A
// role an admin granted (RoleSourceAdmin) is never lowered by a group, but
// a group may raise the person above it (the role is then the IdP's); the
// organisation's admin role is never changed.
func groupRole(org store.Organization, rules directoryRules, groups []string, u store.User) (string, string) {
	ceiling := slices.Index(org.Roles, org.JITRoleCeiling)
	current := slices.Index(org.Roles, u.Role)
	if u.Role == org.AdminRole() || current < 0 || ceiling < 0 {
		return u.Role, u.RoleSource
	}
	best := slices.Index(org.Roles, org.DefaultRole)
	for _, gr := range rules.groupRoles {
		if !slices.ContainsFunc(groups, func(g string) bool { return strings.EqualFold(g, gr.Group) }) {
			continue
		}
		if r := slices.Index(org.Roles, gr.Role); r > best && r <= ceiling {
			best = r
		}
	}
	if best < 0 {
		return u.Role, u.RoleSource
	}
	if u.RoleSource == store.RoleSourceAdmin && best <= current {
		return u.Role, u.RoleSource
	}
	return org.Roles[best], store.RoleSourceIdP
}

// canonical is ids in the stored form of user ids, each once; an id that
// is no UUID is kept as given (no user has it).
func canonical(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			id = u.String()
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
