package edge_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/testenv"
)

// A login without a return URL lands on the edge's landing page, which
// says who the person is signed in as and lets them sign out; the
// signed-out page leads back to sign-in (not to a 404) and, being no
// failure, carries no reference for an administrator.
func TestLandingPageAndSignOut(t *testing.T) {
	w := newWorld(t, 10, true)
	w.idp.signsIn(person("00u-ida", "ida@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "")
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("ACS without return_to: %d to %q, want 303 to /", resp.Status, resp.Header.Get("Location"))
	}
	home := b.Get(w.edgeURL + "/")
	if home.Status != http.StatusOK {
		t.Fatalf("landing page: %d %s", home.Status, home.Body)
	}
	texts := map[string]string{}
	for _, dd := range home.Elements("dd") {
		texts[testenv.Attr(dd, "id")] = testenv.Text(dd)
	}
	if texts["who"] != "ida@acme.example" || texts["org"] != "Acme" || texts["role"] != "member" {
		t.Errorf("landing page says %v, want ida@acme.example in Acme as member", texts)
	}
	if strings.Contains(home.Body, "Continue to") {
		t.Errorf("landing page links on without a landing URL: %s", home.Body)
	}
	forms := home.Forms()
	if len(forms) != 1 || !strings.HasSuffix(forms[0].Action, "/logout") {
		t.Fatalf("landing page forms %+v, want the sign-out form", forms)
	}
	out := home.Click("Sign out")
	if out.Status != http.StatusOK || !strings.Contains(out.Body, "You are signed out") {
		t.Fatalf("sign-out: %d %s", out.Status, out.Body)
	}
	if strings.Contains(out.Body, "Reference for your administrator") {
		t.Errorf("a normal sign-out shows an error reference: %s", out.Body)
	}
	again := out.Link("Sign in again")
	if again == "" {
		t.Fatalf("the signed-out page has no way back to sign-in: %s", out.Body)
	}
	if p := b.Get(again); p.Status != http.StatusOK || !strings.Contains(p.Body, "Work email") {
		t.Errorf("the signed-out page's link %s: %d, want the sign-in form", again, p.Status)
	}
	if p := b.Get(w.edgeURL + "/"); p.Status != http.StatusOK || !strings.Contains(p.Body, "You are not signed in") || p.Link("Sign in") != w.edgeURL+"/login" {
		t.Errorf("landing page after sign-out: %d %s", p.Status, p.Body)
	}
}

// The edge's landing URL (landing_url) replaces the landing page as the
// place a login without a return URL goes to, and the landing page links
// on to it.
func TestEdgeLandingURL(t *testing.T) {
	const landing = "https://app.acme.example/start"
	w := newWorld(t, 10, true, withEdgeConfig(func(c *edge.Config) { c.DefaultReturnTo = landing }))
	w.idp.signsIn(person("00u-jon", "jon@acme.example"))
	b := newBrowser(t)
	resp, _ := login(t, b, w.edgeURL, "")
	if resp.Status != http.StatusSeeOther || resp.Header.Get("Location") != landing {
		t.Fatalf("ACS without return_to: %d to %q, want 303 to %s", resp.Status, resp.Header.Get("Location"), landing)
	}
	if l := b.Get(w.edgeURL + "/").Link("Continue to Acme"); l != landing {
		t.Errorf("landing page links on to %q, want %s", l, landing)
	}
}

// An organisation's landing URL (landing_url in the organisations file)
// wins over the edge's for its people's logins without a return URL, SAML
// and OIDC alike; a return URL still wins over both.
func TestOrganizationLandingURL(t *testing.T) {
	const orgLanding, edgeLanding = "https://acme.example/portal", "https://app.example.com/"
	w := newWorld(t, 10, true, withEdgeConfig(func(c *edge.Config) {
		c.DefaultReturnTo = edgeLanding
		c.AllowedReturnOrigins = []string{"https://acme.example"}
	}))
	if _, err := w.store.Pool().Exec(context.Background(), `UPDATE organizations SET landing_url = $1 WHERE id = 'acme'`, orgLanding); err != nil {
		t.Fatal(err)
	}
	o := addZitadelConnection(t, w)
	w.idp.signsIn(person("00u-lea", "lea@acme.example"))
	tests := []struct {
		name, returnTo, want string
		login                func(b *testenv.Browser, returnTo string) *testenv.Page
	}{
		{"saml without return_to", "", orgLanding, func(b *testenv.Browser, rt string) *testenv.Page { p, _ := login(t, b, w.edgeURL, rt); return p }},
		{"saml with return_to", "/desk", "/desk", func(b *testenv.Browser, rt string) *testenv.Page { p, _ := login(t, b, w.edgeURL, rt); return p }},
		{"oidc without return_to", "", orgLanding, func(b *testenv.Browser, rt string) *testenv.Page { return b.Get(oidcStartLogin(t, b, w, o, rt)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t)
			p := tt.login(b, tt.returnTo)
			if p.Status != http.StatusSeeOther || p.Header.Get("Location") != tt.want {
				t.Fatalf("end of login: %d to %q, want 303 to %s", p.Status, p.Header.Get("Location"), tt.want)
			}
			if l := b.Get(w.edgeURL + "/").Link("Continue to Acme"); l != orgLanding {
				t.Errorf("landing page links on to %q, want %s", l, orgLanding)
			}
		})
	}
}
