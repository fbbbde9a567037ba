package edge_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// writeIdPMetadata writes to path the metadata of an IdP whose sign-in
// page is https://<host>/sso.
func writeIdPMetadata(t *testing.T, path, host string) {
	t.Helper()
	_, cert := newKeyPair(t, host)
	idp := &saml.IdentityProvider{Certificate: cert, MetadataURL: url.URL{Scheme: "https", Host: host, Path: "/metadata"},
		SSOURL: url.URL{Scheme: "https", Host: host, Path: "/sso"}}
	out, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A reload (what SIGHUP sends sso-edge) serves a changed IdP metadata file
// at once — here the IdP moved its sign-in page — though the connection's
// refresh is an hour away, and says so in the log.
func TestReloadServesChangedIdPMetadata(t *testing.T) {
	var logs testenv.Output
	w := newWorld(t, 10, true)
	file := filepath.Join(t.TempDir(), "idp.xml")
	writeIdPMetadata(t, file, "idp-a.example")
	settings, _ := json.Marshal(map[string]any{"idp_metadata_file": file, "sp_entity_id": "https://sso.globex.example/saml/globex/adfs"})
	if err := w.store.ApplyOrganizations(context.Background(), []store.Organization{{
		ID: "globex", Name: "Globex", MaxSeats: 1, Roles: []string{"member", "admin"}, DefaultRole: "member",
		JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
	}}, []store.Connection{{OrganizationID: "globex", ID: "adfs", Protocol: "saml", Settings: settings}}); err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	deps := edgeDeps(t, w)
	deps.Logger = logs.Logger()
	addr, done := runEdge(t, edge.Config{SPKeyPair: spKeyPair(t), CertCheckInterval: -1, MetadataRefresh: time.Hour, Reload: reload}, deps)
	testenv.WaitHTTP(t, "http://"+addr+"/readyz", http.StatusOK, "ready", time.Minute, done)

	idp := func() string {
		t.Helper()
		p := newBrowser(t).Get("http://" + addr + "/saml/globex/adfs/login")
		if p.Status != http.StatusFound {
			t.Fatalf("login start: %d %s", p.Status, p.Body)
		}
		loc, err := url.Parse(p.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		return loc.Host
	}
	if got := idp(); got != "idp-a.example" {
		t.Fatalf("login goes to %s, want idp-a.example", got)
	}
	writeIdPMetadata(t, file, "idp-b.example")
	if got := idp(); got != "idp-a.example" {
		t.Fatalf("before the reload, login goes to %s, want still idp-a.example", got)
	}
	reload <- struct{}{} // received: Run reloads now
	waitUntil(t, func() bool { return logs.Count("connections reloaded") > 0 })
	if got := idp(); got != "idp-b.example" {
		t.Errorf("after the reload, login goes to %s, want idp-b.example", got)
	}
	if log := logs.String(); !strings.Contains(log, "reloading the connections in use") || !strings.Contains(log, "reloaded=1") {
		t.Errorf("the log does not tell of the reload:\n%s", log)
	}
}
