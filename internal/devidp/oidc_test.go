package devidp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/testenv"
)

const (
	testClientID     = "edge-demo"
	testClientSecret = "dev-secret"
	// rpHost is the relying party's host: never contacted, the browser
	// stops at the redirect to it.
	rpHost       = "edge.test"
	testRedirect = "http://" + rpHost + "/oidc/demo/devidp/callback"
)

// newOIDCPair is an IdP with one client, and the edge's relying party
// (oidcrp) for it.
func newOIDCPair(t testing.TB, org string, auth oidcrp.TokenAuth) (*testServer, *oidcrp.RP) {
	t.Helper()
	idp := newTestIdP(t, func(c *Config) {
		c.OIDCClients = []Client{{ID: testClientID, Secret: testClientSecret, RedirectURIs: []string{testRedirect}, Organization: org}}
	})
	rp, err := oidcrp.New(context.Background(), oidcrp.Config{
		Issuer: idp.Issuer(), ClientID: testClientID, ClientSecret: testClientSecret,
		RedirectURL: testRedirect, Scopes: []string{"openid", "email", "profile"},
		TokenAuth: auth, HTTPClient: &http.Client{}, AllowInsecure: true,
	})
	if err != nil {
		t.Fatalf("oidcrp.New: %v", err)
	}
	return idp, rp
}

// signIn plays the browser from the authorization URL to the redirect
// back to the client, signing in as the person named label on the login
// page, and returns the callback's query.
func signIn(t testing.TB, b *testenv.Browser, authURL, name string) url.Values {
	t.Helper()
	login := b.Get(authURL)
	if login.Status != http.StatusOK || !strings.Contains(login.Body, DevLabel) {
		t.Fatalf("login page: status %d, want 200 with the development label:\n%s", login.Status, login.Body)
	}
	cb := login.Click("Sign in as " + name)
	if cb.Status != http.StatusFound && cb.Status != http.StatusSeeOther {
		t.Fatalf("after the login page: %d %s, want a redirect to the client", cb.Status, cb.Body)
	}
	loc, err := cb.URL.Parse(cb.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testRedirect {
		t.Fatalf("redirected to %s, want %s", loc, testRedirect)
	}
	return loc.Query()
}

// TestOIDCLogin runs the authorization code flow with PKCE for each demo
// person and verifies the ID token as the edge does.
func TestOIDCLogin(t *testing.T) {
	for _, auth := range []oidcrp.TokenAuth{oidcrp.ClientSecretBasic, oidcrp.ClientSecretPost} {
		idp, rp := newOIDCPair(t, "", auth)
		for _, p := range People() {
			t.Run(string(auth)+"/"+p.ID, func(t *testing.T) {
				start, err := rp.Begin()
				if err != nil {
					t.Fatal(err)
				}
				q := signIn(t, newBrowser(t, rpHost), start.URL, p.Name)
				if q.Get("iss") != "" && q.Get("iss") != idp.Issuer() {
					t.Errorf("callback iss %q, want %q", q.Get("iss"), idp.Issuer())
				}
				c, err := rp.Finish(context.Background(), start.Pending, q)
				if err != nil {
					t.Fatalf("Finish: %v", err)
				}
				if c.Issuer != idp.Issuer() || c.Subject != p.ID || c.Email != p.Email || !c.EmailVerified {
					t.Errorf("iss %q sub %q email %q verified %t; want %q %q %q true",
						c.Issuer, c.Subject, c.Email, c.EmailVerified, idp.Issuer(), p.ID, p.Email)
				}
				for claim, want := range map[string]string{"name": p.Name, "given_name": p.GivenName, "family_name": p.FamilyName} {
					if got, _ := oidcrp.Lookup(c.Raw, claim); got != want {
						t.Errorf("claim %s = %v, want %q", claim, got, want)
					}
				}
				var groups []string
				if v, ok := oidcrp.Lookup(c.Raw, "groups"); ok {
					for _, g := range v.([]any) {
						groups = append(groups, g.(string))
					}
				}
				if !slices.Equal(groups, p.Groups) {
					t.Errorf("groups %q, want %q", groups, p.Groups)
				}

				// The code is good once.
				if _, err := rp.Finish(context.Background(), start.Pending, q); err == nil {
					t.Error("the code was exchanged twice")
				}
			})
		}
	}
}

// TestOIDCOrganization: a client for one demo organisation offers only
// its people, and refuses the others.
func TestOIDCOrganization(t *testing.T) {
	_, rp := newOIDCPair(t, OrgDemo, "")
	start, err := rp.Begin()
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, rpHost)
	login := b.Get(start.URL)
	want := []string{"Sign in as Ada Lovelace", "Sign in as Grace Hopper", "Sign in as Olivia Operator"}
	if got := login.ButtonLabels(); !slices.Equal(got, want) {
		t.Errorf("buttons %q, want %q", got, want)
	}
	f := login.Forms()[0]
	f.Fields.Set("person", "katherine")
	if p := b.Post(f.Action, f.Fields); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not offered") {
		t.Errorf("a person of another organisation: %d %q, want 400", p.Status, p.Body)
	}
}

// TestOIDCRefusals: what the provider refuses.
func TestOIDCRefusals(t *testing.T) {
	idp, rp := newOIDCPair(t, "", "")
	authURL := func(edit func(url.Values)) string {
		start, err := rp.Begin()
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(start.URL)
		q := u.Query()
		edit(q)
		u.RawQuery = q.Encode()
		return u.String()
	}
	// errorOf returns the error the provider redirected to the client
	// with, "page" when it showed an error page, or "" when it showed the
	// login page.
	errorOf := func(t *testing.T, b *testenv.Browser, u string) string {
		p := b.Get(u)
		switch {
		case p.Status == http.StatusOK:
			return ""
		case p.Status >= 400:
			return "page"
		}
		loc, err := url.Parse(p.Header.Get("Location"))
		if err != nil || loc.Host != rpHost {
			t.Fatalf("%d %s %q: want a redirect to the client", p.Status, p.Header.Get("Location"), p.Body)
		}
		return loc.Query().Get("error")
	}
	tests := []struct {
		name string
		edit func(url.Values)
		want string
	}{
		{"valid", func(url.Values) {}, ""},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		// zitadel refuses an http redirect URI outside the code flow
		// before it looks at the client's response types.
		{"implicit flow", func(q url.Values) { q.Set("response_type", "id_token") }, "page"},
		{"unknown redirect URI", func(q url.Values) { q.Set("redirect_uri", "http://evil.test/cb") }, "page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorOf(t, newBrowser(t, rpHost), authURL(tt.edit)); got != tt.want {
				t.Errorf("error %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("wrong client secret", func(t *testing.T) {
		bad, err := oidcrp.New(context.Background(), oidcrp.Config{
			Issuer: idp.Issuer(), ClientID: testClientID, ClientSecret: "wrong",
			RedirectURL: testRedirect, HTTPClient: &http.Client{}, AllowInsecure: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		start, err := bad.Begin()
		if err != nil {
			t.Fatal(err)
		}
		q := signIn(t, newBrowser(t, rpHost), start.URL, "Ada Lovelace")
		if _, err := bad.Finish(context.Background(), start.Pending, q); err == nil {
			t.Error("the code was exchanged with a wrong client secret")
		}
	})
	t.Run("login page without a request", func(t *testing.T) {
		p := newBrowser(t).Get(idp.BaseURL() + "/oidc/login?id=nope")
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, DevLabel) {
			t.Errorf("%d %q, want 400 with the development label", p.Status, p.Body)
		}
	})
}

// TestOIDCDiscovery: what the edge reads from discovery.
func TestOIDCDiscovery(t *testing.T) {
	idp := newTestIdP(t, nil)
	p := newBrowser(t).Get(idp.Issuer() + "/.well-known/openid-configuration")
	if p.Status != http.StatusOK {
		t.Fatalf("discovery: %d %s", p.Status, p.Body)
	}
	var d struct {
		Issuer   string   `json:"issuer"`
		JWKSURI  string   `json:"jwks_uri"`
		PKCE     []string `json:"code_challenge_methods_supported"`
		Scopes   []string `json:"scopes_supported"`
		Claims   []string `json:"claims_supported"`
		AuthURL  string   `json:"authorization_endpoint"`
		TokenURL string   `json:"token_endpoint"`
	}
	if err := json.Unmarshal([]byte(p.Body), &d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != idp.Issuer() || !strings.HasPrefix(d.AuthURL, idp.Issuer()+"/") || !strings.HasPrefix(d.TokenURL, idp.Issuer()+"/") {
		t.Errorf("issuer %q, endpoints %q %q: want all under %q", d.Issuer, d.AuthURL, d.TokenURL, idp.Issuer())
	}
	if !slices.Equal(d.PKCE, []string{"S256"}) || !slices.Contains(d.Scopes, ScopeGroups) || !slices.Contains(d.Claims, "groups") {
		t.Errorf("PKCE %q, scopes %q, claims %q", d.PKCE, d.Scopes, d.Claims)
	}
	var jwks struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(newBrowser(t).Get(d.JWKSURI).Body), &jwks); err != nil {
		t.Fatal(err)
	}
	if len(jwks.Keys) != 1 || jwks.Keys[0].KID != idp.OIDCKeyID() || jwks.Keys[0].Alg != "RS256" {
		t.Errorf("JWKS %+v, want one RS256 key %q", jwks.Keys, idp.OIDCKeyID())
	}
}
