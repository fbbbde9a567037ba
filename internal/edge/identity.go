package edge

import (
	"log/slog"
	"maps"
	"net/mail"
	"slices"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
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
	s := c.saml.settings
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
		OrganizationID: c.org.ID, ConnectionID: c.id, Protocol: events.ProtocolSAML, ExternalID: ext,
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
			log.Warn("the IdP's email attribute is not an email address; ignored", "attribute", s.Attributes.Email)
		}
	}
	if s.Attributes.Groups != "" {
		id.Groups = slices.Clone(a.Attributes[s.Attributes.Groups])
	}
	if s.Attributes.Roles != "" {
		id.Roles = slices.Clone(a.Attributes[s.Attributes.Roles])
	}
	applyClaimRules(&id, s.GroupRoles, s.Constants)
	id.Attributes = boundedAttributes(a.Attributes, log)
	return id, nil
}

// validEmail reports whether s is a bare email address.
func validEmail(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Address == s
}

// boundedAttributes keeps the raw attributes that fit the login schema,
// so that one oversized attribute cannot stop a person from signing in.
func boundedAttributes(in map[string][]string, log *slog.Logger) map[string][]string {
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(in)) {
		vals := in[name]
		if len(out) == maxAttributes || len(vals) > maxAttributeValues || slices.ContainsFunc(vals, func(v string) bool { return len(v) > maxValueLen }) {
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
