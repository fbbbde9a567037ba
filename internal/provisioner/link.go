package provisioner

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// link is how a login's identity joins an existing user found by its email.
// The zero link adds nothing: the user has the identity already.
type link struct {
	by       string // store.LinkedByEmail or store.LinkedByReplaces
	replaced string // with LinkedByReplaces: the connection replaced
	reason   events.Reason
}

// linkRule decides whether the identity of login id, through connection
// conn, may be linked to user, found by id's email, who has the identities
// ids (none of them id's). It returns the link, or a refusal for the
// admin (the decision's message) with its reason.
//
// The rules, in order:
//
//  1. A user already signing in through conn as another identity is not
//     linked: two identities of one IdP for one person mean a changed
//     setting (NameID format, sp_entity_id, external_id attribute) or two
//     people sharing an email. identity_conflict; an admin moves it.
//  2. A user whose role is above the JIT ceiling (or not one of the
//     organisation's roles) is never linked by email: that would hand an
//     admin's account to whoever the IdP says owns the email. email_in_use;
//     an admin links it.
//  3. A user who signs in through an IdP that never vouched for the user's
//     email is not linked by it: the address may have been taken by
//     someone who does not own it, to catch its owner's login.
//     email_in_use. (A user with no identity yet has the email an admin or
//     the application gave it.)
//  4. A connection that replaces another (replaces: <old>) links to a user
//     who has an identity through the old connection when the new IdP
//     vouches for the email and its domain is verified for the
//     organisation, whatever link_by_email says: the admin who wrote
//     replaces vouched for the move. The old identity stays.
//  5. Otherwise the organisation's policy decides: link_by_email
//     verified-domains, an IdP-verified email, and its domain verified for
//     the organisation.
func linkRule(org store.Organization, conn store.Connection, user store.User, ids []store.Identity, id events.Identity) (link, string) {
	if i := slices.IndexFunc(ids, func(i store.Identity) bool { return i.ConnectionID == id.ConnectionID }); i >= 0 {
		return link{reason: events.ReasonIdentityConflict}, fmt.Sprintf(
			"the email belongs to user %s, who already signs in through connection %q as another identity (external id %q, this login %q); "+
				"a changed external id usually means a changed IdP setting (NameID format, sp_entity_id or the external_id attribute), "+
				"else two people share the email; an admin must move or link the identity",
			user.ID, id.ConnectionID, ids[i].ExternalID, id.ExternalID)
	}
	if rank := roleRank(org, user.Role); rank < 0 || rank > roleRank(org, org.JITRoleCeiling) {
		return link{reason: events.ReasonEmailInUse}, fmt.Sprintf(
			"the email belongs to existing user %s whose role %q is above the JIT ceiling %q (or no longer one of the organisation's roles); "+
				"linking would hand that role to an IdP identity, so an admin must link it", user.ID, user.Role, org.JITRoleCeiling)
	}
	if !user.EmailVerified && len(ids) > 0 {
		// The address came from an IdP that did not vouch for it: whoever
		// signed in with it may not own it, and linking its owner's login
		// onto that account would hand the account over.
		return link{reason: events.ReasonEmailInUse}, fmt.Sprintf(
			"the email belongs to existing user %s (who signs in through %s), but their IdP never vouched for it: it may not be theirs, "+
				"so the two are not linked by email; an admin must check and link them", user.ID, identityConnections(ids))
	}
	if conn.Replaces != "" && slices.ContainsFunc(ids, func(i store.Identity) bool { return i.ConnectionID == conn.Replaces }) {
		if id.EmailVerified && domainVerified(org, id.Email) {
			return link{by: store.LinkedByReplaces, replaced: conn.Replaces}, ""
		}
		return link{reason: events.ReasonEmailInUse}, fmt.Sprintf(
			"the email belongs to user %s of connection %q, which connection %q replaces, but the IdP does not vouch for the email "+
				"(OIDC email_verified false, or a SAML connection without email_verified: true) or its domain %q is not one of the organisation's verified_domains, "+
				"so it cannot prove the person is the same (email verified %t)",
			user.ID, conn.Replaces, id.ConnectionID, emailDomain(id.Email), id.EmailVerified)
	}
	if mayLinkByEmail(org, id) {
		return link{by: store.LinkedByEmail}, ""
	}
	return link{reason: events.ReasonEmailInUse}, fmt.Sprintf(
		"the email belongs to existing user %s (who signs in through %s); linking requires link_by_email: verified-domains, "+
			"an IdP-verified email and a verified domain (policy %q, email verified %t, domain %q), or a connection that replaces theirs",
		user.ID, identityConnections(ids), org.LinkByEmail, id.EmailVerified, emailDomain(id.Email))
}

// identityConnections names the connections of a user's identities.
func identityConnections(ids []store.Identity) string {
	if len(ids) == 0 {
		return "no connection yet"
	}
	var names []string
	for _, i := range ids {
		if !slices.Contains(names, i.ConnectionID) {
			names = append(names, i.ConnectionID)
		}
	}
	return "connection " + strings.Join(names, ", ")
}

// otherConnections lists the ids of conns but except.
func otherConnections(conns []store.Connection, except string) string {
	var names []string
	for _, c := range conns {
		if c.ID != except {
			names = append(names, c.ID)
		}
	}
	return strings.Join(names, ", ")
}
