// Package samlsp is sso-edge's SAML 2.0 service provider: a guard layer
// around github.com/crewjam/saml v0.5.1's ServiceProvider that closes the
// gaps listed in issue 3. Signatures are verified by crewjam/saml (with
// goxmldsig v1.6.1); this package adds no cryptography of its own.
//
// # API
//
//	sp, err := samlsp.New(samlsp.Config{...})       // one per connection
//	sp.Metadata()                                    // our SP metadata
//	u, requestID, err := sp.AuthnRequestURL(relay)   // SP-initiated login
//	a, err := sp.ParseResponse(ctx, form, requestIDs) // the ACS POST
//	id, err := samlsp.ExternalID(a, samlsp.ExternalIDRule{...})
//
// Every refusal is a *RejectError: errors.Is(err, ErrInvalid) holds, and
// its Reason is a short stable code (ReasonSignature, ReasonExpired, ...)
// for logs and metrics; ReasonOf(err) extracts it. Its Detail is for
// operators' logs and is never to be shown to a browser.
//
// Departures from the suggested API, and why:
//   - Config.AllowUnsignedAssertion replaces RequireSignedAssertion (default
//     true): a Go bool defaults to false, so the safe default is the zero
//     value, like AllowIDPInitiated and AllowSHA1.
//   - ExternalID takes an ExternalIDRule {Attribute, AllowUnspecifiedNameID}
//     instead of a bare attribute name, so "unspecified is explicitly
//     allowed" has a place. When Attribute is set the NameID is never used,
//     not even as a fallback: a missing attribute must not silently switch a
//     user's key.
//   - Assertion.Attributes is keyed by Name only. FriendlyName is advisory
//     in SAML (two attributes may share one, and an IdP may send any), so it
//     is never a key; Assertion.FriendlyNames maps Name to FriendlyName for
//     display. Assertion.ReplayUntil says how long the caller's replay cache
//     must remember Assertion.ID.
//   - The SHA-1 policy is applied before crewjam, to the Signature elements
//     themselves: a SHA-1 response is refused ("sha1") without costing an RSA
//     verification, even if its signature would not have verified.
//
// # What ParseResponse checks
//
// Before crewjam, on the form value and the parsed document:
//   - size (MaxResponseBytes, on the base64 form, before decoding), base64,
//     UTF-8 only;
//   - no DOCTYPE, ENTITY or other markup declaration (found on the bytes),
//     no processing instruction but the XML declaration, no comment
//     anywhere, no attribute twice on an element, at most one ID attribute
//     per element and no ID value twice, nesting at most 32 deep;
//   - the root is a protocol-namespace Response, Version 2.0, with an ID and
//     a saml:Issuer; exactly one Assertion or EncryptedAssertion in the
//     whole document (counted by local name, whatever the namespace), a
//     child of the Response;
//   - ds:Signature only on the Response and on the Assertion, at most one
//     each, holding only SignedInfo, SignatureValue and KeyInfo (no
//     ds:Object), with exactly one Reference whose URI is "#" + the parent's
//     ID, transforms goxmldsig implements, and algorithms from an allow-list
//     (RSA/ECDSA with SHA-256/384/512; SHA-1 only with AllowSHA1);
//   - for an EncryptedAssertion: one xenc:EncryptedData, and only AES-CBC or
//     AES-128-GCM data encryption with RSA-OAEP (mgf1p) key transport;
//   - for a plaintext Assertion (and, after crewjam, for a decrypted one):
//     ID and Version, one saml:Issuer, one saml:Subject with exactly one
//     saml:NameID that has text and no child elements (a NameID in any other
//     namespace anywhere in the assertion is refused), one Conditions with
//     NotBefore and NotOnOrAfter, one AuthnStatement, and every element in
//     the SAML assertion namespace except the Signature and free-form
//     content (AttributeValue, Advice, AuthnContextDecl,
//     SubjectConfirmationData);
//   - that crewjam would read the Response and the Assertion with the same
//     namespaces as the document gives them (see "prefixes" below).
//
// crewjam's ParseXMLResponse then runs inside recover() (a panic becomes
// reason "malformed"): signature verification against the IdP metadata's
// signing certificates, decryption, Status Success, Issuer, Destination,
// Recipient, and its own time bounds. Its errors are mapped to reasons by
// their message (crewjamMessages; the tests pin every mapping real inputs
// reach).
//
// After crewjam, on the verified assertion (values from crewjam's struct,
// structure from the same element, which for an encrypted assertion is
// decrypted again — crewjam does not return it):
//   - the verified assertion's ID equals the ID of the element the
//     structure checks examined;
//   - unless AllowUnsignedAssertion, the assertion carries its own
//     signature, verified by goxmldsig even when the Response is signed
//     (crewjam then skips it);
//   - Issuer (Response and Assertion) is the IdP's entity id; Destination is
//     present and equals our ACS URL;
//   - Conditions NotBefore/NotOnOrAfter, every bearer
//     SubjectConfirmationData's Recipient (our ACS) and NotOnOrAfter,
//     AuthnInstant and SessionNotOnOrAfter, the Response's and the
//     Assertion's IssueInstant (neither in the future nor older than the
//     skew plus DeliveryAllowance), all with ClockSkew;
//   - at least one AudienceRestriction, each naming our entity id;
//   - InResponseTo: if the browser started no login and IdP-initiated login
//     is off, "unsolicited"; all InResponseTo values present must agree and
//     name a request of this browser ("in_response_to"), even when
//     IdP-initiated login is allowed; with IdP-initiated login off the ID
//     must be in the signed assertion's SubjectConfirmationData;
//   - NameID non-empty and read identically by crewjam and etree;
//   - the subject's NameID, and any NameID given as an attribute value,
//     carries no SPNameQualifier other than our entity id (a value in
//     another SP's name space, "sp_name_qualifier");
//   - no two Attributes with the same Name.
//
// ParseResponse keeps no state: single use of assertion IDs (across edge
// replicas) is the caller's, until Assertion.ReplayUntil.
//
// # What crewjam/saml v0.5.1 does and does not do
//
// TestCrewjamGaps runs crewjam alone on the attacks above and pins what it
// does. It accepts: a NameID in a foreign namespace (reading a foreign
// NameID placed after the real one as the subject), comments inside the
// NameID, a NameID qualified for another SP, SHA-1, duplicate attribute
// names, no AuthnStatement, no AudienceRestriction, no Destination on an
// unsigned Response, a signed Response around an unsigned assertion (and
// does not verify the assertion's own signature then), several assertions
// (it uses the first valid one); it panics on a signed assertion without Conditions, and in
// xmlenc on an encrypted assertion whose ciphertext is not a whole number
// of AES blocks — reachable without any signature, since anyone can encrypt
// for our public certificate. It keeps only the last Audience of an
// AudienceRestriction (refusing valid assertions), and asks IdPs for
// transient NameIDs by default (we ask for persistent ones). Its own
// InResponseTo and audience checks are therefore replaced, not just
// supplemented (see New).
//
// Time: crewjam reads the wall clock through its package-level saml.TimeNow
// and applies bounds read from package variables — an assertion or Response
// issued more than MaxIssueDelay (90s, with no skew) ago is refused, and
// MaxClockSkew (180s) of skew on NotBefore/NotOnOrAfter. Left alone, they
// made ClockSkew a one-way setting: it could tighten them, never widen
// them (an IdP 150s behind was refused with a skew of 5m). This package
// relaxes both, once, in an init function (before any goroutine can read
// them), to the widest skew a connection may have (MaxClockSkew, plus
// DeliveryAllowance on IssueInstant), and never touches them again: they
// are shared by every connection, so they are never set per connection or
// per request. Every time bound is then this package's, after crewjam, on
// the verified assertion, with the connection's ClockSkew both ways:
// IssueInstant (Response and Assertion) in [now - skew -
// DeliveryAllowance, now + skew]; NotBefore, NotOnOrAfter, the bearer
// data's NotBefore/NotOnOrAfter, AuthnInstant and SessionNotOnOrAfter with
// the skew. Config.Now drives these checks and the assertion signature
// check, not crewjam's, and is meant for tests.
//
// # Encrypted assertions
//
// Tested with xmlsec1 as the encrypter (TestEncryptionAlgorithms,
// TestAssertionNamespaces): AES-128/192/256-CBC and AES-128-GCM with
// RSA-OAEP (mgf1p) key transport work, with the EncryptedKey inside
// EncryptedData's KeyInfo or beside it, whether or not the Response is
// signed. Refused: AES-192/256-GCM and XML Encryption 1.1 rsa-oaep
// (crewjam cannot decrypt them), RSA PKCS#1 v1.5 key transport and 3DES
// (we refuse them before decrypting). The SP key must be RSA.
//
// Prefixes: a decrypted assertion must be self-contained. One that declares
// its namespaces itself works whatever the style — a saml: or saml2:
// prefix, the default namespace for the assertion and for the Signature
// (as Azure AD sends), even a prefix the Response binds to another
// namespace. One that uses a prefix declared only on the Response — the
// pysaml2 output the issue mentions, and what xmlsec1 produces when it
// encrypts such an assertion in place — fails: crewjam parses the
// plaintext on its own, where the prefix is unbound (reason "decrypt",
// "undeclared namespace prefix"). In plaintext that same assertion works.
// Conversely, in plaintext crewjam reads a copy of each element on which
// it re-declares every prefix once for the whole document (and loses a
// default namespace declared above the element): a Response whose prefix
// is re-bound to another namespace inside the assertion, or whose
// assertion relies on a default namespace declared on the Response, would
// be read in the wrong namespace. checkCrewjamView refuses such documents
// ("structure") before crewjam sees them; encrypted, the first works and
// the second no longer matches its signature. All of these are
// limitations of crewjam, pinned by tests that assert the outcome.
//
// # Other duties of the caller
//
// Bind the request ID from AuthnRequestURL to the browser (a tracking
// cookie, which must be SameSite=None; Secure since the IdP's POST to the
// ACS is cross-site) and keep CSRF guards away from the ACS. RelayState is
// limited to 80 bytes: pass an opaque handle to the return URL, never the
// URL itself.
package samlsp
