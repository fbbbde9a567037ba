package edge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// spEntityID is the SP entity id the world's connection conn pins: on
// purpose no URL of any edge of the test, which all serve it.
func spEntityID(conn string) string { return "https://sp.acme.example/saml/acme/" + conn }

// spMetadata is the SP metadata an edge serves at url.
func spMetadata(tb testing.TB, url string) (saml.EntityDescriptor, string) {
	tb.Helper()
	p := testenv.NewBrowser(tb).Get(url)
	if p.Status != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, p.Status, p.Body)
	}
	var md saml.EntityDescriptor
	if err := xml.Unmarshal([]byte(p.Body), &md); err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	return md, p.Body
}

// pairwise is a persistent NameID as IdPs compute them (Entra ID,
// Shibboleth, SimpleSAMLphp): one per person and SP entity id.
func pairwise(spEntityID, person string) string {
	sum := sha256.Sum256([]byte(spEntityID + "!" + person))
	return hex.EncodeToString(sum[:8])
}

// The edge moves to another host (a new public URL): the connection's
// pinned entity id, and with it the IdP's pairwise persistent NameID, does
// not move, so a person finds their account through the moved edge. The
// metadata, which the IdP may import once as a file, has no validUntil.
func TestSPEntityIDSurvivesAMove(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.mu.Lock()
	w.idp.nameIDFor = pairwise
	w.idp.mu.Unlock()
	w.idp.signsIn(person("ada", "ada@acme.example"))

	b := newBrowser(t)
	if resp, _ := login(t, b, w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("login before the move: %d %s", resp.Status, resp.Body)
	}
	_, before := verify(t, b, w.edgeURL)

	moved := w.startEdge() // the same store and connection, another URL
	if moved == w.edgeURL {
		t.Fatal("the moved edge has the same URL")
	}
	for _, base := range []string{w.edgeURL, moved} {
		md, raw := spMetadata(t, base+"/saml/acme/idp/metadata")
		if md.EntityID != spEntityID("idp") {
			t.Errorf("%s: entity id %q, want the pinned %q", base, md.EntityID, spEntityID("idp"))
		}
		if acs := md.SPSSODescriptors[0].AssertionConsumerServices[0].Location; acs != base+"/saml/acme/idp/acs" {
			t.Errorf("%s: ACS %q, want the edge's own", base, acs)
		}
		if strings.Contains(raw, "validUntil") {
			t.Errorf("%s: the SP metadata has a validUntil:\n%s", base, raw)
		}
	}

	b = newBrowser(t)
	if resp, _ := login(t, b, moved, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("login after the move: %d %s", resp.Status, resp.Body)
	}
	if _, after := verify(t, b, moved); after == "" || after != before {
		t.Errorf("after the move the person is user %q, before %q: want the same", after, before)
	}
	if n := countUsers(t, w.store); n != 1 {
		t.Errorf("%d users, want 1", n)
	}
	var ext string
	if err := w.store.Pool().QueryRow(context.Background(),
		`SELECT string_agg(external_id, ',') FROM identities WHERE user_id = $1 AND connection_id = 'idp'`, before).Scan(&ext); err != nil ||
		ext != pairwise(spEntityID("idp"), "ada") {
		t.Errorf("identities %q (%v), want one: the pairwise NameID for the pinned entity id", ext, err)
	}
}

// A SAML connection without sp_entity_id is a configuration error outside
// development mode: not served, logged with the value to pin (the one the
// edge derived from its URL until now), and shown to people as "not set
// up correctly" rather than as an outage. In development mode it is
// served under that derived id — which moves with the edge's URL.
func TestConnectionWithoutSPEntityID(t *testing.T) {
	var logs testenv.Output
	w := newWorld(t, 10, false, withLogger(logs.Logger()))
	settings, _ := json.Marshal(map[string]any{"idp_metadata_xml": w.idp.metadataXML(t)})
	err := w.store.ApplyOrganizations(context.Background(), []store.Organization{{
		ID: "globex", Name: "Globex", MaxSeats: 1, Roles: []string{"member", "admin"}, DefaultRole: "member",
		JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever,
	}}, []store.Connection{{OrganizationID: "globex", ID: "okta", Protocol: "saml", Settings: settings}})
	if err != nil {
		t.Fatal(err)
	}
	derived := w.edgeURL + "/saml/globex/okta/metadata"
	for _, path := range []string{"/saml/globex/okta/login", "/saml/globex/okta/metadata"} {
		p := newBrowser(t).Get(w.edgeURL + path)
		if p.Status != http.StatusInternalServerError || !strings.Contains(p.Body, "Sign-in is not set up correctly") ||
			strings.Contains(p.Body, "try again in a few minutes") {
			t.Errorf("GET %s: %d %s, want 500 \"Sign-in is not set up correctly\"", path, p.Status, p.Body)
		}
	}
	if log := logs.String(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "configuration error") ||
		!strings.Contains(log, `sp_entity_id: \"`+derived+`\"`) {
		t.Errorf("the log does not say it is a configuration error, with the value to pin (%s):\n%s", derived, log)
	}
	// The other connections are served.
	if p := newBrowser(t).Get(w.edgeURL + "/saml/acme/idp/login"); p.Status != http.StatusFound {
		t.Errorf("a pinned connection beside it: %d, want 302 to the IdP", p.Status)
	}

	// jitprov dev: served under the derived id, which differs from edge
	// to edge.
	w.edgeConfig = func(c *edge.Config) { c.DeriveSPEntityIDs = true }
	first, second := w.startEdge(), w.startEdge()
	md1, _ := spMetadata(t, first+"/saml/globex/okta/metadata")
	md2, _ := spMetadata(t, second+"/saml/globex/okta/metadata")
	if md1.EntityID != first+"/saml/globex/okta/metadata" || md2.EntityID != second+"/saml/globex/okta/metadata" {
		t.Errorf("development mode: entity ids %q and %q, want each edge's metadata URL", md1.EntityID, md2.EntityID)
	}
	if p := newBrowser(t).Get(first + "/saml/globex/okta/login"); p.Status != http.StatusFound {
		t.Errorf("development mode: login %d, want 302 to the IdP", p.Status)
	}
}
