package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// The connections page shows each SAML IdP certificate's expiry, with a
// warning within 30 days; fetched metadata is cached.
func TestConnectionCertificates(t *testing.T) {
	w := newWorld(t, 10)
	ctx := t.Context()
	now := time.Now().UTC()
	var fetches atomic.Int32
	soon := testenv.IDPMetadataExpiring(t, "soon.idp.example", now.Add(10*24*time.Hour))
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
			"idp_metadata_xml": testenv.IDPMetadataExpiring(t, "later.idp.example", now.Add(100*24*time.Hour)), "sp_entity_id": "urn:test:later"})},
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
