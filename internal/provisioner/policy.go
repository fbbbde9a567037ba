package provisioner

import (
	"maps"
	"slices"
	"strings"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/store"
)

// roleRank is the position of role in the organisation's ladder, -1 when
// the organisation has no such role.
func roleRank(org store.Organization, role string) int {
	return slices.Index(org.Roles, role)
}

// roleDecision is what JIT may do about a person's role.
type roleDecision struct {
	Role   string // the role to hold after this login
	Source string // where Role comes from: store.RoleSourceIdP or store.RoleSourceAdmin
	Review string // a claimed role above the ceiling, for an admin to review ("" none)
}

// roleClaims is what a login says about a person's role.
type roleClaims struct {
	// Roles are the roles claimed: the login's, and with groups_missing:
	// keep and no groups in the login, those the connection's group rules
	// give for the stored groups.
	Roles []string
	// Says: the login says anything about roles at all. A connection that
	// maps no roles (no roles attribute or claim, no group rules, no
	// constant roles) and a login that carries none say nothing.
	Says bool
}

// decideRole applies the organisation's role policy to the roles a login
// claims. current is the user's role ("" for a new user) and source where
// it came from.
//
//   - A new user gets what the claims give: the highest claimed role at or
//     below the JIT ceiling, or the default role when none is claimed.
//     Claims the organisation does not know are ignored.
//   - A claimed role above the ceiling is never granted: it becomes a
//     review for an admin.
//   - JIT never grants the organisation admin role (the last), and never
//     takes it away either: admins manage admins.
//   - Under prefer-app an existing user's role is the application's.
//   - A login that says nothing about roles keeps the role.
//   - A role from the IdP follows the IdP: it becomes what the claims give,
//     up or down, as for a new user (a group removed at the IdP takes the
//     role it gave away, down to the default role).
//   - A role an admin granted is never taken away by a login; a login may
//     raise the user above it (a claim at or below the ceiling), and the
//     role is then the IdP's.
func decideRole(org store.Organization, policy store.UpdatePolicy, claims roleClaims, current, source string) roleDecision {
	ceiling := roleRank(org, org.JITRoleCeiling)
	highest, highestWithin := -1, -1
	for _, r := range claims.Roles {
		k := roleRank(org, r)
		highest = max(highest, k)
		if k <= ceiling {
			highestWithin = max(highestWithin, k)
		}
	}
	given := org.DefaultRole
	if highestWithin >= 0 {
		given = org.Roles[highestWithin]
	}
	cur := roleRank(org, current)
	d := roleDecision{Role: current, Source: source}
	switch {
	case current == "":
		d.Role, d.Source = given, store.RoleSourceIdP
	case policy == store.PreferApp, cur == len(org.Roles)-1, !claims.Says:
		// the application's, an admin's, or nothing said: kept
	case source == store.RoleSourceAdmin:
		if highestWithin > cur {
			d.Role, d.Source = given, store.RoleSourceIdP
		}
	default:
		d.Role, d.Source = given, store.RoleSourceIdP
	}
	if highest > ceiling && highest > roleRank(org, d.Role) {
		d.Review = org.Roles[highest]
	}
	return d
}

// newClaims is what a new person's first login claims: its roles.
func newClaims(id events.Identity) roleClaims {
	return roleClaims{Roles: id.Roles, Says: true}
}

// groupsRule is what a login does to the stored groups.
type groupsRule int

const (
	groupsFromIdP groupsRule = iota // the IdP sent groups: they are the person's
	groupsKeep                      // none sent, groups_missing: keep: the stored groups stay
	groupsClear                     // none sent, groups_missing: clear: the person is in none
)

// loginClaims reads a returning person's login by its connection's rules:
// what it does to their groups, and what it claims about their role.
// stored are the user's groups before the login.
func loginClaims(rules connection.RoleRules, stored []string, id events.Identity) (groupsRule, roleClaims) {
	claims := roleClaims{Roles: id.Roles, Says: rules.MapsRoles || len(id.Roles) > 0}
	switch {
	case rules.IdPGroups(id.Groups):
		return groupsFromIdP, claims
	case rules.GroupsMissing == connection.GroupsClear:
		return groupsClear, claims
	}
	// The IdP said nothing about groups: the roles the stored groups give
	// stand, as if it had sent them again.
	claims.Roles = append(slices.Clone(id.Roles), rules.GroupClaims(stored)...)
	return groupsKeep, claims
}

// Profile fields a login may change, as named in user.updated's "changed".
const (
	fieldEmail         = "email"
	fieldEmailVerified = "email_verified"
	fieldGivenName     = "given_name"
	fieldFamilyName    = "family_name"
	fieldDisplayName   = "display_name"
	fieldGroups        = "groups"
	fieldAttributes    = "attributes"
	fieldRole          = "role"
	fieldIdentity      = "identity"
)

// mergeProfile applies the update policy to u with the IdP's view id and
// returns the merged user and the names of the fields that changed.
// prefer-idp overwrites every attribute the IdP sends (an attribute it does
// not send is kept); prefer-app only fills attributes that are empty.
//
// Groups follow g: the IdP's groups replace the stored ones under
// prefer-idp (and fill empty ones under prefer-app); with groupsKeep the
// stored groups stay (the connection's constant groups join them); with
// groupsClear they become the login's (the constant groups, or none)
// under prefer-idp.
func mergeProfile(policy store.UpdatePolicy, u store.User, id events.Identity, g groupsRule) (store.User, []string) {
	var changed []string
	str := func(field string, cur *string, idp string) {
		if idp == "" || *cur == idp || (policy == store.PreferApp && *cur != "") {
			return
		}
		*cur = idp
		changed = append(changed, field)
	}
	str(fieldEmail, &u.Email, id.Email)
	// Whether the email is verified is the IdP's word about the email it
	// sent, so it follows that email whatever the update policy.
	if id.Email != "" && strings.EqualFold(u.Email, id.Email) && u.EmailVerified != id.EmailVerified {
		u.EmailVerified = id.EmailVerified
		changed = append(changed, fieldEmailVerified)
	}
	str(fieldGivenName, &u.GivenName, id.GivenName)
	str(fieldFamilyName, &u.FamilyName, id.FamilyName)
	str(fieldDisplayName, &u.DisplayName, id.DisplayName)

	groups := normalize(id.Groups)
	if g == groupsKeep {
		// The login's groups are the connection's constant ones only:
		// they join the stored groups.
		groups = normalize(append(slices.Clone(u.Groups), id.Groups...))
	}
	var replace bool
	switch {
	case slices.Equal(u.Groups, groups):
	case policy == store.PreferApp:
		replace = len(u.Groups) == 0
	default:
		replace = len(groups) > 0 || g == groupsClear
	}
	if replace {
		u.Groups = groups
		changed = append(changed, fieldGroups)
	}
	if len(id.Attributes) > 0 && !maps.EqualFunc(u.Attributes, id.Attributes, slices.Equal) &&
		(policy == store.PreferIdP || len(u.Attributes) == 0) {
		u.Attributes = maps.Clone(id.Attributes)
		changed = append(changed, fieldAttributes)
	}
	return u, changed
}

// normalize sorts and de-duplicates a list of names, so that the same
// groups in another order are not a change.
func normalize(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// emailDomain is the lower-cased domain of an address, "" if it has none.
func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 || at == len(email)-1 {
		return ""
	}
	return strings.ToLower(email[at+1:])
}

// mayLinkByEmail reports whether a login may be linked to an existing user
// found by its email: the organisation's policy allows it, the IdP vouches
// for the email, and the email's domain is verified for the organisation.
func mayLinkByEmail(org store.Organization, id events.Identity) bool {
	return org.LinkByEmail == store.LinkVerifiedDomains && id.EmailVerified && domainVerified(org, id.Email)
}

// domainVerified reports whether the email's domain is one of the
// organisation's verified domains.
func domainVerified(org store.Organization, email string) bool {
	d := emailDomain(email)
	return d != "" && slices.ContainsFunc(org.VerifiedDomains, func(v string) bool { return strings.EqualFold(v, d) })
}

// isInitialAdmin reports whether id is the first sign-in of one of the
// organisation's initial admins: the email is listed (any case) and the
// IdP vouches for it.
func isInitialAdmin(org store.Organization, id events.Identity) bool {
	return id.EmailVerified && id.Email != "" && slices.Contains(org.InitialAdmins, strings.ToLower(id.Email))
}

// ownedProfile is mergeProfile under the organisation's field owners: a
// field without an owner follows the update policy (mergeProfile), one
// owned by the IdP follows the login as prefer-idp does, and one whose
// owner a sign-in may not overrule (scim, app, first-login-only) is kept —
// and, when the login would have changed it, the change is returned as a
// conflict for the admins, rather than dropped silently.
func ownedProfile(org store.Organization, u store.User, id events.Identity, g groupsRule) (store.User, []string, []store.FieldConflict) {
	byPolicy, changed := mergeProfile(org.UpdatePolicy, u, id, g)
	if len(org.FieldOwners) == 0 {
		return byPolicy, changed, nil
	}
	byIdP, _ := mergeProfile(store.PreferIdP, u, id, g)
	out := u
	var conflicts []store.FieldConflict
	overruled := func(field, owner string, rejected, kept []string) {
		conflicts = append(conflicts, store.FieldConflict{OrganizationID: u.OrganizationID, UserID: u.ID, Field: field,
			Source: store.SourceLogin, Rejected: nonNil(rejected), Kept: nonNil(kept), Owner: owner})
	}
	str := func(field string, dst *string, policy, idp, stored string) {
		switch owner := org.FieldOwner(field); {
		case owner == "":
			*dst = policy
		case store.MayChange(owner, store.SourceLogin):
			*dst = idp
		default:
			*dst = stored
			if idp != stored {
				overruled(field, owner, one(idp), one(stored))
			}
		}
	}
	str(store.FieldEmail, &out.Email, byPolicy.Email, byIdP.Email, u.Email)
	// Whether the email is verified is the IdP's word about the email it
	// sent: it follows the email kept, as in mergeProfile.
	if id.Email != "" && strings.EqualFold(out.Email, id.Email) {
		out.EmailVerified = id.EmailVerified
	}
	str(store.FieldGivenName, &out.GivenName, byPolicy.GivenName, byIdP.GivenName, u.GivenName)
	str(store.FieldFamilyName, &out.FamilyName, byPolicy.FamilyName, byIdP.FamilyName, u.FamilyName)
	str(store.FieldDisplayName, &out.DisplayName, byPolicy.DisplayName, byIdP.DisplayName, u.DisplayName)
	switch owner := org.FieldOwner(store.FieldGroups); {
	case owner == "":
		out.Groups = byPolicy.Groups
	case store.MayChange(owner, store.SourceLogin):
		out.Groups = byIdP.Groups
	default:
		if !slices.Equal(byIdP.Groups, u.Groups) {
			overruled(store.FieldGroups, owner, byIdP.Groups, u.Groups)
		}
	}
	out.Attributes = byPolicy.Attributes
	if org.OwnsAttributes() {
		var ac []store.FieldConflict
		out.Attributes, ac = ownedAttributes(org, u, id)
		conflicts = append(conflicts, ac...)
	}
	return out, profileChanges(u, out), conflicts
}

// ownedAttributes merges the login's custom attributes into u's when some
// have an owner: the attributes without one follow the update policy
// among themselves, as mergeProfile does with all of them; each owned one
// the login carries is changed when its owner lets a sign-in change it,
// and is a conflict otherwise. An owned attribute the login does not
// carry is kept.
func ownedAttributes(org store.Organization, u store.User, id events.Identity) (map[string][]string, []store.FieldConflict) {
	owned := func(k string) string { return org.FieldOwner(store.AttributeField(k)) }
	out := maps.Clone(u.Attributes)
	if out == nil {
		out = map[string][]string{}
	}
	storedFree, loginFree := map[string][]string{}, map[string][]string{}
	for k, v := range u.Attributes {
		if owned(k) == "" {
			storedFree[k] = v
		}
	}
	for k, v := range id.Attributes {
		if owned(k) == "" {
			loginFree[k] = v
		}
	}
	if len(loginFree) > 0 && !maps.EqualFunc(storedFree, loginFree, slices.Equal) &&
		(org.UpdatePolicy != store.PreferApp || len(storedFree) == 0) {
		for k := range storedFree {
			delete(out, k)
		}
		maps.Copy(out, loginFree)
	}
	var conflicts []store.FieldConflict
	for _, k := range slices.Sorted(maps.Keys(id.Attributes)) {
		owner, v := owned(k), id.Attributes[k]
		switch {
		case owner == "", slices.Equal(u.Attributes[k], v):
		case store.MayChange(owner, store.SourceLogin):
			out[k] = slices.Clone(v)
		default:
			conflicts = append(conflicts, store.FieldConflict{OrganizationID: u.OrganizationID, UserID: u.ID,
				Field: store.AttributeField(k), Source: store.SourceLogin, Rejected: nonNil(slices.Clone(v)),
				Kept: nonNil(slices.Clone(u.Attributes[k])), Owner: owner})
		}
	}
	if len(out) == 0 && len(u.Attributes) == 0 {
		out = u.Attributes
	}
	return out, conflicts
}

// profileChanges names the profile fields of b that differ from a, in
// mergeProfile's order, as user.updated names them.
func profileChanges(a, b store.User) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add(fieldEmail, a.Email == b.Email)
	add(fieldEmailVerified, a.EmailVerified == b.EmailVerified)
	add(fieldGivenName, a.GivenName == b.GivenName)
	add(fieldFamilyName, a.FamilyName == b.FamilyName)
	add(fieldDisplayName, a.DisplayName == b.DisplayName)
	add(fieldGroups, slices.Equal(a.Groups, b.Groups))
	add(fieldAttributes, maps.EqualFunc(a.Attributes, b.Attributes, slices.Equal))
	return out
}

// ownedRole is decideRole under the role's owner: none follows the update
// policy, the IdP makes the claims decide as under prefer-idp, and an
// owner a sign-in may not overrule keeps the role (as prefer-app does,
// reviews included), the role the claims would have given being a
// conflict.
func ownedRole(org store.Organization, claims roleClaims, u store.User) (roleDecision, *store.FieldConflict) {
	switch owner := org.FieldOwner(store.FieldRole); {
	case owner == "":
		return decideRole(org, org.UpdatePolicy, claims, u.Role, u.RoleSource), nil
	case store.MayChange(owner, store.SourceLogin):
		return decideRole(org, store.PreferIdP, claims, u.Role, u.RoleSource), nil
	default:
		kept := decideRole(org, store.PreferApp, claims, u.Role, u.RoleSource)
		if wanted := decideRole(org, store.PreferIdP, claims, u.Role, u.RoleSource); wanted.Role != u.Role {
			return kept, &store.FieldConflict{OrganizationID: u.OrganizationID, UserID: u.ID, Field: store.FieldRole,
				Source: store.SourceLogin, Rejected: []string{wanted.Role}, Kept: []string{u.Role}, Owner: owner}
		}
		return kept, nil
	}
}

// one is a single value as a conflict holds it: none for "".
func one(v string) []string {
	if v == "" {
		return []string{}
	}
	return []string{v}
}
