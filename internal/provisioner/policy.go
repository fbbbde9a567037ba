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
//   - JIT grants the highest claimed role at or below the JIT ceiling, or the
//     default role when nothing of the organisation's is claimed. Claims the
//     organisation does not know are ignored.
//   - A claimed role above the ceiling is never granted: it becomes a review.
//   - For an existing user under prefer-idp the IdP is authoritative: the
//     role follows the claims, so a role removed at the IdP is removed now.
//     A role above the ceiling (granted by an admin) is kept while the IdP
//     still claims it or more.
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
	granted := org.DefaultRole
	if highestWithin >= 0 {
		granted = org.Roles[highestWithin]
	}
	var d roleDecision
	switch {
	case current == "":
		d.Role = granted
	case policy == store.PreferApp:
		d.Role = current
	case roleRank(org, current) > ceiling && highest >= roleRank(org, current):
		d.Role = current
	default:
		d.Role = granted
	}
	if highest > ceiling && highest > roleRank(org, d.Role) {
		d.Review = org.Roles[highest]
	}
	return d
}

// Profile fields a login may change, as named in user.updated's "changed".
const (
	fieldEmail       = "email"
	fieldGivenName   = "given_name"
	fieldFamilyName  = "family_name"
	fieldDisplayName = "display_name"
	fieldGroups      = "groups"
	fieldAttributes  = "attributes"
	fieldRole        = "role"
	fieldIdentity    = "identity"
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
	if org.LinkByEmail != store.LinkVerifiedDomains || !id.EmailVerified {
		return false
	}
	d := emailDomain(id.Email)
	return d != "" && slices.ContainsFunc(org.VerifiedDomains, func(v string) bool { return strings.EqualFold(v, d) })
}
