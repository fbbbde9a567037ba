package edge_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/testenv"
)

// A login started at another host name than the public URL's (localhost
// while the public URL says 127.0.0.1, in plain-http development) loses
// its pending-login cookie: the browser keeps it for the host it used, and
// the IdP sends the person back to the public URL's. The edge says so —
// when the login starts, and when the answer arrives without the cookie —
// in the log and on the page, which leads back to the public URL; not
// "this browser started no login" and IdP-initiated settings.
func TestLoginStartedAtAnotherHostName(t *testing.T) {
	var out testenv.Output
	w := newWorld(t, 10, true, withLogger(out.Logger()))
	public, err := url.Parse(w.edgeURL)
	if err != nil {
		t.Fatal(err)
	}
	other := "http://localhost:" + public.Port()

	t.Run("saml", func(t *testing.T) {
		w.idp.signsIn(person("00u-kay", "kay@acme.example"))
		b := newBrowser(t)
		start := b.Get(other + "/saml/acme/idp/login?return_to=%2Fapp")
		if start.Status != http.StatusFound {
			t.Fatalf("login start at %s: %d %s", other, start.Status, start.Body)
		}
		acs, form := responseForm(t, b.Get(start.Header.Get("Location")))
		if !strings.HasPrefix(acs, w.edgeURL) {
			t.Fatalf("the IdP posts to %s, want the public URL %s", acs, w.edgeURL)
		}
		p := b.Post(acs, form)
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "did not send back the cookie") ||
			!strings.Contains(p.Body, "another address than "+w.edgeURL) || p.Link("Start again") != w.edgeURL+"/login" {
			t.Errorf("ACS without the cookie: %d %s, want the page naming the cause and leading to %s/login", p.Status, p.Body, w.edgeURL)
		}
		logs := out.String()
		for _, want := range []string{
			"sign-in started at another host name than the public URL's", "request_host=localhost:" + public.Port(),
			"the browser sent back no pending-login cookie", "pending_cookie=missing", "another host name than the public URL's", "protocol=saml",
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("the log lacks %q:\n%s", want, logs)
			}
		}
		if strings.Contains(logs, "IdP-initiated login is off") {
			t.Errorf("the log blames IdP-initiated settings:\n%s", logs)
		}
		if n := countUsers(t, w.store); n != 0 {
			t.Errorf("%d users, want none", n)
		}
	})

	t.Run("oidc", func(t *testing.T) {
		o := addZitadelConnection(t, w)
		// The provider's answer reaches a browser without the cookie (as
		// one that started at another host name is, at the callback).
		callback := oidcStartLogin(t, newBrowser(t), w, o, "/app")
		p := newBrowser(t).Get(callback)
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "did not send back the cookie") {
			t.Errorf("callback without the cookie: %d %s", p.Status, p.Body)
		}
		if logs := out.String(); !strings.Contains(logs, "protocol=oidc") || !strings.Contains(logs, "pending_cookie=missing") {
			t.Errorf("the log does not name the missing cookie of the OIDC login:\n%s", logs)
		}
	})
}
