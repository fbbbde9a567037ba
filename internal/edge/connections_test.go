package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// IdP metadata fetched from a URL is cached, refreshed, and its last good
// copy kept when a refresh fails.
func TestRegistryMetadataURL(t *testing.T) {
	s, _ := testenv.Store(t)
	md := minimalIdPMetadata(t)
	var failing atomic.Bool
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		_, _ = w.Write(md)
	}))
	defer srv.Close()
	settings, _ := json.Marshal(map[string]any{"idp_metadata_url": srv.URL + "/metadata", // http on 127.0.0.1 is allowed
		"sp_entity_id": "https://sso.example.com/saml/acme/okta"})
	if err := s.ApplyOrganizations(context.Background(), []store.Organization{{ID: "acme", Name: "Acme", MaxSeats: 1,
		Roles: []string{"member", "admin"}, DefaultRole: "member", JITRoleCeiling: "member",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	public, _ := url.Parse("https://sso.example.com")
	r := newRegistry(s, testKeyPair(t), *public, time.Second, time.Nanosecond /* refresh at every get */, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()

	first, err := r.get(ctx, "acme", "okta")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got := first.saml.sp.Metadata().SPSSODescriptors[0].AssertionConsumerServices[0].Location; got != "https://sso.example.com/saml/acme/okta/acs" {
		t.Errorf("ACS URL %q", got)
	}
	failing.Store(true)
	again, err := r.get(ctx, "acme", "okta")
	if err != nil || again.saml.sp != first.saml.sp {
		t.Errorf("refresh failure: got %v, %v; want the last good copy", again, err)
	}
	if fetches.Load() != 2 {
		t.Errorf("metadata fetched %d times, want 2 (the load and one refresh attempt)", fetches.Load())
	}
	// A failed refresh is retried after a pause, not at every request.
	for range 5 {
		if _, err := r.get(ctx, "acme", "okta"); err != nil {
			t.Fatal(err)
		}
	}
	if fetches.Load() != 2 {
		t.Errorf("metadata fetched %d times after a failed refresh, want no more until the retry", fetches.Load())
	}
	if _, err := r.get(ctx, "acme", "nope"); !errors.Is(err, errUnknownConnection) {
		t.Errorf("unknown connection: %v", err)
	}
	if _, err := r.get(ctx, "Bad.Org", "okta"); !errors.Is(err, errUnknownConnection) {
		t.Errorf("invalid org id: %v", err)
	}
}

func minimalIdPMetadata(t *testing.T) []byte {
	t.Helper()
	_, cert := testCert(t)
	idp := &saml.IdentityProvider{Certificate: cert, MetadataURL: url.URL{Scheme: "https", Host: "idp.example", Path: "/md"},
		SSOURL: url.URL{Scheme: "https", Host: "idp.example", Path: "/sso"}}
	out, err := xmlMarshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// idpMetadataAt is an IdP's metadata whose entity id and SSO URL are on
// host.
func idpMetadataAt(t *testing.T, host string) []byte {
	t.Helper()
	_, cert := testCert(t)
	idp := &saml.IdentityProvider{Certificate: cert, MetadataURL: url.URL{Scheme: "https", Host: host, Path: "/md"},
		SSOURL: url.URL{Scheme: "https", Host: host, Path: "/sso"}}
	out, err := xmlMarshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A reload loads the connections in use again at once, however far off
// their refresh is: a changed IdP metadata file is served, a connection
// added to the store is found, and one whose metadata became unusable
// goes on being served from its last good copy, its error returned.
func TestRegistryReload(t *testing.T) {
	s, _ := testenv.Store(t)
	file := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(file, idpMetadataAt(t, "idp-a.example"), 0o600); err != nil {
		t.Fatal(err)
	}
	org := store.Organization{ID: "acme", Name: "Acme", MaxSeats: 1, Roles: []string{"member", "admin"}, DefaultRole: "member",
		JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
	apply := func(connID string) {
		t.Helper()
		settings, _ := json.Marshal(map[string]any{"idp_metadata_file": file, "sp_entity_id": "https://sso.example.com/saml/acme/" + connID})
		if err := s.ApplyOrganizations(context.Background(), []store.Organization{org},
			[]store.Connection{{OrganizationID: "acme", ID: connID, Protocol: "saml", Settings: settings}}); err != nil {
			t.Fatal(err)
		}
	}
	apply("okta")
	public, _ := url.Parse("https://sso.example.com")
	r := newRegistry(s, testKeyPair(t), *public, time.Second, time.Hour /* no refresh during the test */, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	idpOf := func(connID string) string {
		t.Helper()
		c, err := r.get(ctx, "acme", connID)
		if err != nil {
			t.Fatalf("get %s: %v", connID, err)
		}
		return c.saml.idp.EntityID
	}
	if got := idpOf("okta"); got != "https://idp-a.example/md" {
		t.Fatalf("IdP %q, want idp-a", got)
	}
	if _, err := r.get(ctx, "acme", "entra"); !errors.Is(err, errUnknownConnection) {
		t.Fatalf("entra before it is added: %v, want unknown", err)
	}

	// The IdP's metadata changes, and a connection is added.
	if err := os.WriteFile(file, idpMetadataAt(t, "idp-b.example"), 0o600); err != nil {
		t.Fatal(err)
	}
	apply("entra")
	if got := idpOf("okta"); got != "https://idp-a.example/md" {
		t.Fatalf("IdP %q before the reload, want still idp-a (the refresh is an hour away)", got)
	}
	if n, err := r.reload(ctx); err != nil || n != 1 {
		t.Fatalf("reload: %d, %v; want 1 connection reloaded", n, err)
	}
	if got := idpOf("okta"); got != "https://idp-b.example/md" {
		t.Errorf("IdP %q after the reload, want idp-b", got)
	}
	if got := idpOf("entra"); got != "https://idp-b.example/md" {
		t.Errorf("the added connection after the reload: IdP %q, want idp-b", got)
	}

	// Unusable metadata: the last good copy stays, the error says why.
	if err := os.WriteFile(file, []byte("<html>maintenance</html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := r.reload(ctx)
	if n != 0 || err == nil || !strings.Contains(err.Error(), "connection acme/okta") || !strings.Contains(err.Error(), "connection acme/entra") {
		t.Errorf("reload of unusable metadata: %d, %v; want both connections' errors", n, err)
	}
	if got := idpOf("okta"); got != "https://idp-b.example/md" {
		t.Errorf("IdP %q after a failed reload, want the last good copy, idp-b", got)
	}
}
