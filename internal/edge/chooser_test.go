package edge_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The sign-in chooser names each connection by its display name (its id
// when it has none), under the organisation's name, not "acme · idp".
func TestSignInChooserNames(t *testing.T) {
	w := newWorld(t, 10, false)
	if _, err := w.store.Pool().Exec(context.Background(), `UPDATE connections SET display_name = 'Acme Okta' WHERE org_id = 'acme' AND id = 'idp'`); err != nil {
		t.Fatal(err)
	}
	p := newBrowser(t).Post(w.edgeURL+"/login", url.Values{"email": {"alice@acme.example"}})
	if p.Status != http.StatusOK {
		t.Fatalf("chooser: %d %s", p.Status, p.Body)
	}
	for label, want := range map[string]string{
		"Acme Okta": w.edgeURL + "/saml/acme/idp/login",      // display name
		"idp-init":  w.edgeURL + "/saml/acme/idp-init/login", // none: the id
	} {
		if got := p.Link(label); got != want {
			t.Errorf("link %q goes to %s, want %s", label, got, want)
		}
	}
	if !strings.Contains(p.Body, "Acme offers several ways to sign in") || strings.Contains(p.Body, "acme · ") {
		t.Errorf("chooser does not name the organisation, or shows raw ids: %s", p.Body)
	}
}
