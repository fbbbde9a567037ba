package samlsp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
)

// bareCrewjam is crewjam/saml's ServiceProvider configured like ours but
// with crewjam's own checks only.
func bareCrewjam() *saml.ServiceProvider {
	cfg := testConfig()
	return &saml.ServiceProvider{
		EntityID:    cfg.EntityID,
		Key:         cfg.Key,
		Certificate: cfg.Certificate,
		MetadataURL: cfg.MetadataURL,
		AcsURL:      cfg.ACSURL,
		IDPMetadata: cfg.IDPMetadata,
	}
}

// crewjamOutcome runs crewjam's bare ParseXMLResponse and says what it did:
// "accepted NameID=...", "refused: ..." or "panicked: ...".
func crewjamOutcome(doc string) (outcome string) {
	defer func() {
		if r := recover(); r != nil {
			outcome = fmt.Sprintf("panicked: %v", r)
		}
	}()
	a, err := bareCrewjam().ParseXMLResponse([]byte(doc), []string{requestID}, mustURL(spACSURL))
	if err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) {
			return "refused: " + ire.PrivateErr.Error()
		}
		return "refused: " + err.Error()
	}
	return "accepted NameID=" + a.Subject.NameID.Value
}

// TestCrewjamGaps documents, on real inputs, what crewjam/saml v0.5.1 does
// with the responses the guard layer exists to refuse, beside what we do.
// If an upgrade of crewjam closes a gap, its line fails here: the guard may
// then be simplified (never silently).
func TestCrewjamGaps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		edit        func(*response)
		mutate      func(t testing.TB, xml string) string
		crewjamDoes string // prefix of crewjamOutcome
		we          Reason // "" = we accept
	}{
		{
			name: "comment_inside_nameid",
			edit: func(r *response) { r.NameID = "alice@corp.example.evil.com" },
			mutate: func(t testing.TB, doc string) string {
				return replace(t, doc, ">alice@corp.example.evil.com<", ">alice@corp.example<!---->.evil.com<")
			},
			// The signature still verifies (exclusive c14n drops comments);
			// crewjam happens to concatenate the text, others truncate it.
			crewjamDoes: "accepted NameID=alice@corp.example.evil.com",
			we:          ReasonComment,
		},
		{
			name:        "nameid_in_foreign_namespace",
			edit:        func(r *response) { r.NameIDTag, r.NameIDNSDecl = "evil:NameID", ` xmlns:evil="urn:evil"` },
			crewjamDoes: "accepted NameID=alice@corp.example",
			we:          ReasonNameID,
		},
		{
			// A signed assertion whose Subject also carries a NameID in
			// another namespace (for example from an IdP extension that
			// copies user-controlled data): crewjam reads the last one.
			name: "foreign_nameid_after_the_real_one",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "<saml:SubjectConfirmation ", `<ext:NameID xmlns:ext="urn:example:ext">mallory@corp.example</ext:NameID><saml:SubjectConfirmation `)
				}
			},
			crewjamDoes: "accepted NameID=mallory@corp.example",
			we:          ReasonNameID,
		},
		{
			name:        "nameid_of_another_sp",
			edit:        func(r *response) { r.SPNameQualifier = otherSPEntityID },
			crewjamDoes: "accepted NameID=alice@corp.example",
			we:          ReasonSPNameQualifier,
		},
		{
			name:        "no_conditions",
			edit:        func(r *response) { r.OmitConditions = true },
			crewjamDoes: "panicked: runtime error: invalid memory address or nil pointer dereference",
			we:          ReasonNoConditions,
		},
		{
			name:        "no_authn_statement",
			edit:        func(r *response) { r.OmitAuthnStatement = true },
			crewjamDoes: "accepted",
			we:          ReasonNoAuthnStatement,
		},
		{
			name: "duplicate_attribute_names",
			edit: func(r *response) {
				r.Attributes = append(r.Attributes, attribute{Name: "groups", Values: []string{"superusers"}})
			},
			crewjamDoes: "accepted",
			we:          ReasonDuplicateAttribute,
		},
		{
			name:        "sha1_signature",
			edit:        func(r *response) { r.SigAlg, r.DigestAlg = rsaSHA1, sha1URI },
			crewjamDoes: "accepted",
			we:          ReasonSHA1,
		},
		{
			name:        "unsigned_assertion_in_signed_response",
			edit:        func(r *response) { r.SignResponse, r.SignAssertion = true, false },
			crewjamDoes: "accepted",
			we:          ReasonUnsignedAssertion,
		},
		{
			name: "second_unsigned_assertion_beside_the_signed_one",
			mutate: func(t testing.TB, doc string) string {
				signed, evil := evilCopy(t, doc)
				return replace(t, doc, signed, evil+signed)
			},
			// crewjam skips the unsigned one and returns the signed one:
			// safe today, but "several assertions, use the valid one" is
			// the pattern wrapping attacks feed on.
			crewjamDoes: "accepted NameID=alice@corp.example",
			we:          ReasonStructure,
		},
		{
			name:        "no_destination",
			edit:        func(r *response) { r.Destination = "" },
			crewjamDoes: "accepted",
			we:          ReasonDestination,
		},
		{
			name: "no_audience_restriction",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, between(t, doc, "<saml:AudienceRestriction>", "</saml:AudienceRestriction>"), "")
				}
			},
			crewjamDoes: "accepted",
			we:          ReasonAudience,
		},
		{
			name:        "our_audience_first_of_two_in_one_restriction",
			edit:        func(r *response) { r.Audiences = []string{spEntityID, "https://other-sp.example.com"} },
			crewjamDoes: "refused: assertion Conditions AudienceRestriction does not contain",
			we:          "",
		},
		{
			name:        "expired_two_minutes_ago",
			edit:        func(r *response) { r.NotOnOrAfter = ts(time.Now().Add(-2 * time.Minute)) },
			crewjamDoes: "accepted",
			we:          ReasonExpired,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validResponse()
			if tt.edit != nil {
				tt.edit(&r)
			}
			doc := build(t, r)
			if tt.mutate != nil {
				doc = tt.mutate(t, doc)
			}
			if got := crewjamOutcome(doc); !strings.HasPrefix(got, tt.crewjamDoes) {
				t.Errorf("crewjam: got %q, want %q...", got, tt.crewjamDoes)
			}
			_, err := newSP(t).ParseResponse(context.Background(), b64(doc), []string{requestID})
			if tt.we == "" {
				if err != nil {
					t.Errorf("we refused: %v", err)
				}
				return
			}
			assertReject(t, err, tt.we)
		})
	}
}

// TestCrewjamRequestsTransientNameIDs documents crewjam's default
// NameIDPolicy (transient) and that we ask for persistent ones.
func TestCrewjamRequestsTransientNameIDs(t *testing.T) {
	t.Parallel()
	req, err := bareCrewjam().MakeAuthenticationRequest(idpSSOURL, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		t.Fatal(err)
	}
	if got := *req.NameIDPolicy.Format; got != string(saml.TransientNameIDFormat) {
		t.Errorf("crewjam's default NameIDPolicy: got %q, want transient", got)
	}
	if got := authnRequest(t, newSP(t)).NameIDPolicy.Format; got == nil || *got != string(saml.PersistentNameIDFormat) {
		t.Errorf("our NameIDPolicy: got %v, want persistent", got)
	}
}
