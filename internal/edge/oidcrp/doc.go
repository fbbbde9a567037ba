// Package oidcrp is sso-edge's OpenID Connect relying party: a guard layer
// around github.com/coreos/go-oidc/v3 (v3.21.0) and golang.org/x/oauth2 that
// closes what go-oidc leaves to the caller (issue 4). Signatures, iss, aud
// and exp are verified by go-oidc with go-jose v4; this package adds no
// cryptography of its own (private_key_jwt client assertions are signed
// with go-jose v4 too).
//
// # API
//
//	rp, err := oidcrp.New(ctx, oidcrp.Config{...})     // one per connection; discovery
//	start, err := rp.Begin()                            // start.URL; bind start.Pending to the browser
//	c, err := rp.Finish(ctx, pending, r.URL.Query())    // the redirect back
//	c, err := rp.Verify(ctx, rawIDToken, nonce)         // ID token checks alone
//	v, ok := oidcrp.Lookup(c.Raw, "realm_access.roles") // claim mapping
//
// Every refusal is a *RejectError: errors.Is(err, ErrInvalid) holds, its
// Reason is a short stable code, ReasonOf(err) extracts it. Details never
// contain the code, the verifier, a token or the client secret.
//
// Departures from the suggested API: Finish takes the Pending (state, nonce,
// verifier) and the whole callback query instead of (code, verifier,
// nonce), so that the state comparison, the provider's error parameter and
// the RFC 9207 iss parameter cannot be forgotten by the caller. Start embeds
// Pending (start.State etc. still work). Config gains TokenAuth (with
// PrivateKey and PrivateKeyID), HTTPTimeout and JWKSRefreshInterval.
//
// # What Finish and Verify check
//
//   - callback: error parameter (op_error), a complete Pending (pending),
//     state equal in constant time (state), iss equal to the issuer when
//     present or when discovery says the provider sends it (issuer), a code
//     (no_code);
//   - exchange with the PKCE verifier, client_secret_basic, _post or
//     private_key_jwt (an RFC 7523 client assertion signed with
//     Config.PrivateKey, RS256 or ES256: iss = sub = client id, aud = the
//     token endpoint URL and the issuer, random jti, valid one minute; no
//     secret is sent); any refusal by the token endpoint (reused code,
//     wrong or missing verifier, a key the provider does not know) is
//     "exchange"; no id_token is "no_id_token";
//   - before go-oidc: at most 64 KiB, a compact JWS (JWE is refused), and
//     the header alg in AllowedAlgs ("alg": none, HS*, anything not allowed
//     — checked before any key lookup, so it costs no JWKS fetch);
//   - go-oidc: signature with the provider's JWKS (signature), iss (issuer),
//     aud contains the client id (audience), exp with ClockSkew of leeway,
//     including a missing exp (expired), nbf (not_yet_valid), claims of
//     the wrong JSON type (malformed);
//   - after go-oidc: sub a non-empty string (no_sub), iat present (no_iat)
//     and not after now+ClockSkew (iat_future), azp equal to the client id
//     when present and required when aud has several values (azp), nonce
//     non-empty and equal in constant time to the browser's (nonce), and in
//     Finish at_hash against the access token when present (at_hash).
//
// # Network
//
// Config.HTTPClient is required and never http.DefaultClient. New builds
// its own client from it: a transport that refuses non-https requests, a
// redirect policy refusing redirects to non-https and more than 5, no cookie
// jar, and a timeout; AllowInsecure (tests, development) permits http.
// Discovery runs within HTTPTimeout; its endpoints must be https.
//
// JWKS: go-oidc's RemoteKeySet refetches the JWKS whenever no cached key
// verifies a token — for every forged token. Under it sits jwksThrottle, a
// RoundTripper that lets at most one request reach the provider per
// JWKSRefreshInterval (default 10s) and otherwise answers from the last good
// document (1 MiB at most). Tested: 100 tokens with unknown kids cause no
// fetch within the interval and one after it. Key rotation works when the
// provider's new key appears after the interval; a key first used within
// the interval after a fetch is refused until it passes (TestKeyRotation).
//
// # Tests and their provider
//
// The tests run a real OpenID provider in the test process: zitadel/oidc
// v3.45.0's pkg/op with its example in-memory storage (harness_test.go),
// wrapped to choose the signing keys (key rotation), count JWKS requests,
// and, for the attacks on the ID token, rewrite the id_token of the real
// token endpoint's answer as a man in the middle would. Code reuse and PKCE
// failures are refused by zitadel itself; the rest by this package.
//
// # Userinfo
//
// With Config.Userinfo, Finish calls the provider's userinfo endpoint after
// the ID token's checks, with the access token of the exchange and through
// the same https-only client. The userinfo sub must equal the ID token's
// (ReasonUserinfoSub); any other failure is ReasonUserinfo. Userinfo claims
// are added to Claims.Raw only where the ID token has no claim of that name
// (the ID token wins), and Email and EmailVerified are taken from the merged
// claims when the ID token had no email. Tested against zitadel with a
// client whose ID token carries no email, and with the userinfo answer's
// sub rewritten by the harness.
//
// # Left to the caller (the edge)
//
// Binding Pending to the browser across replicas (signed short-lived
// cookie), single use of that binding, claim mapping and group rules over
// Claims.Raw with Lookup, private_key_jwt, external id =
// (issuer, sub), linking by email only when EmailVerified and the domain is
// verified, and never logging codes or tokens.
package oidcrp
