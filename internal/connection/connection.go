// Package connection holds the typed settings of an organisation's IdP
// connections, as declared under `settings:` in the organisations file and
// stored as JSON with the connection. The config package validates them
// when a file is applied; sso-edge decodes them when it serves a login.
package connection

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Problem is one invalid setting: Field is its path below `settings`
// (e.g. "attributes.email"), Msg says what is wrong for an operator.
type Problem struct {
	Field string
	Msg   string
	// Known lists the settings allowed where Field is an unknown one.
	Known []string
}

func (p Problem) Error() string { return p.Field + ": " + p.Msg }

// SAML is a SAML 2.0 connection: where the IdP's metadata comes from, the
// service provider's identity, how assertions map to an identity, and how
// strict validation is.
type SAML struct {
	// Exactly one of the IdP metadata sources.
	IDPMetadataURL  string `json:"idp_metadata_url,omitempty"`
	IDPMetadataFile string `json:"idp_metadata_file,omitempty"`
	IDPMetadataXML  string `json:"idp_metadata_xml,omitempty"`
	// SPEntityID is the SP entity id the IdP knows this connection by,
	// and under which it keys persistent NameIDs. sso-edge serves no SAML
	// connection without it, except in development mode (jitprov dev),
	// where it defaults to the edge's metadata URL of the connection: a
	// default that follows the edge's public URL would re-key everyone
	// when the edge moves (ServeProblems).
	SPEntityID string `json:"sp_entity_id,omitempty"`
	// SPKeyFile and SPCertFile (PEM) sign AuthnRequests and decrypt
	// encrypted assertions; both or neither. Keys live in files (a
	// mounted secret), never in the organisations file.
	SPKeyFile  string `json:"sp_key_file,omitempty"`
	SPCertFile string `json:"sp_cert_file,omitempty"`
	// AllowIDPInitiated accepts unsolicited responses (default false).
	AllowIDPInitiated bool `json:"allow_idp_initiated,omitempty"`
	// RequireSignedAssertion requires the assertion itself to be signed,
	// not only the response around it (default true).
	RequireSignedAssertion *bool `json:"require_signed_assertion,omitempty"`
	// AllowSHA1 accepts RSA-SHA1 signatures and SHA-1 digests (default
	// false: SHA-1 is broken for signatures).
	AllowSHA1 bool `json:"allow_sha1,omitempty"`
	// ClockSkew is how far the IdP's clock may be from the edge's, either
	// way, e.g. "90s" (default 90s, at most 5m; "0s" tolerates none): on
	// NotBefore/NotOnOrAfter, AuthnInstant and IssueInstant.
	ClockSkew string `json:"clock_skew,omitempty"`
	// ExternalID says where the person's stable id comes from.
	ExternalID ExternalID `json:"external_id,omitzero"`
	// Attributes maps identity fields to SAML attribute names.
	Attributes Attributes `json:"attributes,omitzero"`
	// EmailVerified trusts the IdP's email as verified. SAML has no
	// standard claim for it; turn it on only for an IdP that owns the
	// organisation's mailboxes.
	EmailVerified bool `json:"email_verified,omitempty"`
	// GroupRoles turn IdP groups into claimed roles.
	GroupRoles []GroupRole `json:"group_roles,omitempty"`
	// Constants are values every identity of the connection carries: a
	// group naming the IdP, a role every person of it claims, a profile
	// field or a custom attribute (see Constants).
	Constants Constants `json:"constants,omitzero"`
	// GroupsMissing is what a login without groups (the groups attribute
	// absent or empty) means for a returning person: GroupsKeep (default)
	// or GroupsClear.
	GroupsMissing string `json:"groups_missing,omitempty"`
	// SCIMIdentity names the SCIM attribute (SCIMUserName or
	// SCIMExternalID) whose value is a person's external id through this
	// connection: a person a SCIM client creates is linked to that
	// identity ahead of their first sign-in ("" links none).
	SCIMIdentity string `json:"scim_identity,omitempty"`
}

// Values of scim_identity.
const (
	SCIMUserName   = "userName"
	SCIMExternalID = "externalId"
)

// SCIMIdentityOf reads a stored connection's scim_identity and group
// rules, whatever its protocol; an error when its settings do not decode.
func SCIMIdentityOf(protocol string, settings []byte) (scimIdentity string, groupRoles []GroupRole, err error) {
	switch protocol {
	case "saml":
		s, err := DecodeSAML(settings)
		return s.SCIMIdentity, s.GroupRoles, err
	case "oidc":
		s, err := DecodeOIDC(settings)
		return s.SCIMIdentity, s.GroupRoles, err
	}
	return "", nil, fmt.Errorf("connection protocol %q is neither saml nor oidc", protocol)
}

func scimIdentityProblems(v string) []Problem {
	switch v {
	case "", SCIMUserName, SCIMExternalID:
		return nil
	}
	return []Problem{{Field: "scim_identity", Msg: fmt.Sprintf("%q is not %s or %s: the SCIM attribute whose value is the person's external id through this connection",
		v, SCIMUserName, SCIMExternalID)}}
}

// What a login without groups means (SAML.GroupsMissing,
// OIDC.GroupsMissing).
const (
	// GroupsKeep: the IdP said nothing about groups. The stored groups
	// stay, and so do the roles the connection's group rules give for
	// them.
	GroupsKeep = "keep"
	// GroupsClear: the person is in no group (of the IdP's). The stored
	// groups go, and so do the roles group rules gave.
	GroupsClear = "clear"
)

// ExternalID picks the source of the external id: the NameID (which must
// be persistent) or an attribute such as an immutable employee id.
type ExternalID struct {
	Attribute string `json:"attribute,omitempty"`
	// AllowUnspecifiedNameID accepts a NameID of unspecified format, for an
	// IdP known to send a stable value in it.
	AllowUnspecifiedNameID bool `json:"allow_unspecified_name_id,omitempty"`
}

// NameIDSource, as an attribute name in Attributes, takes the value from
// the assertion's NameID (e.g. an email-format NameID as the email).
const NameIDSource = "$nameid"

// Attributes names the SAML attributes that carry each identity field
// (or NameIDSource).
type Attributes struct {
	Email       string `json:"email,omitempty"`
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Groups      string `json:"groups,omitempty"`
	Roles       string `json:"roles,omitempty"`
}

// GroupRole claims Role for members of Group.
type GroupRole struct {
	Group string `json:"group"`
	Role  string `json:"role"`
}

// Defaults.
const (
	DefaultClockSkew = 90 * time.Second
	MaxClockSkew     = 5 * time.Minute
)

// SignedAssertionRequired reports the effective require_signed_assertion.
func (s SAML) SignedAssertionRequired() bool {
	return s.RequireSignedAssertion == nil || *s.RequireSignedAssertion
}

// Skew is the effective clock skew (settings that passed Problems).
func (s SAML) Skew() time.Duration {
	d, err := time.ParseDuration(s.ClockSkew)
	if s.ClockSkew == "" || err != nil {
		return DefaultClockSkew
	}
	return d
}

// DecodeSAML reads stored settings. Unknown keys are an error: a typo must
// not silently weaken a check. The error is a ProblemList of every unknown
// key and every value of the wrong type.
func DecodeSAML(settings []byte) (SAML, error) {
	var s SAML
	return s, asError(decodeAll(settings, &s))
}

// CheckSAML decodes a SAML connection's stored settings and lists every
// problem with them that can be known without reading a file or the
// network: unknown keys, values of the wrong type, and what Problems finds
// in the rest. sso-edge serves a connection only when there is none, and
// the organisations file is checked with this same function.
func CheckSAML(settings []byte, roles []string) (SAML, []Problem) {
	var s SAML
	undecoded := decodeAll(settings, &s)
	return s, append(undecoded, without(s.Problems(roles), undecoded)...)
}

// Problems lists every invalid setting. roles are the organisation's
// roles, which group_roles must name.
func (s SAML) Problems(roles []string) []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	sources := 0
	for _, v := range []string{s.IDPMetadataURL, s.IDPMetadataFile, s.IDPMetadataXML} {
		if v != "" {
			sources++
		}
	}
	switch {
	case sources == 0:
		add("idp_metadata_url", "required: the IdP's metadata, as idp_metadata_url, idp_metadata_file or idp_metadata_xml")
	case sources > 1:
		add("idp_metadata_url", "give the IdP's metadata once: idp_metadata_url, idp_metadata_file or idp_metadata_xml, not several")
	}
	if s.IDPMetadataURL != "" {
		if u, err := url.Parse(s.IDPMetadataURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			add("idp_metadata_url", "%q must be an https:// URL (http:// only for localhost): the metadata carries the certificate every signature is checked with", s.IDPMetadataURL)
		}
	}
	if sources == 1 && s.IDPMetadataXML != "" {
		_, ps := parseMetadata("idp_metadata_xml", "", []byte(s.IDPMetadataXML))
		out = append(out, ps...)
	}
	if v := s.SPEntityID; v != "" && strings.TrimSpace(v) != v {
		add("sp_entity_id", "%q has leading or trailing spaces; the IdP knows the SP by its exact entity id", v)
	}
	if (s.SPKeyFile == "") != (s.SPCertFile == "") {
		add("sp_key_file", "give sp_key_file and sp_cert_file together (the SP's key pair), or neither")
	}
	if s.ClockSkew != "" {
		if d, err := time.ParseDuration(s.ClockSkew); err != nil {
			add("clock_skew", `%q is not a duration such as "90s" or "2m"`, s.ClockSkew)
		} else if d < 0 || d > MaxClockSkew {
			add("clock_skew", "%s is out of range: 0 to %s (default %s)", d, MaxClockSkew, DefaultClockSkew)
		}
	}
	attrs := map[string]string{"email": s.Attributes.Email, "given_name": s.Attributes.GivenName,
		"family_name": s.Attributes.FamilyName, "display_name": s.Attributes.DisplayName,
		"groups": s.Attributes.Groups, "roles": s.Attributes.Roles}
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if v := attrs[k]; v != "" && strings.TrimSpace(v) != v {
			add("attributes."+k, "%q has leading or trailing spaces", v)
		}
	}
	if a := s.ExternalID.Attribute; a != "" && strings.TrimSpace(a) != a {
		add("external_id.attribute", "%q has leading or trailing spaces", a)
	}
	out = append(out, scimIdentityProblems(s.SCIMIdentity)...)
	out = append(out, groupsMissingProblems(s.GroupsMissing)...)
	return append(out, claimRuleProblems(s.GroupRoles, s.Constants, roles)...)
}

// ServeProblems lists what sso-edge refuses to serve outside development
// mode although `provisioner apply` accepts it (development mode serves
// it): a connection without sp_entity_id. `provisioner check` reports
// them with the other problems.
func (s SAML) ServeProblems() []Problem {
	if s.SPEntityID != "" {
		return nil
	}
	return []Problem{{Field: "sp_entity_id", Msg: "required: sso-edge serves no SAML connection without it (outside jitprov dev). " +
		"Pin the entity id the IdP knows this connection by: for a connection in use, the entityID of the SP metadata the IdP has " +
		"(<public url>/saml/<org>/<connection>/metadata until now; sso-edge logs the exact value); " +
		"for a new one, a stable URI such as https://sso.example.com/saml/<org>/<connection>"}}
}

// claimRuleProblems checks a connection's group rules and constants (SAML
// and OIDC alike) against the organisation's roles.
func claimRuleProblems(groupRoles []GroupRole, constants Constants, roles []string) []Problem {
	out := constantsProblems(constants, roles)
	add := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i, gr := range groupRoles {
		f := fmt.Sprintf("group_roles[%d]", i)
		if gr.Group == "" {
			add(f+".group", "required: the IdP group whose members claim the role")
		}
		if !slices.Contains(roles, gr.Role) {
			add(f+".role", "%q is not one of the organisation's roles (%s)", gr.Role, strings.Join(roles, ", "))
		}
	}
	return out
}

// groupsMissingProblems checks groups_missing (SAML and OIDC alike).
func groupsMissingProblems(v string) []Problem {
	switch v {
	case "", GroupsKeep, GroupsClear:
		return nil
	}
	return []Problem{{Field: "groups_missing", Msg: fmt.Sprintf("%q is not one of keep (the default: a login without groups keeps the stored groups and the roles they give) or clear (a login without groups takes them away)", v)}}
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
