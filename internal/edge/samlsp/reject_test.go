package samlsp

import (
	"context"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

// evilCopy returns the signed assertion found in doc, stripped of its
// signature and re-labelled as Mallory's.
func evilCopy(t testing.TB, doc string) (signed, evil string) {
	t.Helper()
	signed = between(t, doc, "<saml:Assertion ", "</saml:Assertion>")
	evil = regexp.MustCompile(`(?s)<ds:Signature .*?</ds:Signature>`).ReplaceAllString(signed, "")
	evil = regexp.MustCompile(`ID="[^"]*"`).ReplaceAllString(evil, `ID="_evil"`)
	evil = replace(t, evil, ">alice@corp.example<", ">mallory@corp.example<")
	return signed, evil
}

// lastCipherValue replaces the content of the last xenc:CipherValue (the
// EncryptedData's, after the EncryptedKey's).
func lastCipherValue(t testing.TB, doc, value string) string {
	t.Helper()
	const open, end = "<xenc:CipherValue>", "</xenc:CipherValue>"
	i := strings.LastIndex(doc, open)
	j := strings.LastIndex(doc, end)
	if i < 0 || j < i {
		t.Fatalf("no CipherValue in\n%s", doc)
	}
	return doc[:i+len(open)] + value + doc[j:]
}

func TestReject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*response)
		config func(*Config)
		ids    []string // default: {requestID}
		mutate func(t testing.TB, xml string) string
		// form replaces the whole form value.
		form func(t testing.TB) string
		want Reason
		// byLibrary: a library layer refuses — goxmldsig (a signature
		// that does not verify) or crewjam's xmlenc (a ciphertext it cannot
		// decrypt, or panics on); this package refuses everything else.
		byLibrary bool
	}{
		// Signatures.
		{
			name: "unsigned_response_and_assertion",
			edit: func(r *response) { r.SignAssertion = false },
			want: ReasonSignature,
		},
		{
			name:      "wrong_certificate",
			edit:      func(r *response) { r.Signer = &testKeys.otherIdP },
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "wrong_key_without_key_info",
			edit: func(r *response) { r.Signer = &testKeys.otherIdP },
			mutate: func(t testing.TB, doc string) string {
				return regexp.MustCompile(`(?s)<ds:KeyInfo>.*?</ds:KeyInfo>`).ReplaceAllString(doc, "")
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "nameid_changed_after_signing",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, ">alice@corp.example</saml:NameID>", ">mallory@corp.example</saml:NameID>")
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "attribute_changed_after_signing",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, ">engineering<", ">superusers<")
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "not_on_or_after_changed_after_signing",
			mutate: func(t testing.TB, doc string) string {
				return regexp.MustCompile(`(<saml:Conditions [^>]*NotOnOrAfter=")[^"]*`).ReplaceAllString(doc, "${1}2099-01-01T00:00:00Z")
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name:   "signed_response_changed_after_signing",
			edit:   func(r *response) { r.SignResponse, r.SignAssertion = true, false },
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, ">admins<", ">superusers<")
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "unsigned_assertion_in_signed_response",
			edit: func(r *response) { r.SignResponse, r.SignAssertion = true, false },
			want: ReasonUnsignedAssertion,
		},
		{
			// crewjam does not check the assertion's own signature when the
			// Response is signed.
			name: "assertion_signed_by_another_key_in_signed_response",
			form: func(t testing.TB) string {
				r := validResponse()
				r.SignResponse = true
				doc := render(t, "response.xml.tmpl", r)
				doc = sign(t, doc, &testKeys.otherIdP, assertionSignatureXPath)
				return b64(string(sign(t, doc, &testKeys.idp, responseSignatureXPath)))
			},
			want:      ReasonSignature,
			byLibrary: true,
		},
		{
			name: "reference_to_whole_document",
			edit: func(r *response) { r.WholeDocumentReference = true },
			want: ReasonSignature,
		},
		{
			name: "reference_to_another_element",
			edit: func(r *response) {
				r.ReferenceURI = "#_other"
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, `<samlp:Status>`, `<samlp:Status ID="_other">`)
				}
			},
			want: ReasonSignature,
		},
		{
			name: "signature_in_unexpected_place",
			mutate: func(t testing.TB, doc string) string {
				sig := between(t, doc, "<ds:Signature ", "</ds:Signature>")
				return replace(t, doc, "<saml:Subject>", "<saml:Subject>"+sig)
			},
			want: ReasonStructure,
		},
		{
			name: "sha1_signature",
			edit: func(r *response) { r.SigAlg, r.DigestAlg = rsaSHA1, sha1URI },
			want: ReasonSHA1,
		},
		{
			name: "sha1_digest_under_sha256_signature",
			edit: func(r *response) { r.DigestAlg = sha1URI },
			want: ReasonSHA1,
		},
		{
			name: "sha1_response_signature_around_sha256_assertion",
			form: func(t testing.TB) string {
				r := validResponse()
				r.SignResponse = true
				doc := render(t, "response.xml.tmpl", r)
				doc = sign(t, doc, &testKeys.idp, assertionSignatureXPath)
				doc = []byte(replace(t, string(doc), `<ds:SignatureMethod Algorithm="`+rsaSHA256, `<ds:SignatureMethod Algorithm="`+rsaSHA1))
				return b64(string(sign(t, doc, &testKeys.idp, responseSignatureXPath)))
			},
			want: ReasonSHA1,
		},

		// Signature wrapping.
		{
			name: "wrapping_unsigned_assertion_beside_signed",
			mutate: func(t testing.TB, doc string) string {
				signed, evil := evilCopy(t, doc)
				return replace(t, doc, signed, evil+signed)
			},
			want: ReasonStructure,
		},
		{
			name: "wrapping_unsigned_assertion_after_signed",
			mutate: func(t testing.TB, doc string) string {
				signed, evil := evilCopy(t, doc)
				return replace(t, doc, signed, signed+evil)
			},
			want: ReasonStructure,
		},
		{
			name: "wrapping_unsigned_assertion_inside_signed",
			mutate: func(t testing.TB, doc string) string {
				_, evil := evilCopy(t, doc)
				return replace(t, doc, "</saml:Subject>", "</saml:Subject><saml:Advice>"+evil+"</saml:Advice>")
			},
			want: ReasonStructure,
		},
		{
			name: "wrapping_signed_moved_to_extensions",
			mutate: func(t testing.TB, doc string) string {
				signed, evil := evilCopy(t, doc)
				doc = replace(t, doc, signed, evil)
				return replace(t, doc, "<samlp:Status>", "<samlp:Extensions>"+signed+"</samlp:Extensions><samlp:Status>")
			},
			want: ReasonStructure,
		},
		{
			name: "wrapping_signed_moved_to_signature_object",
			mutate: func(t testing.TB, doc string) string {
				signed, evil := evilCopy(t, doc)
				sig := between(t, signed, "<ds:Signature ", "</ds:Signature>")
				wrapped := replace(t, sig, "</ds:Signature>", "<ds:Object>"+signed+"</ds:Object></ds:Signature>")
				evil = replace(t, evil, "</saml:Issuer>", "</saml:Issuer>"+wrapped)
				return replace(t, doc, signed, evil)
			},
			want: ReasonStructure,
		},
		{
			name: "wrapping_second_assertion_in_foreign_namespace",
			mutate: func(t testing.TB, doc string) string {
				signed, _ := evilCopy(t, doc)
				return replace(t, doc, signed, signed+`<evil:Assertion xmlns:evil="urn:evil" ID="_e"/>`)
			},
			want: ReasonStructure,
		},
		{
			name: "plaintext_and_encrypted_assertion",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "</samlp:Response>", "<saml:EncryptedAssertion/></samlp:Response>")
			},
			want: ReasonStructure,
		},

		// The NameID.
		{
			name: "comment_inside_nameid",
			edit: func(r *response) { r.NameID = "alice@corp.example.evil.com" },
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, ">alice@corp.example.evil.com<", ">alice@corp.example<!---->.evil.com<")
			},
			want: ReasonComment,
		},
		{
			name: "comment_outside_the_assertion",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<samlp:Status>", "<!-- hello --><samlp:Status>")
			},
			want: ReasonComment,
		},
		{
			name: "nameid_in_foreign_namespace",
			edit: func(r *response) { r.NameIDTag, r.NameIDNSDecl = "evil:NameID", ` xmlns:evil="urn:evil"` },
			want: ReasonNameID,
		},
		{
			name: "nameid_in_foreign_default_namespace",
			edit: func(r *response) { r.NameIDTag, r.NameIDNSDecl = "NameID", ` xmlns="urn:evil"` },
			want: ReasonNameID,
		},
		{
			name: "foreign_nameid_beside_the_real_one",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<saml:SubjectConfirmation ", `<evil:NameID xmlns:evil="urn:evil">mallory</evil:NameID><saml:SubjectConfirmation `)
			},
			want: ReasonNameID,
		},
		{
			name: "empty_nameid",
			edit: func(r *response) { r.NameID = "" },
			want: ReasonNameID,
		},
		{
			name: "blank_nameid",
			edit: func(r *response) { r.NameID = "  " },
			want: ReasonNameID,
		},
		{
			name: "no_nameid",
			edit: func(r *response) { r.OmitNameID = true },
			want: ReasonNameID,
		},

		// A NameID qualified for another SP: its value is that SP's
		// pseudonym (e.g. a pairwise persistent id), meaningless — or
		// someone else — here.
		{
			name: "nameid_of_another_sp",
			edit: func(r *response) { r.SPNameQualifier = otherSPEntityID },
			want: ReasonSPNameQualifier,
		},
		{
			name: "nameid_of_another_sp_with_unsigned_assertions_allowed",
			edit: func(r *response) {
				r.SignResponse, r.SignAssertion, r.SPNameQualifier = true, false, otherSPEntityID
			},
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
			want:   ReasonSPNameQualifier,
		},
		{
			name: "encrypted_nameid_of_another_sp",
			edit: func(r *response) { r.Encrypt, r.SPNameQualifier = true, otherSPEntityID },
			want: ReasonSPNameQualifier,
		},
		{
			name: "encrypted_nameid_of_another_sp_with_unsigned_assertions_allowed",
			edit: func(r *response) {
				r.Encrypt, r.SignResponse, r.SignAssertion, r.SPNameQualifier = true, true, false, otherSPEntityID
			},
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
			want:   ReasonSPNameQualifier,
		},
		{
			name: "nameid_of_another_sp_differing_only_in_case",
			edit: func(r *response) { r.SPNameQualifier = strings.ToUpper(spEntityID) },
			want: ReasonSPNameQualifier,
		},
		{
			// crewjam (encoding/xml) reads an attribute by its local name
			// whatever its prefix; so does the check.
			name: "sp_name_qualifier_in_a_foreign_namespace",
			edit: func(r *response) {
				r.NameIDNSDecl = ` xmlns:evil="urn:evil" evil:SPNameQualifier="` + otherSPEntityID + `"`
			},
			want: ReasonSPNameQualifier,
		},
		{
			// encoding/xml matches an unqualified attribute field by local
			// name, so crewjam reads this declaration as SPNameQualifier.
			name: "sp_name_qualifier_as_a_namespace_declaration",
			edit: func(r *response) { r.NameIDNSDecl = ` xmlns:SPNameQualifier="` + otherSPEntityID + `"` },
			want: ReasonSPNameQualifier,
		},
		{
			name: "ours_and_another_sp_name_qualifier",
			edit: func(r *response) {
				r.SPNameQualifier = spEntityID
				r.NameIDNSDecl = ` xmlns:evil="urn:evil" evil:SPNameQualifier="` + otherSPEntityID + `"`
			},
			want: ReasonSPNameQualifier,
		},
		{
			// A NameID as an attribute value (eduPersonTargetedID) is
			// read into Attributes.
			name: "attribute_nameid_of_another_sp",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:AttributeStatement>", targetedID(otherSPEntityID)+"</saml:AttributeStatement>")
				}
			},
			want: ReasonSPNameQualifier,
		},
		{
			name: "attribute_nameid_of_another_sp_with_unsigned_assertions_allowed",
			edit: func(r *response) {
				r.SignResponse, r.SignAssertion = true, false
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:AttributeStatement>", targetedID(otherSPEntityID)+"</saml:AttributeStatement>")
				}
			},
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
			want:   ReasonSPNameQualifier,
		},

		// Audience, recipient, destination, issuer, status.
		{
			name: "wrong_audience",
			edit: func(r *response) { r.Audiences = []string{"https://other-sp.example.com"} },
			want: ReasonAudience,
		},
		{
			name: "no_audience_restriction",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return regexp.MustCompile(`(?s)<saml:AudienceRestriction>.*?</saml:AudienceRestriction>`).ReplaceAllString(doc, "")
				}
			},
			want: ReasonAudience,
		},
		{
			name: "wrong_recipient",
			edit: func(r *response) { r.Recipient = "https://evil.example.com/acs" },
			want: ReasonRecipient,
		},
		{
			name: "no_recipient",
			edit: func(r *response) { r.Recipient = "" },
			want: ReasonRecipient,
		},
		{
			name: "wrong_destination",
			edit: func(r *response) { r.Destination = "https://evil.example.com/acs" },
			want: ReasonDestination,
		},
		{
			name: "no_destination",
			edit: func(r *response) { r.Destination = "" },
			want: ReasonDestination,
		},
		{
			name: "wrong_issuer",
			edit: func(r *response) {
				r.Issuer, r.ResponseIssuer = "https://evil-idp.example.com", "https://evil-idp.example.com"
			},
			want: ReasonIssuer,
		},
		{
			name: "wrong_assertion_issuer",
			edit: func(r *response) { r.Issuer = "https://evil-idp.example.com" },
			want: ReasonIssuer,
		},
		{
			name: "no_response_issuer",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<saml:Issuer>"+idpEntityID+"</saml:Issuer>", "")
			},
			want: ReasonIssuer,
		},
		// crewjam's checks, ported in its order (issue 13).
		{
			name: "no_status",
			mutate: func(t testing.TB, doc string) string {
				return regexp.MustCompile(`(?s)<samlp:Status>.*?</samlp:Status>`).ReplaceAllString(doc, "")
			},
			want: ReasonStatus,
		},
		{
			name: "response_without_issue_instant",
			mutate: func(t testing.TB, doc string) string {
				return regexp.MustCompile(`(<samlp:Response [^>]*) IssueInstant="[^"]*"`).ReplaceAllString(doc, "$1")
			},
			want: ReasonExpired,
		},
		{
			name: "response_issue_instant_not_a_datetime",
			mutate: func(t testing.TB, doc string) string {
				return regexp.MustCompile(`(<samlp:Response [^>]*) IssueInstant="[^"]*"`).ReplaceAllString(doc, `$1 IssueInstant="yesterday"`)
			},
			want: ReasonMalformed,
		},
		{
			// crewjam required every SubjectConfirmation, bearer or not,
			// to be for our ACS.
			name: "holder_of_key_confirmation_for_another_recipient",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:Subject>", `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"><saml:SubjectConfirmationData NotOnOrAfter="`+ts(r.Now.Add(time.Minute))+`" Recipient="https://evil.example.com/acs"/></saml:SubjectConfirmation></saml:Subject>`)
				}
			},
			want: ReasonRecipient,
		},
		{
			name: "assertion_without_issue_instant",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return regexp.MustCompile(`(<saml:Assertion [^>]*) IssueInstant="[^"]*"`).ReplaceAllString(doc, "$1")
				}
			},
			want: ReasonExpired,
		},
		{
			name: "idp_status_responder",
			edit: func(r *response) { r.StatusCode = "urn:oasis:names:tc:SAML:2.0:status:Responder" },
			want: ReasonStatus,
		},

		// Time.
		{
			name: "expired",
			edit: func(r *response) {
				r.NotOnOrAfter, r.SCDNotOnOrAfter = ts(r.Now.Add(-10*time.Minute)), ts(r.Now.Add(-10*time.Minute))
			},
			want: ReasonExpired,
		},
		{
			// crewjam allows 180s of skew; we allow 90s.
			name: "expired_two_minutes_ago",
			edit: func(r *response) { r.NotOnOrAfter = ts(r.Now.Add(-2 * time.Minute)) },
			want: ReasonExpired,
		},
		{
			name: "subject_confirmation_expired_two_minutes_ago",
			edit: func(r *response) { r.SCDNotOnOrAfter = ts(r.Now.Add(-2 * time.Minute)) },
			want: ReasonExpired,
		},
		{
			// crewjam's own bound is relaxed to 5m20s: ours (90s of skew
			// and 20s for delivery) refuses.
			name: "issued_five_minutes_ago",
			edit: func(r *response) { r.AssertionIssueInstant = ts(r.Now.Add(-5 * time.Minute)) },
			want: ReasonExpired,
		},
		{
			name: "response_issued_five_minutes_ago",
			edit: func(r *response) { r.IssueInstant = ts(r.Now.Add(-5 * time.Minute)) },
			want: ReasonExpired,
		},
		{
			name: "not_yet_valid",
			edit: func(r *response) { r.NotBefore = ts(r.Now.Add(10 * time.Minute)) },
			want: ReasonNotYetValid,
		},
		{
			name: "not_yet_valid_for_two_minutes",
			edit: func(r *response) { r.NotBefore = ts(r.Now.Add(2 * time.Minute)) },
			want: ReasonNotYetValid,
		},
		{
			name: "issued_in_the_future",
			edit: func(r *response) { r.AssertionIssueInstant = ts(r.Now.Add(10 * time.Minute)) },
			want: ReasonNotYetValid,
		},
		{
			name: "authenticated_in_the_future",
			edit: func(r *response) { r.AuthnInstant = ts(r.Now.Add(10 * time.Minute)) },
			want: ReasonNotYetValid,
		},
		{
			name: "expired_by_the_clock_of_config_now",
			config: func(c *Config) {
				c.Now = func() time.Time { return time.Now().Add(8 * time.Minute) }
			},
			want: ReasonExpired,
		},

		{
			name: "no_bearer_subject_confirmation",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "cm:bearer", "cm:sender-vouches")
				}
			},
			want: ReasonSubjectConfirmation,
		},

		// Binding to the browser.
		{
			name: "unsolicited_when_idp_initiated_is_off",
			edit: func(r *response) { r.InResponseTo, r.SCDInResponseTo = "", "" },
			ids:  []string{},
			want: ReasonUnsolicited,
		},
		{
			name: "solicited_response_but_browser_started_no_login",
			ids:  []string{},
			want: ReasonUnsolicited,
		},
		{
			name: "unsolicited_while_a_login_is_pending",
			edit: func(r *response) { r.InResponseTo, r.SCDInResponseTo = "", "" },
			want: ReasonUnsolicited,
		},
		{
			name: "in_response_to_only_on_the_unsigned_response",
			edit: func(r *response) { r.SCDInResponseTo = "" },
			want: ReasonUnsolicited,
		},
		{
			name: "in_response_to_another_browser",
			edit: func(r *response) { r.InResponseTo, r.SCDInResponseTo = "id-other-browser", "id-other-browser" },
			want: ReasonInResponseTo,
		},
		{
			name:   "in_response_to_another_browser_with_idp_initiated_on",
			config: func(c *Config) { c.AllowIDPInitiated = true },
			edit:   func(r *response) { r.InResponseTo, r.SCDInResponseTo = "id-other-browser", "id-other-browser" },
			ids:    []string{},
			want:   ReasonInResponseTo,
		},
		{
			name:   "assertion_in_response_to_another_browser_with_idp_initiated_on",
			config: func(c *Config) { c.AllowIDPInitiated = true },
			edit:   func(r *response) { r.InResponseTo = "" },
			ids:    []string{"id-this-browser"},
			want:   ReasonInResponseTo,
		},
		{
			name: "response_and_assertion_answer_different_requests",
			edit: func(r *response) { r.SCDInResponseTo = "id-req-2" },
			ids:  []string{requestID, "id-req-2"},
			want: ReasonInResponseTo,
		},

		// Markup.
		{
			name: "doctype",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "?>", "?>\n<!DOCTYPE samlp:Response>")
			},
			want: ReasonDoctype,
		},
		{
			name: "entity_declaration",
			mutate: func(t testing.TB, doc string) string {
				doc = replace(t, doc, "?>", `?>`+"\n"+`<!DOCTYPE samlp:Response [<!ENTITY who "mallory@corp.example">]>`)
				return replace(t, doc, ">alice@corp.example</saml:NameID>", ">&who;</saml:NameID>")
			},
			want: ReasonDoctype,
		},
		{
			name: "external_entity",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "?>", `?>`+"\n"+`<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>`)
			},
			want: ReasonDoctype,
		},
		{
			name: "processing_instruction",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<samlp:Status>", "<?evil instruction?><samlp:Status>")
			},
			want: ReasonStructure,
		},
		{
			name: "non_utf8_encoding",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, `encoding="UTF-8"`, `encoding="ISO-8859-1"`)
			},
			want: ReasonMalformed,
		},
		{
			name: "duplicate_attribute_on_an_element",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<samlp:Status>", `<samlp:Status a="1" a="2">`)
			},
			want: ReasonStructure,
		},
		{
			name: "duplicate_id",
			mutate: func(t testing.TB, doc string) string {
				id := regexp.MustCompile(`<saml:Assertion [^>]*ID="([^"]*)"`).FindStringSubmatch(doc)[1]
				return regexp.MustCompile(`(<samlp:Response [^>]*ID=")[^"]*`).ReplaceAllString(doc, "${1}"+id)
			},
			want: ReasonStructure,
		},
		{
			name: "prefixed_second_id_attribute",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<saml:Assertion ", `<saml:Assertion xmlns:x="urn:x" x:ID="_evil" `)
			},
			want: ReasonStructure,
		},
		{
			name: "nested_too_deep",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, "<samlp:Status>", "<samlp:Extensions>"+strings.Repeat("<x>", 40)+strings.Repeat("</x>", 40)+"</samlp:Extensions><samlp:Status>")
			},
			want: ReasonStructure,
		},
		{
			name: "not_a_response",
			mutate: func(t testing.TB, doc string) string {
				doc = replace(t, doc, "<samlp:Response ", "<samlp:LogoutResponse ")
				return replace(t, doc, "</samlp:Response>", "</samlp:LogoutResponse>")
			},
			want: ReasonStructure,
		},
		{
			name: "response_in_foreign_namespace",
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, `xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"`, `xmlns:samlp="urn:evil"`)
			},
			want: ReasonStructure,
		},

		// Content.
		{
			name: "no_conditions",
			edit: func(r *response) { r.OmitConditions = true },
			want: ReasonNoConditions,
		},
		{
			name: "conditions_without_not_on_or_after",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return regexp.MustCompile(`(<saml:Conditions [^>]*) NotOnOrAfter="[^"]*"`).ReplaceAllString(doc, "$1")
				}
			},
			want: ReasonNoConditions,
		},
		{
			name: "no_authn_statement",
			edit: func(r *response) { r.OmitAuthnStatement = true },
			want: ReasonNoAuthnStatement,
		},
		{
			name: "duplicate_attribute_names",
			edit: func(r *response) {
				r.Attributes = append(r.Attributes, attribute{Name: "groups", Values: []string{"superusers"}})
			},
			want: ReasonDuplicateAttribute,
		},
		{
			name: "attribute_statement_in_foreign_namespace",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:Assertion>", `<evil:AttributeStatement xmlns:evil="urn:evil"><evil:Attribute Name="role"><evil:AttributeValue>admin</evil:AttributeValue></evil:Attribute></evil:AttributeStatement></saml:Assertion>`)
				}
			},
			want: ReasonStructure,
		},

		// Encoding and size.
		{
			name: "oversized_form_value",
			form: func(t testing.TB) string { return strings.Repeat("A", DefaultMaxResponseBytes+4) },
			want: ReasonTooLarge,
		},
		{
			name:   "over_the_configured_limit",
			config: func(c *Config) { c.MaxResponseBytes = 4096 },
			want:   ReasonTooLarge,
		},
		{
			name: "malformed_base64",
			form: func(t testing.TB) string { return "PHNhbWxwOlJlc3BvbnNlIC8+!!" },
			want: ReasonMalformed,
		},
		{
			name: "empty_form_value",
			form: func(t testing.TB) string { return "" },
			want: ReasonMalformed,
		},
		{
			name: "malformed_xml",
			form: func(t testing.TB) string {
				return b64(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><a></b>`)
			},
			want: ReasonMalformed,
		},
		{
			name: "truncated_xml",
			mutate: func(t testing.TB, doc string) string {
				return doc[:len(doc)/2]
			},
			want: ReasonMalformed,
		},
		{
			name: "not_utf8",
			form: func(t testing.TB) string {
				return base64.StdEncoding.EncodeToString([]byte("\xfe\xff\x00<\x00a\x00/\x00>"))
			},
			want: ReasonMalformed,
		},

		// Encrypted assertions.
		{
			// crewjam/saml's xmlenc hands a ciphertext that is not a whole
			// number of AES blocks to cipher.CBC, which panics. Anyone can
			// encrypt for our public certificate: no signature is needed to
			// reach it.
			name: "crewjam_panic_on_truncated_ciphertext",
			edit: func(r *response) { r.Encrypt = true },
			mutate: func(t testing.TB, doc string) string {
				return lastCipherValue(t, doc, base64.StdEncoding.EncodeToString(make([]byte, 21)))
			},
			want:      ReasonMalformed,
			byLibrary: true,
		},
		{
			// crewjam dereferenced the missing Conditions and panicked
			// (reason malformed); the decrypted assertion now has the
			// structure checks of a plaintext one.
			name: "encrypted_assertion_without_conditions",
			edit: func(r *response) { r.Encrypt, r.OmitConditions = true, true },
			want: ReasonNoConditions,
		},
		{
			name:      "encrypted_for_another_key",
			edit:      func(r *response) { r.Encrypt, r.EncryptFor = true, &testKeys.otherIdP },
			want:      ReasonDecrypt,
			byLibrary: true,
		},
		{
			name: "encrypted_comment_inside_nameid",
			edit: func(r *response) {
				r.Encrypt, r.NameID = true, "alice@corp.example.evil.com"
				r.BeforeEncrypt = func(t testing.TB, doc string) string {
					return replace(t, doc, ">alice@corp.example.evil.com<", ">alice@corp.example<!---->.evil.com<")
				}
			},
			want: ReasonComment,
		},
		{
			name: "encrypted_nameid_in_foreign_namespace",
			edit: func(r *response) {
				r.Encrypt, r.NameIDTag, r.NameIDNSDecl = true, "evil:NameID", ` xmlns:evil="urn:evil"`
			},
			want: ReasonNameID,
		},
		{
			name: "encrypted_assertion_wrapping_a_second_assertion",
			edit: func(r *response) {
				r.Encrypt = true
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:Subject>", `</saml:Subject><saml:Advice><saml:Assertion ID="_inner" Version="2.0"/></saml:Advice>`)
				}
			},
			want: ReasonStructure,
		},
		{
			name: "encrypted_sha1_signature",
			edit: func(r *response) { r.Encrypt, r.SigAlg, r.DigestAlg = true, rsaSHA1, sha1URI },
			want: ReasonSHA1,
		},
		{
			name: "encrypted_unsigned_assertion_in_signed_response",
			edit: func(r *response) { r.Encrypt, r.SignAssertion, r.SignResponse = true, false, true },
			want: ReasonUnsignedAssertion,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var edits []func(*Config)
			if tt.config != nil {
				edits = append(edits, tt.config)
			}
			sp := newSP(t, edits...)
			var form string
			if tt.form != nil {
				form = tt.form(t)
			} else {
				r := validResponse()
				if tt.edit != nil {
					tt.edit(&r)
				}
				doc := build(t, r)
				if tt.mutate != nil {
					doc = tt.mutate(t, doc)
				}
				form = b64(doc)
			}
			ids := []string{requestID}
			if tt.ids != nil {
				ids = tt.ids
			}
			got, err := sp.ParseResponse(context.Background(), form, ids)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			t.Log(err)
			assertReject(t, err, tt.want)
			var re *RejectError
			errors.As(err, &re)
			by := strings.HasPrefix(re.Detail, "goxmldsig:") || strings.HasPrefix(re.Detail, "xmlenc:")
			if by != tt.byLibrary {
				t.Errorf("refused by goxmldsig or xmlenc: got %v, want %v (%v)", by, tt.byLibrary, err)
			}
		})
	}
}

// otherSPEntityID is another service provider of the same IdP.
const otherSPEntityID = "https://other-sp.example.com/saml/metadata"

// targetedID is an eduPersonTargetedID attribute whose NameID is qualified
// for spNameQualifier.
func targetedID(spNameQualifier string) string {
	return `<saml:Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.10" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue>` +
		`<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" NameQualifier="` + idpEntityID + `" SPNameQualifier="` + spNameQualifier + `">targeted-1</saml:NameID>` +
		`</saml:AttributeValue></saml:Attribute>`
}

func assertReject(t testing.TB, err error, want Reason) {
	t.Helper()
	var re *RejectError
	if !errors.As(err, &re) {
		t.Fatalf("got %T %v, want a *RejectError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) is false", err)
	}
	if re.Reason != want {
		t.Fatalf("reason: got %q, want %q (%v)", re.Reason, want, err)
	}
	if !errors.Is(err, &RejectError{Reason: want}) {
		t.Errorf("errors.Is(err, &RejectError{Reason: %q}) is false", want)
	}
	if ReasonOf(err) != want {
		t.Errorf("ReasonOf: got %q, want %q", ReasonOf(err), want)
	}
	if re.Detail == "" {
		t.Error("empty Detail")
	}
}
