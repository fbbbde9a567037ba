package oidcrp

import (
	"errors"

	"github.com/jitprov/jitprov/internal/edge/refusal"
)

// ErrInvalid matches every refusal of a login: errors.Is(err, ErrInvalid) is
// true for any *RejectError.
var ErrInvalid = errors.New("oidcrp: invalid OpenID Connect login")

// ErrUnavailable: New could not fetch the discovery document because the
// provider answered with a server error (5xx), 429 or 408: it is
// unavailable for now, which passes, unlike a mistake in the settings.
// Network errors (refused, timed out) are returned as they are.
var ErrUnavailable = errors.New("oidcrp: the provider is unavailable")

// Reason is a short, stable code saying why a login was refused. The edge logs
// it and counts it (one metric label value per Reason).
type Reason string

// Reasons, in roughly the order the checks run.
const (
	// ReasonOPError: the provider redirected back with an error parameter
	// (access_denied, login_required, ...); the Detail names it.
	ReasonOPError Reason = "op_error"
	// ReasonPending: the browser-bound pending login (state, nonce,
	// verifier) is missing or incomplete.
	ReasonPending Reason = "pending"
	// ReasonState: the callback's state is missing or is not the one bound
	// to this browser (CSRF, or a login started elsewhere).
	ReasonState Reason = "state"
	// ReasonNoCode: the callback carries no authorization code.
	ReasonNoCode Reason = "no_code"
	// ReasonExchange: the token endpoint refused the code (reused, expired,
	// wrong PKCE verifier, bad client credentials) or could not be reached.
	ReasonExchange Reason = "exchange"
	// ReasonNoIDToken: the token response carries no id_token.
	ReasonNoIDToken Reason = "no_id_token"
	// ReasonMalformed: not a compact JWS, too large, or an unreadable
	// header or payload.
	ReasonMalformed Reason = "malformed"
	// ReasonAlg: the header's alg is not in Config.AllowedAlgs (none, HS*,
	// or an asymmetric algorithm that was not allowed).
	ReasonAlg Reason = "alg"
	// ReasonSignature: the signature does not verify with any key of the
	// provider's JWKS (after at most one rate-limited refresh).
	ReasonSignature Reason = "signature"
	// ReasonIssuer: iss is not the configured issuer, or the callback's iss
	// parameter (RFC 9207) names another provider.
	ReasonIssuer Reason = "issuer"
	// ReasonAudience: aud does not contain our client id.
	ReasonAudience Reason = "audience"
	// ReasonAZP: azp is present and is not our client id, or aud has several
	// values and azp is missing.
	ReasonAZP Reason = "azp"
	// ReasonExpired: exp is missing or in the past (beyond ClockSkew).
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: nbf is in the future.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonNoIAT: iat is missing.
	ReasonNoIAT Reason = "no_iat"
	// ReasonIATFuture: iat is in the future beyond ClockSkew.
	ReasonIATFuture Reason = "iat_future"
	// ReasonNonce: the nonce is missing or not the one bound to this browser.
	ReasonNonce Reason = "nonce"
	// ReasonNoSub: sub is missing, not a string, or empty.
	ReasonNoSub Reason = "no_sub"
	// ReasonAtHash: at_hash is present and does not match the access token.
	ReasonAtHash Reason = "at_hash"
	// ReasonRejected: go-oidc refused the token for a reason this package
	// does not recognise; the Detail carries its message.
	ReasonRejected Reason = "rejected"
)

// RejectError is a refused OpenID Connect login: Reason for metrics and logs, Detail for
// operators' logs, Cause the underlying library error. errors.Is matches
// ErrInvalid, and a *RejectError with the same Reason and no Detail.
type RejectError = refusal.Error[Reason]

// Sentinel is ErrInvalid: every refusal of this package matches it.
func (Reason) Sentinel() error { return ErrInvalid }

func reject(reason Reason, format string, args ...any) *RejectError {
	return refusal.New(reason, format, args...)
}

// ReasonOf returns the Reason of a *RejectError in err's chain, or "".
func ReasonOf(err error) Reason { return refusal.ReasonOf[Reason](err) }
