package edge

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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
	r := newRegistry(s, testKeyPair(t), *public, time.Second, time.Nanosecond /* refresh at every get */, slog.New(slog.DiscardHandler))
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
