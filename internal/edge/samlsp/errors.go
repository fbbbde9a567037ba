package samlsp

import (
	"errors"

	"github.com/jitprov/jitprov/internal/edge/refusal"
)

// ErrInvalid matches every refusal of a SAML response: errors.Is(err,
// ErrInvalid) is true for any *RejectError.
var ErrInvalid = errors.New("samlsp: invalid SAML response")

// Reason is a short, stable code saying why a response was refused. The edge
// logs it and counts it (one metric label value per Reason); it never
// changes meaning once released.
type Reason string

// Reasons, in roughly the order the checks run.
const (
	// ReasonTooLarge: the base64 form value is longer than MaxResponseBytes.
	ReasonTooLarge Reason = "too_large"
	// ReasonMalformed: not base64, not well-formed UTF-8 XML, or input that
	// made a library panic (xmlenc on a truncated ciphertext).
	ReasonMalformed Reason = "malformed"
	// ReasonDoctype: a DOCTYPE, ENTITY or other markup declaration.
	ReasonDoctype Reason = "doctype"
	// ReasonComment: an XML comment anywhere in the document.
	ReasonComment Reason = "comment"
	// ReasonStructure: not a SAML 2.0 Response with exactly one (encrypted)
	// assertion, a processing instruction, duplicate IDs or attributes,
	// elements in the wrong place or namespace, a Signature in an unexpected
	// place or shape.
	ReasonStructure Reason = "structure"
	// ReasonIssuer: an Issuer missing or not the IdP's entity id.
	ReasonIssuer Reason = "issuer"
	// ReasonSHA1: a signature or digest algorithm of the SHA-1 family while
	// Config.AllowSHA1 is false.
	ReasonSHA1 Reason = "sha1"
	// ReasonSignature: no signature, a signature that does not verify, a
	// certificate that is not the IdP's, or an algorithm we do not accept.
	ReasonSignature Reason = "signature"
	// ReasonUnsignedAssertion: the Response is signed but the assertion
	// itself is not, while Config.RequireSignedAssertion is true.
	ReasonUnsignedAssertion Reason = "unsigned_assertion"
	// ReasonStatus: the IdP answered with a status other than Success (the
	// Detail names it, e.g. AuthnFailed or RequestDenied).
	ReasonStatus Reason = "status"
	// ReasonDecrypt: an EncryptedAssertion that could not be decrypted, or
	// whose plaintext is not a self-contained assertion (a namespace prefix
	// declared only outside it).
	ReasonDecrypt Reason = "decrypt"
	// ReasonDestination: the Response's Destination is missing or is not
	// our ACS URL.
	ReasonDestination Reason = "destination"
	// ReasonRecipient: no bearer SubjectConfirmationData whose Recipient is
	// our ACS URL.
	ReasonRecipient Reason = "recipient"
	// ReasonSubjectConfirmation: no bearer SubjectConfirmation, or one
	// without SubjectConfirmationData or NotOnOrAfter.
	ReasonSubjectConfirmation Reason = "subject_confirmation"
	// ReasonAudience: no AudienceRestriction, or one that does not name our
	// entity id.
	ReasonAudience Reason = "audience"
	// ReasonExpired: past NotOnOrAfter (Conditions, SubjectConfirmationData
	// or SessionNotOnOrAfter) or issued too long ago.
	ReasonExpired Reason = "expired"
	// ReasonNotYetValid: before NotBefore, or issued in the future.
	ReasonNotYetValid Reason = "not_yet_valid"
	// ReasonUnsolicited: a response to no request of this browser while
	// IdP-initiated login is off.
	ReasonUnsolicited Reason = "unsolicited"
	// ReasonInResponseTo: InResponseTo names a request this browser did not
	// make.
	ReasonInResponseTo Reason = "in_response_to"
	// ReasonNoConditions: no Conditions, or Conditions without NotBefore or
	// NotOnOrAfter.
	ReasonNoConditions Reason = "no_conditions"
	// ReasonNoAuthnStatement: no AuthnStatement, or one without AuthnInstant.
	ReasonNoAuthnStatement Reason = "no_authn_statement"
	// ReasonNameID: no NameID, an empty one, one outside the SAML assertion
	// namespace, or one that parsers read differently.
	ReasonNameID Reason = "name_id"
	// ReasonSPNameQualifier: a NameID (the subject's, or one given as an
	// attribute value) whose SPNameQualifier names another SP than our
	// entity id: the value is in that SP's name space (a pairwise
	// pseudonym), not ours.
	ReasonSPNameQualifier Reason = "sp_name_qualifier"
	// ReasonDuplicateAttribute: two Attribute elements with the same Name.
	ReasonDuplicateAttribute Reason = "duplicate_attribute"
	// ReasonRejected: crewjam/saml refused the response for a reason this
	// package did not recognise. Not returned since ParseResponse stopped
	// calling crewjam's ParseXMLResponse (issue 13); kept, as codes never
	// change meaning.
	ReasonRejected Reason = "rejected"

	// ReasonExternalID is returned by ExternalID, not by ParseResponse: the
	// assertion carries no usable external id.
	ReasonExternalID Reason = "external_id"
	// ReasonReplay is never returned by this package. It is reserved for the
	// edge's replay cache (assertion IDs are single-use across replicas), so
	// that all SAML refusals share one error type and one metric.
	ReasonReplay Reason = "replay"
)

// RejectError is a refused SAML response: Reason for metrics and logs, Detail for
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
