package devidp

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/testenv"
)

// TestDevelopmentLabel: every page a person sees says what the IdP is.
func TestDevelopmentLabel(t *testing.T) {
	samlIdP, sp := newSAMLPair(t, "")
	_, rp := newOIDCPair(t, "", "")
	tests := []struct {
		name   string
		get    func(b *testenv.Browser) *testenv.Page
		status int
	}{
		{"overview", func(b *testenv.Browser) *testenv.Page { return b.Get(samlIdP.BaseURL() + "/") }, http.StatusOK},
		{"SAML login page", func(b *testenv.Browser) *testenv.Page {
			u, _ := sp.start("")
			return b.Get(u)
		}, http.StatusOK},
		{"SAML response page", func(b *testenv.Browser) *testenv.Page {
			u, _ := sp.start("")
			return b.Get(u).Click("Sign in as Grace Hopper")
		}, http.StatusOK},
		{"OIDC login page", func(b *testenv.Browser) *testenv.Page {
			start, err := rp.Begin()
			if err != nil {
				t.Fatal(err)
			}
			return b.Get(start.URL)
		}, http.StatusOK},
		{"expired sign-in", func(b *testenv.Browser) *testenv.Page { return b.Get(samlIdP.BaseURL() + "/oidc/login?id=gone") }, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.get(newBrowser(t, rpHost))
			if p.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", p.Status, tt.status, p.Body)
			}
			if !strings.Contains(p.Body, DevLabel) {
				t.Errorf("the page lacks %q:\n%s", DevLabel, p.Body)
			}
			h := p.Header
			if h.Get("Cache-Control") != "no-store" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
				h.Get("Content-Type") != "text/html; charset=utf-8" {
				t.Errorf("headers %v", h)
			}
		})
	}
}

// TestLoginPageScriptFree: the login page is plain forms, one per person,
// no script, so a scripted client can press the buttons.
func TestLoginPageScriptFree(t *testing.T) {
	_, sp := newSAMLPair(t, OrgDemo)
	u, _ := sp.start("")
	p := newBrowser(t).Get(u)
	if strings.Contains(p.Body, "<script") || !strings.Contains(p.Header.Get("Content-Security-Policy"), "script-src 'none'") {
		t.Error("the login page carries or allows scripts")
	}
	for _, f := range p.Forms() {
		if len(f.Buttons) != 1 || f.Buttons[0].Name != "person" || f.Fields.Get("request") == "" {
			t.Errorf("form %+v: want one person button and the request id", f)
		}
	}
}

// TestConfig: what New refuses.
func TestConfig(t *testing.T) {
	ok := func() Config {
		return Config{BaseURL: "http://localhost:8080/dev-idp", DataDir: sharedDataDir(t)}
	}
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"valid", func(*Config) {}, true},
		{"root base URL", func(c *Config) { c.BaseURL = "http://127.0.0.1:9000" }, true},
		{"trailing slash", func(c *Config) { c.BaseURL += "/" }, true},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, false},
		{"relative base URL", func(c *Config) { c.BaseURL = "/dev-idp" }, false},
		{"base URL with query", func(c *Config) { c.BaseURL += "?x=1" }, false},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://localhost/dev-idp" }, false},
		{"SP with URL and XML", func(c *Config) {
			c.SAMLServiceProviders = []ServiceProvider{{MetadataURL: "http://localhost/md", MetadataXML: []byte("<x/>")}}
		}, false},
		{"SP with neither", func(c *Config) { c.SAMLServiceProviders = []ServiceProvider{{}} }, false},
		{"SP metadata not metadata", func(c *Config) { c.SAMLServiceProviders = []ServiceProvider{{MetadataXML: []byte("<x/>")}} }, false},
		{"SP metadata URL relative", func(c *Config) { c.SAMLServiceProviders = []ServiceProvider{{MetadataURL: "/md"}} }, false},
		{"client without secret", func(c *Config) {
			c.OIDCClients = []Client{{ID: "a", RedirectURIs: []string{"http://localhost/cb"}}}
		}, false},
		{"client without redirect", func(c *Config) { c.OIDCClients = []Client{{ID: "a", Secret: "s"}} }, false},
		{"client twice", func(c *Config) {
			c.OIDCClients = []Client{{ID: "a", Secret: "s", RedirectURIs: []string{"http://localhost/cb"}},
				{ID: "a", Secret: "s", RedirectURIs: []string{"http://localhost/cb"}}}
		}, false},
		{"person twice", func(c *Config) { c.People = append(People(), People()[0]) }, false},
		{"person without email", func(c *Config) { c.People = []Person{{ID: "x", Name: "X"}} }, false},
		{"default client", func(c *Config) { c.HTTPClient = http.DefaultClient }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok()
			tt.edit(&cfg)
			_, err := New(context.Background(), cfg)
			if (err == nil) != tt.ok {
				t.Errorf("New: %v, want ok=%t", err, tt.ok)
			}
		})
	}
}
