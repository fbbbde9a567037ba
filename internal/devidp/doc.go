// Package devidp is the built-in development identity provider of
// `jitprov dev`: a SAML 2.0 IdP and an OpenID provider behind one login
// page that lists demo people, each with a "Sign in as …" button. There
// are no passwords: anyone who reaches it can sign in as anyone, and every
// page says "Development identity provider — not for production". Never
// expose it beyond a developer's machine.
//
// # API
//
//	idp, err := devidp.New(ctx, devidp.Config{
//		BaseURL: "http://localhost:8080/dev-idp",
//		DataDir: ".data",
//		SAMLServiceProviders: []devidp.ServiceProvider{{MetadataURL: spMetadataURL}},
//		OIDCClients: []devidp.Client{{ID: id, Secret: secret, RedirectURIs: uris}},
//	})
//	mux.Handle(idp.PathPrefix()+"/", idp.Handler()) // full paths, no StripPrefix
//	idp.SAMLMetadataURL() // <BaseURL>/saml/metadata: idp_metadata_url, and the entity id
//	idp.Issuer()          // <BaseURL>/oidc: the OIDC issuer
//
// See ExampleNew for the wiring beside sso-edge, and
// testdata/organizations-dev.yaml for the matching connections.
//
// # SAML
//
// crewjam/saml's IdentityProvider, used directly rather than through its
// samlidp package: samlidp brings password users, its own sessions, store
// and login form, where this IdP needs a person picker and no state.
// Responses answer SP-initiated AuthnRequests (HTTP-Redirect or HTTP-POST
// binding) from the configured SPs only, whose metadata is given as XML
// or fetched lazily from a URL (the edge may start after the IdP; a copy
// is refetched after Config.SPMetadataTTL). The Response and the
// assertion are both signed with RSA-SHA256, and the assertion is
// encrypted (AES-128-CBC, RSA-OAEP) when the SP's metadata carries an
// encryption certificate, as the edge's does. The NameID is Person.ID in
// the persistent format; the attributes are AttrEmail, AttrGivenName,
// AttrFamilyName, AttrDisplayName and AttrGroups (NameFormat basic). The
// response reaches the ACS as an HTML form that a script submits (with a
// Continue button without scripts).
//
// There are no IdP sessions: every AuthnRequest shows the login page. The
// request crewjam validated waits there (in memory, 10 minutes, used once)
// and the assertion's validity is counted from the click, not from the
// AuthnRequest as crewjam does (which allows only 90 seconds).
//
// # OIDC
//
// zitadel/oidc's op over an in-memory storage: the authorization code
// flow only, PKCE with S256 required, confidential clients authenticating
// with client_secret_basic or client_secret_post, redirect URIs matched
// exactly, codes good once for two minutes. The ID token (RS256) carries
// sub (Person.ID), email and email_verified (scope email), name,
// given_name, family_name and preferred_username (scope profile), and
// groups (always; the scope "groups" may be requested). The same claims
// are at the userinfo endpoint. An http issuer is allowed
// (op.WithAllowInsecure) when BaseURL is http.
//
// # Keys
//
// The SAML key and its self-signed certificate (valid ten years, renewed
// for the same key 30 days before it ends) and the OIDC key are RSA 2048,
// kept in Config.DataDir as devidp-saml.key, devidp-saml.crt and
// devidp-oidc.key (PKCS#8 and X.509 PEM, mode 0600), so that a restart
// serves the same metadata and key id. The OIDC key id is the key's RFC
// 7638 thumbprint. Without a DataDir the keys are made in memory at each
// start.
//
// # Same site as the edge
//
// Over plain HTTP the edge's pending-login cookie is SameSite=Lax, which a
// browser sends with the IdP's cross-site POST to the ACS only when both
// are on the same site: give the IdP the edge's host name (mount it on the
// edge's listener, or use another port of the same host), and do not mix
// localhost and 127.0.0.1.
package devidp
