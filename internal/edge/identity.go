package edge

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/schemas"
)

// Bounds on the raw attributes carried in a login (the event schema's).
const (
	maxAttributes      = 200
	maxAttributeValues = 1000
	maxValueLen        = 8192
)

// samlIdentity maps a verified assertion to the identity the provisioner
// decides on, by the connection's settings.
func samlIdentity(c *conn, a *samlsp.Assertion, log *slog.Logger) (events.Identity, error) {
	return MapSAML(c.org.ID, c.id, c.saml.settings, a, log)
}

// MapSAML maps an assertion to the identity the provisioner decides on, by
// a SAML connection's settings s: the mapping of a login at the edge,
// callable without an edge (the admin dry run). It logs to log what it
// drops or ignores. It does not verify a; the edge calls it only on a
// verified assertion.
func MapSAML(orgID, connID string, s connection.SAML, a *samlsp.Assertion, log *slog.Logger) (events.Identity, error) {
	ext, err := samlsp.ExternalID(a, samlsp.ExternalIDRule{
		Attribute: s.ExternalID.Attribute, AllowUnspecifiedNameID: s.ExternalID.AllowUnspecifiedNameID,
	})
	if err != nil {
		return events.Identity{}, err
	}
	first := func(name string) string {
		switch {
		case name == connection.NameIDSource:
			return a.NameID
		case name == "" || len(a.Attributes[name]) == 0:
			return ""
		}
		return a.Attributes[name][0]
	}
	id := events.Identity{
		OrganizationID: orgID, ConnectionID: connID, Protocol: events.ProtocolSAML, ExternalID: ext,
		GivenName: first(s.Attributes.GivenName), FamilyName: first(s.Attributes.FamilyName),
		DisplayName: first(s.Attributes.DisplayName), AuthenticatedAt: a.AuthnInstant.UTC(),
	}
	if id.AuthenticatedAt.IsZero() {
		id.AuthenticatedAt = time.Now().UTC()
	}
	if email := first(s.Attributes.Email); email != "" {
		if validEmail(email) {
			id.Email, id.EmailVerified = email, s.EmailVerified
		} else {
			log.Warn("the IdP's email attribute is not an email address a login carries; ignored", "attribute", s.Attributes.Email)
		}
	}
	if s.Attributes.Groups != "" {
		id.Groups = slices.Clone(a.Attributes[s.Attributes.Groups])
	}
	if s.Attributes.Roles != "" {
		id.Roles = slices.Clone(a.Attributes[s.Attributes.Roles])
	}
	applyClaimRules(&id, s.GroupRoles, s.Constants)
	id.Attributes = boundedAttributes(a.Attributes, s.Constants.Attributes, log)
	applyConstants(&id, s.Constants)
	if err := fitContract(&id, log); err != nil {
		return events.Identity{}, err
	}
	return id, nil
}

// validEmail reports whether s is a bare email address that the login
// contract accepts: net/mail reads more (an internationalised local
// part, a host with an underscore) than the schema's email format, and
// such an address would make the login event invalid.
func validEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || utf8.RuneCountInString(s) > maxEmailLen {
		return false
	}
	probe, err := json.Marshal(events.Identity{OrganizationID: "probe", ConnectionID: "probe", Protocol: events.ProtocolSAML,
		ExternalID: "probe", Email: s, AuthenticatedAt: time.Unix(0, 0).UTC()})
	return err == nil && schemas.Validate(events.TypeLoginFirstSeen.SchemaPath(), probe) == nil
}

// Bounds of the login contract (schemas/login.first-seen/v1.json), in
// characters.
const (
	maxEmailLen      = 320
	maxNameLen       = 1024 // given, family and display names, each group and role
	maxExternalIDLen = 1024
	maxGroups        = 1000 // groups, and roles
)

// errContract: a verified identity that the login contract cannot carry.
var errContract = errors.New("the identity does not fit the login contract")

// fitContract makes id fit the login contract before it is published. A
// verified IdP may send more than the contract carries, or text the store
// cannot hold (a NUL character: PostgreSQL refuses it, and the
// provisioner would retry the login until it gives up); sending such an
// identity would show the person an outage or a wait that never ends.
// What can go without giving the person more than they have — a name, a
// group or a role too long or holding a NUL — is dropped with a warning,
// so that one odd value does not keep a person out. What cannot — an
// external id too long or holding a NUL (the person's key: never
// changed), more groups or roles than the contract carries (dropping some
// would be arbitrary) — refuses the login with errContract, as does
// anything else the contract refuses.
func fitContract(id *events.Identity, log *slog.Logger) error {
	if n := utf8.RuneCountInString(id.ExternalID); n > maxExternalIDLen || strings.ContainsRune(id.ExternalID, 0) {
		return fmt.Errorf("%w: the external id (%d characters) is longer than the %d a login carries or holds a NUL character", errContract, n, maxExternalIDLen)
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"given name", &id.GivenName}, {"family name", &id.FamilyName}, {"display name", &id.DisplayName}} {
		if !fits(*f.v, maxNameLen) {
			log.Warn("the IdP's "+f.name+" is longer than a login carries or holds a NUL character; dropped", "connection", id.ConnectionID, "characters", utf8.RuneCountInString(*f.v))
			*f.v = ""
		}
	}
	for _, l := range []struct {
		name string
		v    *[]string
	}{{"groups", &id.Groups}, {"roles", &id.Roles}} {
		before := len(*l.v)
		*l.v = slices.DeleteFunc(*l.v, func(s string) bool { return !fits(s, maxNameLen) })
		if dropped := before - len(*l.v); dropped > 0 {
			log.Warn("some of the IdP's "+l.name+" are longer than a login carries or hold a NUL character; dropped", "connection", id.ConnectionID, "dropped", dropped)
		}
		if len(*l.v) > maxGroups {
			return fmt.Errorf("%w: %d %s, at most %d are carried", errContract, len(*l.v), l.name, maxGroups)
		}
	}
	raw, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("%w: %w", errContract, err)
	}
	if err := schemas.Validate(events.TypeLoginFirstSeen.SchemaPath(), raw); err != nil {
		return fmt.Errorf("%w: %w", errContract, err)
	}
	return nil
}

// fits reports whether s is at most max characters without a NUL.
func fits(s string, max int) bool {
	return utf8.RuneCountInString(s) <= max && !strings.ContainsRune(s, 0)
}

// boundedAttributes keeps the raw attributes that fit the login schema,
// so that one oversized attribute cannot stop a person from signing in.
// It leaves out the names of the connection's constant attributes, and
// room for them (applyConstants sets them).
func boundedAttributes(in, constants map[string][]string, log *slog.Logger) map[string][]string {
	out := map[string][]string{}
	room := maxAttributes - len(constants)
	for _, name := range slices.Sorted(maps.Keys(in)) {
		vals := in[name]
		if _, constant := constants[name]; constant {
			continue
		}
		if len(out) >= room || len(vals) > maxAttributeValues || slices.ContainsFunc(vals, func(v string) bool { return len(v) > maxValueLen }) {
			log.Warn("SAML attribute too large to carry; dropped", "attribute", name, "values", len(vals))
			continue
		}
		out[name] = vals
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// applyConstants sets a connection's constant profile fields and custom
// attributes on id (SAML and OIDC alike). The constant is the value: what
// the IdP sent for that field or attribute is replaced. (Constant groups
// and roles are added to the IdP's instead: applyClaimRules.) The config
// check keeps constants within the login contract, and keeps the email
// and the external id out of them.
func applyConstants(id *events.Identity, c connection.Constants) {
	for _, f := range []struct {
		constant string
		field    *string
	}{{c.GivenName, &id.GivenName}, {c.FamilyName, &id.FamilyName}, {c.DisplayName, &id.DisplayName}} {
		if f.constant != "" {
			*f.field = f.constant
		}
	}
	if len(c.Attributes) == 0 {
		return
	}
	if id.Attributes == nil {
		id.Attributes = make(map[string][]string, len(c.Attributes))
	}
	for name, vals := range c.Attributes {
		id.Attributes[name] = slices.Clone(vals)
	}
}
