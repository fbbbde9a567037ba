package connection

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// OIDC is an OpenID Connect connection: the provider, this relying
// party's client, and how claims map to an identity. The client secret
// never appears in the organisations file: it is read from a file or an
// environment variable.
type OIDC struct {
	// Issuer is the provider's issuer URL (discovery at
	// <issuer>/.well-known/openid-configuration). https, or http on
	// localhost.
	Issuer   string `json:"issuer"`
	ClientID string `json:"client_id"`
	// ClientSecretFile or ClientSecretEnv names where the client secret
	// is; one of them for client_secret_basic and client_secret_post.
	ClientSecretFile string `json:"client_secret_file,omitempty"`
	ClientSecretEnv  string `json:"client_secret_env,omitempty"`
	// TokenEndpointAuth is client_secret_basic (default),
	// client_secret_post or private_key_jwt (with PrivateKeyFile).
	TokenEndpointAuth string `json:"token_endpoint_auth,omitempty"`
	PrivateKeyFile    string `json:"private_key_file,omitempty"`
	// PrivateKeyID is the kid of the client assertion, as the provider
	// registered the key; optional, private_key_jwt only.
	PrivateKeyID string `json:"private_key_id,omitempty"`
	// Scopes requested; default openid, email, profile ("openid" is always
	// requested).
	Scopes []string `json:"scopes,omitempty"`
	// AllowedAlgs of ID-token signatures; default the RS256 and ES256
	// families. none and HS* are never allowed.
	AllowedAlgs []string `json:"allowed_algs,omitempty"`
	// Userinfo merges the userinfo endpoint's claims into the ID token's.
	Userinfo bool `json:"userinfo,omitempty"`
	// Claims maps identity fields to claims, by dotted path into nested
	// claims (e.g. "realm_access.roles"). Defaults: email, email_verified,
	// given_name, family_name, name; groups and roles unmapped.
	Claims Claims `json:"claims,omitzero"`
	// GroupRoles and Constants work as for SAML connections.
	GroupRoles []GroupRole `json:"group_roles,omitempty"`
	Constants  Constants   `json:"constants,omitzero"`
	// GroupsMissing works as for SAML connections.
	GroupsMissing string `json:"groups_missing,omitempty"`
	// SCIMIdentity works as for SAML connections.
	SCIMIdentity string `json:"scim_identity,omitempty"`
}

// Claims names the claim (dotted path) of each identity field.
type Claims struct {
	Email         string `json:"email,omitempty"`
	EmailVerified string `json:"email_verified,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
	DisplayName   string `json:"display_name,omitempty"`
	Groups        string `json:"groups,omitempty"`
	Roles         string `json:"roles,omitempty"`
}

// Token endpoint authentication methods.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// DefaultAllowedAlgs are the ID-token algorithms accepted by default.
var defaultAllowedAlgs = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}

// DefaultAllowedAlgs returns the algorithms accepted when none are set.
func DefaultAllowedAlgs() []string { return slices.Clone(defaultAllowedAlgs) }

// DecodeOIDC reads stored settings; unknown keys are an error. The error
// is a ProblemList of every unknown key and every value of the wrong type.
func DecodeOIDC(settings []byte) (OIDC, error) {
	var s OIDC
	return s, asError(decodeAll(settings, &s))
}

// CheckOIDC is CheckSAML for an OIDC connection.
func CheckOIDC(settings []byte, roles []string) (OIDC, []Problem) {
	var s OIDC
	undecoded := decodeAll(settings, &s)
	return s, append(undecoded, without(s.Problems(roles), undecoded)...)
}

// Problems lists every invalid setting; roles are the organisation's.
func (s OIDC) Problems(roles []string) []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Issuer == "" {
		add("issuer", "required: the provider's issuer URL, e.g. https://accounts.google.com")
	} else if u, err := url.Parse(s.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		add("issuer", "%q must be an https:// URL (http:// only for localhost): discovery and the signing keys come from it", s.Issuer)
	} else if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(s.Issuer, "#") {
		add("issuer", "%q must be the issuer URL alone, without a user, query or fragment, as the provider's discovery document names it", s.Issuer)
	}
	if strings.TrimSpace(s.ClientID) == "" {
		add("client_id", "required: the client id the provider issued for this connection")
	}
	switch s.TokenEndpointAuth {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
		switch {
		case s.ClientSecretFile == "" && s.ClientSecretEnv == "":
			add("client_secret_file", "required: where the client secret is, as client_secret_file or client_secret_env (never the secret itself)")
		case s.ClientSecretFile != "" && s.ClientSecretEnv != "":
			add("client_secret_file", "give client_secret_file or client_secret_env, not both")
		}
		if s.PrivateKeyFile != "" {
			add("private_key_file", "only for token_endpoint_auth: private_key_jwt")
		}
		if s.PrivateKeyID != "" {
			add("private_key_id", "only for token_endpoint_auth: private_key_jwt")
		}
	case AuthPrivateKeyJWT:
		if s.PrivateKeyFile == "" {
			add("private_key_file", "required for private_key_jwt: the PEM key that signs the client assertion")
		}
	default:
		add("token_endpoint_auth", "%q is not supported; use client_secret_basic, client_secret_post or private_key_jwt", s.TokenEndpointAuth)
	}
	for i, alg := range s.AllowedAlgs {
		if !slices.Contains(defaultAllowedAlgs, alg) {
			add(fmt.Sprintf("allowed_algs[%d]", i), "%q is not an asymmetric JWS algorithm jitprov accepts (%s)", alg, strings.Join(defaultAllowedAlgs, ", "))
		}
	}
	out = append(out, scimIdentityProblems(s.SCIMIdentity)...)
	out = append(out, groupsMissingProblems(s.GroupsMissing)...)
	return append(out, claimRuleProblems(s.GroupRoles, s.Constants, roles)...)
}
