package provisioner

import (
	"maps"
	"slices"
	"strings"

	"github.com/jitprov/jitprov/events"
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
	Review string // a claimed role above the ceiling, for an admin to review ("" none)
}

// decideRole applies the organisation's role policy to the roles the IdP
// claims. current is the user's role, "" for a new user.
//
//   - A new user gets the highest claimed role at or below the JIT ceiling,
//     or the default role when none is claimed. Claims the organisation
//     does not know are ignored.
//   - A claimed role above the ceiling is never granted: it becomes a
//     review for an admin.
//   - JIT never grants the organisation admin role (the last), and never
//     takes it away either: admins manage admins.
//   - For an existing user under prefer-idp the IdP decides the role when it
//     claims one the organisation knows, so a role lowered at the IdP is
//     lowered now. A login that claims no known role keeps the user's role
//     (most connections map no roles at all). A role above the ceiling
//     (approved by an admin) is kept while the IdP claims it or more.
//   - Under prefer-app an existing user's role is the application's.
func decideRole(org store.Organization, policy store.UpdatePolicy, claimed []string, current string) roleDecision {
	ceiling := roleRank(org, org.JITRoleCeiling)
	highest, highestWithin := -1, -1
	for _, r := range claimed {
		k := roleRank(org, r)
		highest = max(highest, k)
		if k <= ceiling {
			highestWithin = max(highestWithin, k)
		}
	}
	cur := roleRank(org, current)
	var d roleDecision
	switch {
	case current == "" && highestWithin >= 0:
		d.Role = org.Roles[highestWithin]
	case current == "":
		d.Role = org.DefaultRole
	case policy == store.PreferApp, cur == len(org.Roles)-1, highest < 0:
		d.Role = current
	case cur > ceiling && highest >= cur:
		d.Role = current // an admin-approved role the IdP still claims
	case highestWithin >= 0:
		d.Role = org.Roles[highestWithin]
	case cur > ceiling:
		d.Role = org.JITRoleCeiling // claims fell below the approved role
	default:
		d.Role = current // only claims above the ceiling: they go to review
	}
	if highest > ceiling && highest > roleRank(org, d.Role) {
		d.Review = org.Roles[highest]
	}
	return d
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
func mergeProfile(policy store.UpdatePolicy, u store.User, id events.Identity) (store.User, []string) {
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
	if len(groups) > 0 && !slices.Equal(u.Groups, groups) && (policy == store.PreferIdP || len(u.Groups) == 0) {
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
