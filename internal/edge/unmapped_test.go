package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/crewjam/saml"

	"github.com/jitprov/jitprov/internal/testenv"
)

// An identity field that a connection leaves empty — nothing mapped to
// it, or the mapped attribute or claim not sent — is warned of once per
// connection and field, not at every login, with the names (never the
// values) of what the IdP did send, so that an admin can map them.
func TestUnmappedFieldsWarnedOncePerConnection(t *testing.T) {
	var out testenv.Output
	w := newWorld(t, 10, true, withLogger(out.Logger()))
	o := addZitadelConnection(t, w) // claims: {}: no groups claim mapped

	// acme/idp maps email, given_name (givenName) and groups; not the
	// family or display name.
	alice := person("00u-ada", "ada@acme.example", "eng-leads")
	alice.CustomAttributes = append(alice.CustomAttributes, saml.Attribute{Name: "sn", Values: values([]string{"Lovelace"})})
	for range 2 {
		w.idp.signsIn(alice)
		if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
			t.Fatalf("SAML login: %d %s", resp.Status, resp.Body)
		}
	}
	// bob's IdP sends no groups, though they are mapped.
	w.idp.signsIn(person("00u-bob", "bob@acme.example"))
	if resp, _ := login(t, newBrowser(t), w.edgeURL, "/"); resp.Status != http.StatusSeeOther {
		t.Fatalf("SAML login: %d %s", resp.Status, resp.Body)
	}
	for range 2 {
		b := newBrowser(t)
		if resp := b.Get(oidcStartLogin(t, b, w, o, "/")); resp.Status != http.StatusSeeOther {
			t.Fatalf("OIDC login: %d %s", resp.Status, resp.Body)
		}
	}

	lines := func(conn, field string) []string {
		var found []string
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "connection="+conn+" ") && strings.Contains(l, "field="+field+" ") {
				found = append(found, l)
			}
		}
		return found
	}
	tests := []struct {
		conn, field string
		want        []string // in the one line; none: no warning
	}{
		{"idp", "family_name", []string{"nothing is mapped to the family_name", "setting=attributes.family_name", "protocol=saml", "sent=\"[$nameid email givenName groups sn]\""}},
		{"idp", "display_name", []string{"nothing is mapped to the display_name", "setting=attributes.display_name"}},
		{"idp", "groups", []string{"the IdP sent no attribute groups, mapped to the groups", "mapped=groups"}},
		{"idp", "email", nil},
		{"idp", "given_name", nil},
		{"zitadel", "groups", []string{"nothing is mapped to the groups", "setting=claims.groups", "protocol=oidc", "email", "given_name"}},
		{"zitadel", "email", nil},
	}
	for _, tt := range tests {
		got := lines(tt.conn, tt.field)
		if tt.want == nil {
			if len(got) != 0 {
				t.Errorf("%s %s: warned though mapped and sent: %q", tt.conn, tt.field, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s %s: %d warnings, want 1: %q", tt.conn, tt.field, len(got), got)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got[0], w) {
				t.Errorf("%s %s: warning %q lacks %q", tt.conn, tt.field, got[0], w)
			}
		}
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "field=") && (strings.Contains(l, "Lovelace") || strings.Contains(l, "@acme.example") || strings.Contains(l, "iss ")) {
			t.Errorf("a warning carries a value or a protocol claim: %s", l)
		}
	}
}
