package testenv

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"
)

// IDPMetadata is SAML IdP metadata for entity id entityID, signing with a
// certificate made now from a fresh TEST key.
func IDPMetadata(t testing.TB, entityID string) string {
	return idpMetadata(t, entityID, "test idp", "https://idp.example/sso", time.Now().Add(365*24*time.Hour))
}

// IDPMetadataExpiring is the metadata of IdP https://cn/, signing with a
// certificate of subject CN=cn, from a fresh TEST key, that expires at
// notAfter: for certificate-expiry checks.
func IDPMetadataExpiring(t testing.TB, cn string, notAfter time.Time) string {
	return idpMetadata(t, "https://"+cn+"/", cn, "https://"+cn+"/sso", notAfter)
}

func idpMetadata(t testing.TB, entityID, cn, sso string, notAfter time.Time) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-2 * 365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return `<?xml version="1.0"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(der) +
		`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="` + sso + `"/>
  </IDPSSODescriptor>
</EntityDescriptor>`
}

// SAMLResponseXML is an UNSIGNED SAML Response for dry runs: one assertion
// with a NameID of the given format and the attributes (names in sorted
// order are not needed: each is one element).
func SAMLResponseXML(nameID, format string, attrs map[string][]string) string {
	var a string
	for name, vals := range attrs {
		a += `<saml:Attribute Name="` + name + `">`
		for _, v := range vals {
			a += `<saml:AttributeValue>` + v + `</saml:AttributeValue>`
		}
		a += `</saml:Attribute>`
	}
	now := time.Now().UTC().Format(time.RFC3339)
	return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0" IssueInstant="` + now + `">` +
		`<saml:Issuer>https://idp.example/</saml:Issuer>` +
		`<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
		`<saml:Assertion ID="_a1" Version="2.0" IssueInstant="` + now + `"><saml:Issuer>https://idp.example/</saml:Issuer>` +
		`<saml:Subject><saml:NameID Format="` + format + `">` + nameID + `</saml:NameID></saml:Subject>` +
		`<saml:AuthnStatement AuthnInstant="` + now + `" SessionIndex="s1"/>` +
		`<saml:AttributeStatement>` + a + `</saml:AttributeStatement></saml:Assertion></samlp:Response>`
}

// EncryptedSAMLResponseXML is a SAML Response whose assertion is encrypted
// (to a key nobody holds: it is never decrypted).
func EncryptedSAMLResponseXML() string {
	return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r1" Version="2.0">` +
		`<saml:Issuer>https://idp.example/</saml:Issuer>` +
		`<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>` +
		`</samlp:Response>`
}

// IDToken is a compact RS256 ID token of claims, signed with a fresh TEST
// key (which nothing verifies: for dry runs).
func IDToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "test"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}
