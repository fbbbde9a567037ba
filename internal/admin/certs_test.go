package admin_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// idpMetadata is IdP metadata signing with a TEST certificate, made now,
// that expires at notAfter.
func idpMetadata(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return `<?xml version="1.0"?>
<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://` + cn + `/">
  <IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>` + base64.StdEncoding.EncodeToString(der) +
		`</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>
    <SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://` + cn + `/sso"/>
  </IDPSSODescriptor>
</EntityDescriptor>`
}

// The connections page shows each SAML IdP certificate's expiry, with a
// warning within 30 days; fetched metadata is cached.
func TestConnectionCertificates(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	now := time.Now().UTC()
	var fetches atomic.Int32
	soon := idpMetadata(t, "soon.idp.example", now.Add(10*24*time.Hour))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = rw.Write([]byte(soon))
	}))
	t.Cleanup(srv.Close)
	settings := func(m map[string]any) []byte {
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if err := w.s.ApplyOrganizations(ctx, nil, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml", Settings: settings(map[string]any{
			"idp_metadata_xml": idpMetadata(t, "later.idp.example", now.Add(100*24*time.Hour)), "sp_entity_id": "urn:test:later"})},
		{OrganizationID: "acme", ID: "soon", Protocol: "saml", Settings: settings(map[string]any{
			"idp_metadata_url": srv.URL, "sp_entity_id": "urn:test:soon"})},
		{OrganizationID: "acme", ID: "broken", Protocol: "saml", Settings: settings(map[string]any{
			"idp_metadata_xml": "<not-metadata/>", "sp_entity_id": "urn:test:broken"})},
		{OrganizationID: "acme", ID: "oidc", Protocol: "oidc", Settings: settings(map[string]any{"issuer": "https://accounts.example", "client_id": "x"})},
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		conns, err := w.core.Connections(ctx, acmeReader, "acme")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range conns {
			switch {
			case c.CertError != "":
				got[c.ID] = "error"
			case len(c.Certificates) == 1:
				cert := c.Certificates[0]
				if cert.Warning {
					got[c.ID] = "warning"
				} else {
					got[c.ID] = "ok"
				}
				if c.ID == "soon" && (cert.DaysLeft < 9 || cert.DaysLeft > 10 || cert.Subject != "CN=soon.idp.example") {
					t.Errorf("the soon-expiring certificate: %+v", cert)
				}
			default:
				got[c.ID] = "none"
			}
		}
		want := map[string]string{"idp": "ok", "soon": "warning", "broken": "error", "oidc": "none"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("connection %s: %s, want %s (all: %v)", k, got[k], v, got)
			}
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("the IdP's metadata was fetched %d times for two page views, want once (cached)", n)
	}
}
