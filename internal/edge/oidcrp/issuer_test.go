package oidcrp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// An issuer written with a trailing slash the provider's own issuer does
// not have (or without one it has) is the same issuer: New takes the
// provider's spelling, and ID tokens are checked against it exactly.
func TestIssuerTrailingSlash(t *testing.T) {
	o := newTestOP(t) // its issuer has no trailing slash
	rp, _ := newRP(t, o, func(c *Config) { c.Issuer = o.issuer + "/" })
	start, err := rp.Begin()
	if err != nil {
		t.Fatal(err)
	}
	c, err := rp.Finish(context.Background(), start.Pending, o.login(t, start.URL))
	if err != nil {
		t.Fatalf("login with the issuer written %q: %v", o.issuer+"/", err)
	}
	if c.Issuer != o.issuer {
		t.Errorf("ID token issuer %q, want %q", c.Issuer, o.issuer)
	}
}

// discoveryServer serves only a discovery document naming issuer (with
// %s standing for the server's own URL).
func discoveryServer(t *testing.T, issuer func(self string) string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                 issuer(srv.URL),
			"authorization_endpoint": srv.URL + "/authorize",
			"token_endpoint":         srv.URL + "/token",
			"jwks_uri":               srv.URL + "/keys",
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestIssuerSpellingOfTheProvider(t *testing.T) {
	tests := []struct {
		name       string
		discovered func(self string) string
		configured func(self string) string
		want       func(self string) string // "" : refused
	}{
		{"provider with a slash, written without",
			func(s string) string { return s + "/" }, func(s string) string { return s }, func(s string) string { return s + "/" }},
		{"provider without a slash, written with",
			func(s string) string { return s }, func(s string) string { return s + "/" }, func(s string) string { return s }},
		{"exact", func(s string) string { return s + "/" }, func(s string) string { return s + "/" }, func(s string) string { return s + "/" }},
		{"another issuer", func(string) string { return "https://other.example" }, func(s string) string { return s }, nil},
		{"another path", func(s string) string { return s + "/tenant-b" }, func(s string) string { return s + "/" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := discoveryServer(t, tt.discovered)
			rp, err := New(context.Background(), Config{Issuer: tt.configured(srv.URL), ClientID: testClientID,
				ClientSecret: testClientSecret, RedirectURL: testRedirect, HTTPClient: &http.Client{}, AllowInsecure: true})
			if tt.want == nil {
				var mismatch *oidc.IssuerMismatchError
				if !errors.As(err, &mismatch) {
					t.Fatalf("New = %v, want an issuer mismatch", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if want := tt.want(srv.URL); rp.issuer != want {
				t.Errorf("issuer %q, want %q", rp.issuer, want)
			}
		})
	}
}
