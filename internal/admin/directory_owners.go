package admin

import (
	"slices"

	"github.com/jitprov/jitprov/internal/store"
)

// What the organisation's field owners let SCIM change. SCIM may change a
// field without an owner, or one the IdP or SCIM owns; a field the
// application owns, or that is set only at the first login, is kept, and
// the change SCIM wanted is recorded as a field conflict for the admins.

// ownedByOthers keeps in next the profile fields SCIM may not change,
// as u has them, and returns the changes it kept out.
func ownedByOthers(org store.Organization, u, next store.User, actor string) (store.User, []store.FieldConflict) {
	if len(org.FieldOwners) == 0 {
		return next, nil
	}
	var conflicts []store.FieldConflict
	keep := func(field string, rejected, kept []string) bool {
		owner := org.FieldOwner(field)
		if store.MayChange(owner, store.SourceSCIM) || slices.Equal(rejected, kept) {
			return false
		}
		conflicts = append(conflicts, scimConflict(u, field, owner, actor, rejected, kept))
		return true
	}
	str := func(field string, dst *string, stored string) {
		if keep(field, one(*dst), one(stored)) {
			*dst = stored
		}
	}
	str(store.FieldEmail, &next.Email, u.Email)
	if next.Email == u.Email {
		next.EmailVerified = u.EmailVerified
	}
	str(store.FieldGivenName, &next.GivenName, u.GivenName)
	str(store.FieldFamilyName, &next.FamilyName, u.FamilyName)
	str(store.FieldDisplayName, &next.DisplayName, u.DisplayName)
	for _, k := range DirectoryAttributes {
		if keep(store.AttributeField(k), next.Attributes[k], u.Attributes[k]) {
			if v, ok := u.Attributes[k]; ok {
				next.Attributes[k] = v
			} else {
				delete(next.Attributes, k)
			}
		}
	}
	return next, conflicts
}

// ownedMembership is the groups and role a membership change gives u
// under the organisation's field owners: groups and role SCIM may not
// change are kept, and the change is returned as a conflict.
func ownedMembership(org store.Organization, u store.User, groups []string, role, source, actor string) ([]string, string, string, []store.FieldConflict) {
	var conflicts []store.FieldConflict
	if owner := org.FieldOwner(store.FieldGroups); !store.MayChange(owner, store.SourceSCIM) {
		if !slices.Equal(groups, u.Groups) {
			conflicts = append(conflicts, scimConflict(u, store.FieldGroups, owner, actor, groups, u.Groups))
		}
		groups = u.Groups
	}
	if owner := org.FieldOwner(store.FieldRole); !store.MayChange(owner, store.SourceSCIM) {
		if role != u.Role {
			conflicts = append(conflicts, scimConflict(u, store.FieldRole, owner, actor, []string{role}, []string{u.Role}))
		}
		role, source = u.Role, u.RoleSource
	}
	return groups, role, source, conflicts
}

func scimConflict(u store.User, field, owner, actor string, rejected, kept []string) store.FieldConflict {
	return store.FieldConflict{OrganizationID: u.OrganizationID, UserID: u.ID, Field: field, Source: store.SourceSCIM,
		Rejected: nonNilList(rejected), Kept: nonNilList(kept), Owner: owner, Actor: actor}
}

// one is a single value as a conflict holds it: none for "".
func one(v string) []string {
	if v == "" {
		return []string{}
	}
	return []string{v}
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
