package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/outbox"
	"github.com/jitprov/jitprov/internal/store"
)

// The directory: what a provisioning client (a SCIM client such as Okta's
// or Entra ID's) does to an organisation's people and groups. Each change
// is one transaction with its events and an audit row, as every admin
// action; seats follow status exactly as they do for an admin's
// deprovisioning and reactivation. internal/scim speaks the protocol.

// DirectoryAttributes are the user attributes a SCIM client owns (the
// enterprise extension's); the user's other attributes (a login's mapped
// ones) are left as they are.
var DirectoryAttributes = []string{"department", "manager", "employeeNumber"}

// Person is a user as a SCIM client writes it: the whole of it (a PATCH is
// applied to the Person read before it is written).
type Person struct {
	UserName    string
	ExternalID  string
	Email       string
	GivenName   string
	FamilyName  string
	DisplayName string
	Active      bool
	// Attributes holds DirectoryAttributes only.
	Attributes map[string]string
}

// DirectoryUser is a user as a SCIM client sees them.
type DirectoryUser struct {
	User   store.User
	Groups []store.Group
}

// UserName is the user's SCIM userName: the one a SCIM client set, else
// the email.
func (d DirectoryUser) UserName() string {
	if d.User.SCIM.UserName != "" {
		return d.User.SCIM.UserName
	}
	return d.User.Email
}

// Version is the user's entity tag, which changes with every write.
func (d DirectoryUser) Version() string { return version(d.User.UpdatedAt.UnixMicro()) }

func version(us int64) string { return `W/"` + strconv.FormatInt(us, 36) + `"` }

// Person is the user as a SCIM client would write it back unchanged.
func (d DirectoryUser) Person() Person {
	u := d.User
	p := Person{UserName: d.UserName(), ExternalID: u.SCIM.ExternalID, Email: u.Email, GivenName: u.GivenName,
		FamilyName: u.FamilyName, DisplayName: u.DisplayName, Active: u.Status == store.StatusActive,
		Attributes: map[string]string{}}
	for _, k := range DirectoryAttributes {
		if v := u.Attributes[k]; len(v) > 0 {
			p.Attributes[k] = v[0]
		}
	}
	return p
}

// ErrPrecondition: the user changed since the version the request names
// (a SCIM If-Match, or a PATCH racing another write): read it again.
var ErrPrecondition = errors.New("admin: the resource changed meanwhile")

// maxDirectoryValue bounds a SCIM string value (names, ids, attributes).
const maxDirectoryValue = 1024

func (in Person) check() error {
	if strings.TrimSpace(in.UserName) == "" {
		return invalid("userName", "required: the person's unique name at the IdP, e.g. their sign-in email")
	}
	for f, v := range map[string]string{"userName": in.UserName, "externalId": in.ExternalID, "emails": in.Email,
		"name.givenName": in.GivenName, "name.familyName": in.FamilyName, "displayName": in.DisplayName} {
		if len(v) > maxDirectoryValue {
			return invalid(f, "%d bytes is more than %d", len(v), maxDirectoryValue)
		}
		if strings.ContainsRune(v, 0) {
			return invalid(f, "contains a NUL character")
		}
	}
	if in.Email != "" && !strings.Contains(in.Email, "@") {
		return invalid("emails", "%q is not an email address", in.Email)
	}
	for k, v := range in.Attributes {
		if !slices.Contains(DirectoryAttributes, k) {
			return invalid(k, "not an attribute SCIM writes (%s)", strings.Join(DirectoryAttributes, ", "))
		}
		if len(v) > maxDirectoryValue {
			return invalid(k, "%d bytes is more than %d", len(v), maxDirectoryValue)
		}
		if strings.ContainsRune(v, 0) {
			return invalid(k, "contains a NUL character")
		}
	}
	return nil
}

// directoryRules is what an organisation's connections say to SCIM: which
// identity a SCIM user is known by through each connection, and the group
// rules that turn SCIM groups into roles.
type directoryRules struct {
	identities map[string]string // connection id → connection.SCIMUserName or SCIMExternalID
	groupRoles []connection.GroupRole
}

func (c *Core) rules(ctx context.Context, tx store.Tx, orgID string) (directoryRules, error) {
	conns, err := tx.Connections(ctx, orgID)
	if err != nil {
		return directoryRules{}, err
	}
	r := directoryRules{identities: map[string]string{}}
	for _, conn := range conns {
		ident, groupRoles, err := connection.SCIMIdentityOf(conn.Protocol, conn.Settings)
		if err != nil {
			// A connection whose settings do not decode serves no login
			// either; SCIM goes on without it.
			c.log.WarnContext(ctx, "SCIM skips a connection whose settings do not decode", "organization", orgID,
				"connection", conn.ID, "error", err)
			continue
		}
		if ident != "" {
			r.identities[conn.ID] = ident
		}
		r.groupRoles = append(r.groupRoles, groupRoles...)
	}
	return r, nil
}

// identityValue is the external id of in through a connection whose
// scim_identity is ident ("" when in has none).
func identityValue(ident string, in Person) string {
	if ident == connection.SCIMExternalID {
		return in.ExternalID
	}
	return in.UserName
}

// directoryUser reads u's groups.
func directoryUser(ctx context.Context, tx store.Tx, u store.User) (DirectoryUser, error) {
	groups, err := tx.UserGroups(ctx, u.ID)
	return DirectoryUser{User: u, Groups: groups}, err
}

// DirectoryUser reads a user SCIM sees.
func (c *Core) DirectoryUser(ctx context.Context, p Principal, orgID, userID string) (DirectoryUser, error) {
	var out DirectoryUser
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		users, err := tx.DirectoryUsers(ctx, org.ID, store.DirectoryKey{Attr: store.DirectoryByID, Value: userID})
		if err != nil {
			return err
		}
		if len(users) == 0 {
			return fmt.Errorf("%w: user %s", ErrNotFound, userID)
		}
		out, err = directoryUser(ctx, tx, users[0])
		return err
	})
	return out, err
}

// FindDirectoryUsers finds the users SCIM sees whose attr (a
// store.DirectoryBy* key) equals value. A userName or externalId is also
// found as the identity it is through a connection with scim_identity, so
// that a person JIT created is found by the name the IdP knows them by.
func (c *Core) FindDirectoryUsers(ctx context.Context, p Principal, orgID, attr, value string) ([]DirectoryUser, error) {
	var out []DirectoryUser
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		keys := []store.DirectoryKey{{Attr: attr, Value: value}}
		if attr == store.DirectoryByUserName || attr == store.DirectoryByExternalID {
			rules, err := c.rules(ctx, tx, org.ID)
			if err != nil {
				return err
			}
			for _, conn := range slices.Sorted(maps.Keys(rules.identities)) {
				if rules.identities[conn] == attr {
					keys = append(keys, store.DirectoryKey{Attr: store.DirectoryByIdentity, Value: value, Connection: conn})
				}
			}
		}
		seen := map[string]bool{}
		for _, k := range keys {
			users, err := tx.DirectoryUsers(ctx, org.ID, k)
			if err != nil {
				return err
			}
			for _, u := range users {
				if seen[u.ID] {
					continue
				}
				seen[u.ID] = true
				du, err := directoryUser(ctx, tx, u)
				if err != nil {
					return err
				}
				out = append(out, du)
			}
		}
		return nil
	})
	return out, err
}

// DirectoryUsers is a page of the users SCIM sees, oldest first, from
// offset (0-based), and how many there are.
func (c *Core) DirectoryUsers(ctx context.Context, p Principal, orgID string, offset, limit int) ([]DirectoryUser, int, error) {
	var out []DirectoryUser
	var total int
	err := c.inTx(ctx, p.directory(), orgID, false, func(tx store.Tx, org store.Organization) error {
		users, n, err := tx.DirectoryPage(ctx, org.ID, offset, limit)
		if err != nil {
			return err
		}
		total = n
		for _, u := range users {
			du, err := directoryUser(ctx, tx, u)
			if err != nil {
				return err
			}
			out = append(out, du)
		}
		return nil
	})
	return out, total, err
}

// CreateDirectoryUser is a SCIM client's POST of a person. A person the
// directory does not know yet is created (active people take a seat:
// ErrNoSeat when none is free) and linked to their identity through every
// connection with scim_identity, so that their first sign-in finds them. A
// person JIT or an admin created, found by userName, externalId, email or
// that identity, is adopted instead: SCIM manages them from now on. A
// person SCIM already manages is a conflict (RFC 7644: userName is
// unique), as is a sign-up held for an admin.
func (c *Core) CreateDirectoryUser(ctx context.Context, p Principal, orgID string, in Person) (DirectoryUser, bool, error) {
	if err := in.check(); err != nil {
		return DirectoryUser{}, false, err
	}
	var out DirectoryUser
	var created bool
	err := c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		rules, err := c.rules(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		existing, err := c.match(ctx, tx, org.ID, rules, in)
		if err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if existing != nil {
			u := *existing
			switch {
			case u.Status == store.StatusHeld:
				return fmt.Errorf("%w: %s signed up and waits for an admin's approval (user %s); approve or deny the sign-up first",
					ErrConflict, in.UserName, u.ID)
			case u.SCIM.Managed && !u.SCIM.Deleted:
				return fmt.Errorf("%w: %w: user %s has userName %q already", ErrConflict, errUniqueness, u.ID, u.SCIM.UserName)
			}
			if err := c.mayManage(ctx, tx, org, rules, u, in); err != nil {
				return err
			}
			out, _, err = c.writePerson(ctx, tx, ch, org, rules, u, in)
			if err != nil {
				return err
			}
			return ch.commit(tx, "scim.user.adopt", u.ID, ch.details(map[string]any{"user_name": in.UserName}))
		}
		out, err = c.createPerson(ctx, tx, ch, org, rules, in)
		if err != nil {
			return err
		}
		created = true
		return ch.commit(tx, "scim.user.create", out.User.ID, ch.details(map[string]any{"user_name": in.UserName}))
	})
	return out, created, err
}

// errUniqueness marks a conflict on a unique SCIM attribute (SCIM's
// scimType uniqueness).
var errUniqueness = errors.New("uniqueness")

// IsUniqueness reports whether err is a conflict on a unique attribute.
func IsUniqueness(err error) bool { return errors.Is(err, errUniqueness) }

// match finds the one user in is, SCIM-deleted ones included: by SCIM
// userName (or email), externalId, email and the identity through each
// connection with scim_identity. Two different users are a conflict.
func (c *Core) match(ctx context.Context, tx store.Tx, orgID string, rules directoryRules, in Person) (*store.User, error) {
	keys := []store.DirectoryKey{{Attr: store.DirectoryByUserName, Value: in.UserName, All: true}}
	if in.ExternalID != "" {
		keys = append(keys, store.DirectoryKey{Attr: store.DirectoryByExternalID, Value: in.ExternalID, All: true})
	}
	if in.Email != "" {
		keys = append(keys, store.DirectoryKey{Attr: store.DirectoryByEmail, Value: in.Email, All: true})
	}
	for _, conn := range slices.Sorted(maps.Keys(rules.identities)) {
		if v := identityValue(rules.identities[conn], in); v != "" {
			keys = append(keys, store.DirectoryKey{Attr: store.DirectoryByIdentity, Value: v, Connection: conn, All: true})
		}
	}
	var live, deleted []store.User
	seen := map[string]bool{}
	for _, k := range keys {
		users, err := tx.DirectoryUsers(ctx, orgID, k)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if seen[u.ID] {
				continue
			}
			seen[u.ID] = true
			if u.SCIM.Deleted {
				deleted = append(deleted, u)
			} else {
				live = append(live, u)
			}
		}
	}
	switch {
	case len(live) > 1:
		return nil, fmt.Errorf("%w: %w: userName %q, externalId %q and email %q name different people (users %s and %s)",
			ErrConflict, errUniqueness, in.UserName, in.ExternalID, in.Email, live[0].ID, live[1].ID)
	case len(live) == 1:
		return &live[0], nil
	case len(deleted) > 0:
		// A person SCIM deleted comes back: the same record, not another.
		return &deleted[0], nil
	}
	return nil, nil
}

// protected reports whether u's account is one SCIM never links an
// identity to: a role above the JIT ceiling (the organisation's admin
// role among them), which an admin granted — as JIT never links onto such
// an account by email, an admin links it.
func protected(org store.Organization, u store.User) bool {
	rank, ceiling := slices.Index(org.Roles, u.Role), slices.Index(org.Roles, org.JITRoleCeiling)
	return u.Role == org.AdminRole() || rank < 0 || rank > ceiling
}

// mayManage checks that SCIM may take over u, a person it does not manage
// yet (JIT, an admin or the application created them), for in: when the
// IdP already signs them in under the name in gives (an identity through a
// connection with scim_identity), or when jitprov's own link rules would
// link a sign-in to them by email — link_by_email: verified-domains, an
// email the IdP vouched for in a verified domain, equal to in's, and a
// role at or below the JIT ceiling. Anyone else is an admin's to link:
// SCIM's token is the IdP's, and must not reach accounts that sign in
// through other IdPs or that an admin raised.
func (c *Core) mayManage(ctx context.Context, tx store.Tx, org store.Organization, rules directoryRules, u store.User, in Person) error {
	if u.SCIM.Managed || u.CreatedBy == store.CreatedBySCIM {
		return nil
	}
	ids, err := tx.Identities(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if ident, ok := rules.identities[id.ConnectionID]; ok && id.ExternalID == identityValue(ident, in) {
			return nil
		}
	}
	byEmail := org.LinkByEmail == store.LinkVerifiedDomains && u.EmailVerified && in.Email != "" &&
		strings.EqualFold(u.Email, in.Email) && emailDomainVerified(org, u.Email)
	if byEmail && !protected(org, u) {
		return nil
	}
	return fmt.Errorf("%w: %w: user %s has this email or userName, and SCIM may not take them over: they do not sign in through "+
		"the IdP under this name, and jitprov's link rules (link_by_email: verified-domains, a verified domain, a role at or below "+
		"jit_role_ceiling) do not link them by email; an admin links the identity (jitprov users link)", ErrConflict, errUniqueness, u.ID)
}

// emailDomainVerified reports whether email's domain is one of the
// organisation's verified domains.
func emailDomainVerified(org store.Organization, email string) bool {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false
	}
	return slices.ContainsFunc(org.VerifiedDomains, func(d string) bool { return strings.EqualFold(d, email[at+1:]) })
}

func (c *Core) createPerson(ctx context.Context, tx store.Tx, ch *change, org store.Organization, rules directoryRules, in Person) (DirectoryUser, error) {
	status := store.StatusDeprovisioned
	if in.Active {
		status = store.StatusActive
	}
	u := applyPerson(store.User{ID: uuid.NewString(), OrganizationID: org.ID, Role: org.DefaultRole, Status: status,
		CreatedBy: store.CreatedBySCIM}, in)
	u.SCIM = store.SCIMUser{UserName: in.UserName, ExternalID: in.ExternalID, Managed: true}
	u, err := tx.CreateDirectoryUser(ctx, u)
	if err != nil {
		return DirectoryUser{}, uniqueness(err)
	}
	conn, ext, err := c.linkIdentities(ctx, tx, ch, org, rules, u, in, false)
	if err != nil {
		return DirectoryUser{}, err
	}
	actor := p2actor(ch.p)
	if err := ch.emit(events.TypeUserCreatedV2, u.ID, events.UserCreated{User: outbox.UserV2(u, conn, ext), Actor: &actor}); err != nil {
		return DirectoryUser{}, err
	}
	// The seat last, right before the commit: the organisation's row is
	// locked for as short a time as can be.
	if status == store.StatusActive {
		if _, err := tx.TakeSeat(ctx, org.ID); err != nil {
			return DirectoryUser{}, err
		}
	}
	return DirectoryUser{User: u}, nil
}

// linkIdentities links u to its identity through every connection with
// scim_identity, so that their sign-in finds them; it returns the first it
// linked, for the events. A protected account gets none (an admin links
// it). An identity of u through such a connection under another name (the
// IdP renamed them) is unlinked and replaced. With announce, each link and
// unlink is announced (user.identity-linked with linked_by admin, as v1
// has no scim; user.identity-unlinked); a new user's link is in its
// user.created. Only for people SCIM may manage (mayManage).
func (c *Core) linkIdentities(ctx context.Context, tx store.Tx, ch *change, org store.Organization, rules directoryRules, u store.User, in Person, announce bool) (conn, ext string, err error) {
	if protected(org, u) {
		return "", "", nil
	}
	var have []store.Identity
	if announce {
		if have, err = tx.Identities(ctx, u.ID); err != nil {
			return "", "", err
		}
	}
	for _, cid := range slices.Sorted(maps.Keys(rules.identities)) {
		v := identityValue(rules.identities[cid], in)
		if v == "" {
			continue
		}
		owner, err := tx.UserByIdentity(ctx, org.ID, cid, v)
		switch {
		case err == nil && owner.ID != u.ID:
			return "", "", fmt.Errorf("%w: %w: the identity %q through connection %q is user %s's", ErrConflict, errUniqueness, v, cid, owner.ID)
		case err == nil:
			continue
		case !errors.Is(err, store.ErrNotFound):
			return "", "", err
		}
		for _, id := range have {
			if id.ConnectionID != cid {
				continue
			}
			// The IdP renamed them (userName or externalId): their identity
			// through its connection moves to the new name, and the old
			// name signs nobody in (the IdP may give it to someone else).
			if _, err := tx.UnlinkIdentity(ctx, org.ID, cid, id.ExternalID); err != nil {
				return "", "", err
			}
			if err := ch.emit(events.TypeUserIdentityUnlinked, u.ID, events.IdentityUnlinked{User: userEvent(u),
				Identity: events.LinkedIdentity{ConnectionID: cid, ExternalID: id.ExternalID}, Actor: ch.p.actor()}); err != nil {
				return "", "", err
			}
			ch.detail("unlinked", cid+"/"+id.ExternalID)
		}
		if _, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: org.ID, ConnectionID: cid, ExternalID: v, UserID: u.ID,
			LinkedBy: store.LinkedBySCIM}); err != nil {
			return "", "", err
		}
		if announce {
			if err := ch.emit(events.TypeUserIdentityLinked, u.ID, events.IdentityLinked{User: userEvent(u),
				Identity: events.LinkedIdentity{ConnectionID: cid, ExternalID: v}, LinkedBy: events.LinkedByAdmin}); err != nil {
				return "", "", err
			}
		}
		ch.detail("linked", cid+"/"+v)
		if conn == "" {
			conn, ext = cid, v
		}
	}
	return conn, ext, nil
}

// applyPerson writes in's profile onto u.
func applyPerson(u store.User, in Person) store.User {
	u.Email, u.EmailVerified = in.Email, in.Email != ""
	u.GivenName, u.FamilyName, u.DisplayName = in.GivenName, in.FamilyName, in.DisplayName
	attrs := maps.Clone(u.Attributes)
	if attrs == nil {
		attrs = map[string][]string{}
	}
	for _, k := range DirectoryAttributes {
		if v := in.Attributes[k]; v != "" {
			attrs[k] = []string{v}
		} else {
			delete(attrs, k)
		}
	}
	u.Attributes = attrs
	return u
}

// changedFields names the profile fields that differ, as user.updated
// names them.
func changedFields(a, b store.User) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("email", strings.EqualFold(a.Email, b.Email) && a.Email == b.Email)
	add("email_verified", a.EmailVerified == b.EmailVerified)
	add("given_name", a.GivenName == b.GivenName)
	add("family_name", a.FamilyName == b.FamilyName)
	add("display_name", a.DisplayName == b.DisplayName)
	add("groups", slices.Equal(a.Groups, b.Groups))
	add("attributes", maps.EqualFunc(a.Attributes, b.Attributes, slices.Equal))
	return out
}

// writePerson makes u what in says: profile — the fields the
// organisation's field owners let SCIM change; what they keep out is
// recorded as field conflicts — SCIM fields (SCIM manages u from now on)
// and status, with the events of each change.
func (c *Core) writePerson(ctx context.Context, tx store.Tx, ch *change, org store.Organization, rules directoryRules, u store.User, in Person) (DirectoryUser, bool, error) {
	next, conflicts := ownedByOthers(org, u, applyPerson(u, in), ch.p.decidedBy())
	if len(conflicts) > 0 {
		// What the fields' owners kept SCIM from changing, for the
		// admins, in this transaction.
		if err := tx.RecordFieldConflicts(ctx, conflicts...); err != nil {
			return DirectoryUser{}, false, err
		}
	}
	next.SCIM = store.SCIMUser{UserName: in.UserName, ExternalID: in.ExternalID, Managed: true, Deactivated: u.SCIM.Deactivated}
	changed := changedFields(u, next)
	written := u
	wrote := len(changed) > 0 || next.SCIM != u.SCIM
	if wrote {
		var err error
		if written, err = tx.WriteDirectoryUser(ctx, next); err != nil {
			return DirectoryUser{}, false, uniqueness(err)
		}
	}
	linked, _, err := c.linkIdentities(ctx, tx, ch, org, rules, written, in, true)
	if err != nil {
		return DirectoryUser{}, false, err
	}
	if len(changed) > 0 {
		actor := p2actor(ch.p)
		if err := ch.emit(events.TypeUserUpdatedV2, u.ID, events.UserUpdated{User: outbox.UserV2(written, "", ""), Changed: changed, Actor: &actor}); err != nil {
			return DirectoryUser{}, false, err
		}
	}
	before := written.Status
	if written, err = c.directoryStatus(ctx, tx, ch, org, written, in.Active); err != nil {
		return DirectoryUser{}, false, err
	}
	du, err := directoryUser(ctx, tx, written)
	return du, wrote || linked != "" || written.Status != before, err
}

// directoryStatus follows SCIM's active. false deprovisions an active
// person (their seat freed at once) or one suspended for inactivity (who
// holds none); a person an admin suspended stays suspended. true brings
// back a person SCIM deprovisioned (taking a seat: ErrNoSeat when none is
// free) or one suspended for inactivity; a person an admin deprovisioned,
// or whose sign-up an admin denied, stays out (ErrConflict): only an admin
// brings them back, and SCIM's active does not lift an admin's
// suspension.
func (c *Core) directoryStatus(ctx context.Context, tx store.Tx, ch *change, org store.Organization, u store.User, active bool) (store.User, error) {
	inactive := u.Status == store.StatusSuspended && u.SuspendedReason == store.SuspendedInactive
	var sc statusChange
	switch {
	case !active && (u.Status == store.StatusActive || inactive):
		sc = deprovision
		if u.Status == store.StatusActive {
			if _, err := tx.ReleaseSeat(ctx, org.ID); err != nil {
				return u, err
			}
		}
	case active && u.Status == store.StatusDeprovisioned && !u.SCIM.Deactivated:
		return u, fmt.Errorf("%w: an admin deprovisioned user %s (or denied their sign-up): only an admin brings them back", ErrConflict, u.ID)
	case active && (u.Status == store.StatusDeprovisioned || inactive):
		sc = reactivate
		if _, err := tx.TakeSeat(ctx, org.ID); err != nil {
			return u, err
		}
	default:
		return u, nil
	}
	updated, err := tx.SetUserStatus(ctx, org.ID, u.ID, sc.to)
	if err != nil {
		return u, err
	}
	if sc.to == store.StatusDeprovisioned {
		// SetUserStatus cleared it (an admin's change does): SCIM's own.
		updated.SCIM.Deactivated = true
		if updated, err = tx.WriteDirectoryUser(ctx, updated); err != nil {
			return u, err
		}
	}
	if err := ch.emit(sc.event, u.ID, events.UserStatusChanged{User: userEvent(updated), PreviousStatus: u.Status,
		Actor: ch.p.actor(), Reason: "SCIM active: " + strconv.FormatBool(active)}); err != nil {
		return u, err
	}
	ch.detail("status", sc.to)
	return updated, nil
}

// ReplaceDirectoryUser is a SCIM client's PUT of a user SCIM sees.
// ifVersion, when set, must be the user's Version (ErrPrecondition
// otherwise).
func (c *Core) ReplaceDirectoryUser(ctx context.Context, p Principal, orgID, userID string, in Person, ifVersion string) (DirectoryUser, error) {
	return c.PatchDirectoryUser(ctx, p, orgID, userID, ifVersion, func(DirectoryUser) (Person, error) { return in, nil })
}

// PatchDirectoryUser is a SCIM client's PATCH: patch makes the whole
// Person from the user as it is, read and written in one transaction that
// holds the user's row, so that concurrent PATCHes of one user apply in
// turn and none is lost. ifVersion as for ReplaceDirectoryUser. An error
// of patch is returned as it is.
func (c *Core) PatchDirectoryUser(ctx context.Context, p Principal, orgID, userID, ifVersion string, patch func(DirectoryUser) (Person, error)) (DirectoryUser, error) {
	var out DirectoryUser
	err := c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		u, err := c.lockDirectoryUser(ctx, tx, org.ID, userID)
		if err != nil {
			return err
		}
		if ifVersion != "" && ifVersion != version(u.UpdatedAt.UnixMicro()) {
			return fmt.Errorf("%w: user %s is at version %s, not %s", ErrPrecondition, u.ID, version(u.UpdatedAt.UnixMicro()), ifVersion)
		}
		current, err := directoryUser(ctx, tx, u)
		if err != nil {
			return err
		}
		in, err := patch(current)
		if err != nil {
			return err
		}
		if err := in.check(); err != nil {
			return err
		}
		rules, err := c.rules(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		if err := c.mayManage(ctx, tx, org, rules, u, in); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		var wrote bool
		if out, wrote, err = c.writePerson(ctx, tx, ch, org, rules, u, in); err != nil {
			return err
		}
		if !wrote {
			return nil // nothing changed: no event, no audit row
		}
		return ch.commit(tx, "scim.user.replace", u.ID, ch.details(map[string]any{"user_name": in.UserName}))
	})
	return out, err
}

// lockDirectoryUser finds and locks a user SCIM sees.
func (c *Core) lockDirectoryUser(ctx context.Context, tx store.Tx, orgID, userID string) (store.User, error) {
	u, err := tx.UserByID(ctx, orgID, userID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (u.SCIM.Deleted || u.Status == store.StatusHeld)) {
		return u, fmt.Errorf("%w: user %s", ErrNotFound, userID)
	}
	return u, err
}

// DeleteDirectoryUser is a SCIM client's DELETE: the user is deprovisioned
// (their seat freed at once, their next sign-in refused) and leaves SCIM's
// view and its groups; their record stays for the audit. A later POST of
// the same person brings them back.
func (c *Core) DeleteDirectoryUser(ctx context.Context, p Principal, orgID, userID string) error {
	return c.inTx(ctx, p.directory(), orgID, true, func(tx store.Tx, org store.Organization) error {
		u, err := c.lockDirectoryUser(ctx, tx, org.ID, userID)
		if err != nil {
			return err
		}
		rules, err := c.rules(ctx, tx, org.ID)
		if err != nil {
			return err
		}
		// SCIM removes only people it manages, or could take over.
		if err := c.mayManage(ctx, tx, org, rules, u, DirectoryUser{User: u}.Person()); err != nil {
			return err
		}
		ch := &change{ctx: ctx, p: p, org: org.ID}
		if u.Status == store.StatusSuspended && u.SuspendedReason != store.SuspendedInactive {
			// An admin suspended them: deprovisioned now (their seat freed),
			// but as the admin's, so that SCIM never brings them back.
			if _, err := tx.ReleaseSeat(ctx, org.ID); err != nil {
				return err
			}
			updated, err := tx.SetUserStatus(ctx, org.ID, u.ID, store.StatusDeprovisioned)
			if err != nil {
				return err
			}
			if err := ch.emit(events.TypeUserDeprovisioned, u.ID, events.UserStatusChanged{User: userEvent(updated), PreviousStatus: u.Status,
				Actor: ch.p.actor(), Reason: "SCIM DELETE"}); err != nil {
				return err
			}
			u = updated
		} else if u, err = c.directoryStatus(ctx, tx, ch, org, u, false); err != nil {
			return err
		}
		groups, err := tx.UserGroups(ctx, u.ID)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if _, err := tx.RemoveGroupMembers(ctx, g.ID, []string{u.ID}); err != nil {
				return err
			}
		}
		// Out of their groups: out of the roles they gave.
		if err := c.refreshMembers(ctx, tx, ch, org, []string{u.ID}); err != nil {
			return err
		}
		if u, err = tx.UserByID(ctx, org.ID, u.ID); err != nil {
			return err
		}
		u.SCIM.Deleted, u.SCIM.Managed = true, true
		if _, err := tx.WriteDirectoryUser(ctx, u); err != nil {
			return err
		}
		return ch.commit(tx, "scim.user.delete", u.ID, ch.details(map[string]any{"user_name": u.SCIM.UserName}))
	})
}

// uniqueness marks a store conflict (a taken email or userName) as a
// SCIM uniqueness conflict.
func uniqueness(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %w: %w", ErrConflict, errUniqueness, err)
	}
	return err
}

func p2actor(p Principal) events.Actor { return p.actor() }
