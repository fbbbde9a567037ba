package edge

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

// mappedField is one field of the identity (email, names, groups) as a
// connection fills it: from which IdP attribute or claim, and whether this
// login brought a value for it.
type mappedField struct {
	field   string // "email", "given_name", …
	setting string // where it is mapped: "attributes.email", "claims.groups"
	source  string // the attribute or claim mapped; "" when none is
	got     bool
}

// unmappedWarnings remembers which (connection, field, source) it warned
// of: an unmapped field is said once, not at every login. Its size is
// bounded by the connections configured and their few fields.
type unmappedWarnings struct {
	mu   sync.Mutex
	seen map[string]bool
}

func newUnmappedWarnings() *unmappedWarnings { return &unmappedWarnings{seen: map[string]bool{}} }

// first reports whether key is new, and remembers it.
func (u *unmappedWarnings) first(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen[key] {
		return false
	}
	u.seen[key] = true
	return true
}

// warnUnmapped warns, once per connection, field and source, of a field
// that people of connection c sign in without — because no attribute or
// claim is mapped to it, or because the IdP does not send the one mapped
// — naming what the IdP did send (names only, never values), so that an
// admin can map them.
func (s *Server) warnUnmapped(ctx context.Context, c *conn, protocol events.Protocol, fields []mappedField, sent []string) {
	for _, f := range fields {
		if f.got || !s.unmapped.first(connKey(c.org.ID, c.id)+"|"+f.field+"|"+f.source) {
			continue
		}
		args := []any{"protocol", protocol, "org", c.org.ID, "connection", c.id, "field", f.field, "setting", f.setting, "sent", sent}
		what := "attribute"
		if protocol == events.ProtocolOIDC {
			what = "claim"
		}
		if f.source == "" {
			s.log.WarnContext(ctx, "nothing is mapped to the "+f.field+": people of this connection sign in without one; map one of the "+what+
				"s the IdP sends (sent) with the connection's "+f.setting+" setting", args...)
			continue
		}
		s.log.WarnContext(ctx, "the IdP sent no "+what+" "+f.source+", mapped to the "+f.field+": people of this connection sign in without one; "+
			"check the connection's "+f.setting+" setting against the "+what+"s the IdP sends (sent)", append(args, "mapped", f.source)...)
	}
}

// samlFields says how a SAML login filled the identity's fields.
func samlFields(s connection.SAML, a *samlsp.Assertion) []mappedField {
	sent := func(name string) bool {
		switch {
		case name == "":
			return false
		case name == connection.NameIDSource:
			return a.NameID != ""
		}
		return slices.ContainsFunc(a.Attributes[name], func(v string) bool { return v != "" })
	}
	m := s.Attributes
	return filledByConstants([]mappedField{
		{"email", "attributes.email", m.Email, sent(m.Email)},
		{"given_name", "attributes.given_name", m.GivenName, sent(m.GivenName)},
		{"family_name", "attributes.family_name", m.FamilyName, sent(m.FamilyName)},
		{"display_name", "attributes.display_name", m.DisplayName, sent(m.DisplayName)},
		{"groups", "attributes.groups", m.Groups, sent(m.Groups)},
	}, s.Constants)
}

// filledByConstants leaves out of fields those the connection's
// constants fill, whatever the IdP sends: nobody signs in without them.
func filledByConstants(fields []mappedField, c connection.Constants) []mappedField {
	return slices.DeleteFunc(fields, func(f mappedField) bool {
		switch f.field {
		case "given_name":
			return c.GivenName != ""
		case "family_name":
			return c.FamilyName != ""
		case "display_name":
			return c.DisplayName != ""
		}
		return false
	})
}

// samlSent names what the IdP sent: its attributes, and the NameID
// ($nameid, which can be mapped too).
func samlSent(a *samlsp.Assertion) []string {
	return append([]string{connection.NameIDSource}, slices.Sorted(maps.Keys(a.Attributes))...)
}

// oidcFields says how an OIDC login filled the identity's fields; the
// standard claims are mapped unless the connection says otherwise.
func oidcFields(s connection.OIDC, cl *oidcrp.Claims) []mappedField {
	sent := func(path string) bool {
		if path == "" {
			return false
		}
		switch v, _ := oidcrp.Lookup(cl.Raw, path); t := v.(type) {
		case string:
			return t != ""
		case []any:
			return len(t) > 0
		default:
			return t != nil
		}
	}
	m := s.Claims
	fields := []mappedField{
		{"email", "claims.email", cmp.Or(m.Email, "email"), false},
		{"given_name", "claims.given_name", cmp.Or(m.GivenName, "given_name"), false},
		{"family_name", "claims.family_name", cmp.Or(m.FamilyName, "family_name"), false},
		{"display_name", "claims.display_name", cmp.Or(m.DisplayName, "name"), false},
		{"groups", "claims.groups", m.Groups, false},
	}
	for i := range fields {
		fields[i].got = sent(fields[i].source)
	}
	return filledByConstants(fields, s.Constants)
}

// protocolClaims are the ID token's claims about the token itself, not
// the person: left out of what the provider "sent".
var protocolClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "at_hash", "c_hash", "auth_time", "acr", "amr", "sid", "jti"}

// oidcSent names the claims the provider sent about the person.
func oidcSent(cl *oidcrp.Claims) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(cl.Raw)) {
		if !slices.Contains(protocolClaims, k) {
			out = append(out, k)
		}
	}
	return out
}
