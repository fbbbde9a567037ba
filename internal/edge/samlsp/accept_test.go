package samlsp

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAcceptSignedAssertion(t *testing.T) {
	t.Parallel()
	sp := newSP(t)
	r := validResponse()
	start := time.Now()
	got, err := sp.ParseResponse(context.Background(), b64(build(t, r)), []string{"id-other", requestID})
	if err != nil {
		t.Fatalf("ParseResponse: %v", err)
	}
	if got.ID != r.AssertionID || got.Issuer != idpEntityID || got.NameID != "alice@corp.example" ||
		got.NameIDFormat != r.NameIDFormat || got.SessionIndex != "_session-1" || got.InResponseTo != requestID {
		t.Errorf("got %+v", got)
	}
	wantAttrs := map[string][]string{
		"urn:oid:0.9.2342.19200300.100.1.3": {"alice@corp.example"},
		"employeeNumber":                    {"E-1001"},
		"groups":                            {"engineering", "admins"},
	}
	if !reflect.DeepEqual(got.Attributes, wantAttrs) {
		t.Errorf("attributes: got %v, want %v", got.Attributes, wantAttrs)
	}
	if want := map[string]string{"urn:oid:0.9.2342.19200300.100.1.3": "mail"}; !reflect.DeepEqual(got.FriendlyNames, want) {
		t.Errorf("friendly names: got %v, want %v", got.FriendlyNames, want)
	}
	// NotOnOrAfter: the earliest of Conditions' and the bearer data's (both
	// now+5m, rendered to the second).
	if d := got.NotOnOrAfter.Sub(start); d < 4*time.Minute || d > 5*time.Minute+time.Second {
		t.Errorf("NotOnOrAfter %s is %s from now, want about 5m", got.NotOnOrAfter, d)
	}
	if got.ReplayUntil != got.NotOnOrAfter.Add(DefaultClockSkew) {
		t.Errorf("ReplayUntil %s, want NotOnOrAfter+%s", got.ReplayUntil, DefaultClockSkew)
	}
	if got.AuthnInstant.IsZero() {
		t.Error("AuthnInstant is zero")
	}
}

func TestAccept(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		edit   func(*response)
		config func(*Config)
		ids    []string
		mutate func(t testing.TB, xml string) string
		encode func(xml string) string
	}{
		{name: "signed_response_and_assertion", edit: func(r *response) { r.SignResponse = true }},
		{
			name:   "signed_response_only_when_unsigned_assertions_allowed",
			edit:   func(r *response) { r.SignResponse, r.SignAssertion = true, false },
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
		},
		{
			name: "idp_initiated_when_allowed",
			edit: func(r *response) { r.InResponseTo, r.SCDInResponseTo = "", "" },
			config: func(c *Config) {
				c.AllowIDPInitiated = true
			},
			ids: []string{},
		},
		{
			name:   "idp_initiated_when_allowed_while_a_login_is_pending",
			edit:   func(r *response) { r.InResponseTo, r.SCDInResponseTo = "", "" },
			config: func(c *Config) { c.AllowIDPInitiated = true },
		},
		{
			name:   "sp_initiated_when_idp_initiated_is_also_allowed",
			config: func(c *Config) { c.AllowIDPInitiated = true },
		},
		{
			name:   "sha1_when_allowed",
			edit:   func(r *response) { r.SigAlg, r.DigestAlg = rsaSHA1, sha1URI },
			config: func(c *Config) { c.AllowSHA1 = true },
		},
		{
			// crewjam keeps only the last Audience of a restriction.
			name: "our_audience_first_of_two",
			edit: func(r *response) { r.Audiences = []string{spEntityID, "https://other-sp.example.com"} },
		},
		{
			name: "base64_wrapped_at_76_columns",
			encode: func(xml string) string {
				s := b64(xml)
				var b strings.Builder
				for len(s) > 76 {
					b.WriteString(s[:76] + "\r\n")
					s = s[76:]
				}
				b.WriteString(s)
				return b.String()
			},
		},
		{
			name: "no_xml_declaration",
			mutate: func(t testing.TB, xml string) string {
				return replace(t, xml, `<?xml version="1.0" encoding="UTF-8"?>`, "")
			},
		},
		{name: "sp_name_qualifier_ours", edit: func(r *response) { r.SPNameQualifier = spEntityID }},
		{
			name:   "sp_name_qualifier_ours_with_unsigned_assertions_allowed",
			edit:   func(r *response) { r.SignResponse, r.SignAssertion, r.SPNameQualifier = true, false, spEntityID },
			config: func(c *Config) { c.AllowUnsignedAssertion = true },
		},
		{
			name: "encrypted_sp_name_qualifier_ours",
			edit: func(r *response) { r.Encrypt, r.SPNameQualifier = true, spEntityID },
		},
		{
			// An empty SPNameQualifier names no other SP: it is as absent.
			name: "empty_sp_name_qualifier",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "<saml:NameID ", `<saml:NameID SPNameQualifier="" `)
				}
			},
		},
		{
			name: "attribute_nameid_ours",
			edit: func(r *response) {
				r.BeforeSign = func(t testing.TB, doc string) string {
					return replace(t, doc, "</saml:AttributeStatement>", targetedID(spEntityID)+"</saml:AttributeStatement>")
				}
			},
		},
		{name: "encrypted_aes256_cbc_rsa_oaep", edit: func(r *response) { r.Encrypt = true }},
		{name: "encrypted_aes128_gcm_rsa_oaep", edit: func(r *response) { r.Encrypt, r.DataAlg = true, aes128GCM }},
		{name: "encrypted_in_signed_response", edit: func(r *response) { r.Encrypt, r.SignResponse = true, true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validResponse()
			if tt.edit != nil {
				tt.edit(&r)
			}
			var edits []func(*Config)
			if tt.config != nil {
				edits = append(edits, tt.config)
			}
			sp := newSP(t, edits...)
			doc := build(t, r)
			if tt.mutate != nil {
				doc = tt.mutate(t, doc)
			}
			enc := b64
			if tt.encode != nil {
				enc = tt.encode
			}
			ids := []string{requestID}
			if tt.ids != nil {
				ids = tt.ids
			}
			got, err := sp.ParseResponse(context.Background(), enc(doc), ids)
			if err != nil {
				t.Fatalf("ParseResponse: %v", err)
			}
			if got.ID != r.AssertionID || got.NameID != r.NameID {
				t.Errorf("got ID %q NameID %q, want %q %q", got.ID, got.NameID, r.AssertionID, r.NameID)
			}
		})
	}
}

func TestParseResponseHonoursContext(t *testing.T) {
	t.Parallel()
	sp := newSP(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sp.ParseResponse(ctx, b64(build(t, validResponse())), []string{requestID})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
