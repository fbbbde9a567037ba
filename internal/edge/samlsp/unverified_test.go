package samlsp

import (
	"encoding/base64"
	"errors"
	"testing"
)

// ReadUnverified reads a Response (base64 or XML) or a bare assertion,
// refuses an encrypted one with ErrEncrypted, and keeps the markup checks.
func TestReadUnverified(t *testing.T) {
	const assertion = `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">` +
		`<saml:Issuer>https://idp.example/</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">p-1</saml:NameID></saml:Subject>` +
		`<saml:AuthnStatement AuthnInstant="2026-01-01T00:00:00Z"/><saml:AttributeStatement><saml:Attribute Name="mail"><saml:AttributeValue>a@b.example</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>`
	const response = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0">` + assertion + `</samlp:Response>`
	// The prefix saml declared on the Response only.
	const outer = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0">` +
		`<saml:Assertion ID="_a1" Version="2.0"><saml:Subject><saml:NameID>p-2</saml:NameID></saml:Subject></saml:Assertion></samlp:Response>`
	const encrypted = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r"><saml:EncryptedAssertion/></samlp:Response>`
	for _, tc := range []struct {
		name, in, nameID string
		err              error
		reason           Reason
	}{
		{name: "response XML", in: response, nameID: "p-1"},
		{name: "response base64", in: base64.StdEncoding.EncodeToString([]byte(response)), nameID: "p-1"},
		{name: "bare assertion", in: assertion, nameID: "p-1"},
		{name: "namespace declared on the response", in: outer, nameID: "p-2"},
		{name: "encrypted", in: encrypted, err: ErrEncrypted},
		{name: "doctype", in: `<!DOCTYPE x [<!ENTITY e "x">]>` + response, reason: ReasonDoctype},
		{name: "not SAML", in: `<x/>`, reason: ReasonStructure},
		{name: "not base64", in: "%%%", reason: ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ReadUnverified(tc.in)
			switch {
			case tc.err != nil:
				if !errors.Is(err, tc.err) {
					t.Errorf("err %v, want %v", err, tc.err)
				}
			case tc.reason != "":
				if ReasonOf(err) != tc.reason {
					t.Errorf("err %v, want reason %s", err, tc.reason)
				}
			case err != nil:
				t.Fatal(err)
			case a.NameID != tc.nameID:
				t.Errorf("NameID %q, want %q", a.NameID, tc.nameID)
			case tc.nameID == "p-1" && (a.Attributes["mail"][0] != "a@b.example" || a.AuthnInstant.IsZero() || a.Issuer != "https://idp.example/"):
				t.Errorf("assertion %+v", a)
			}
		})
	}
}
