package edge_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// A connection that cannot be loaded because of its settings is a
// configuration error: the log says so (protocol, organisation,
// connection, the library's reason) and people are told that sign-in is
// not set up correctly, not to try again. An IdP that does not answer, or
// answers that it is unavailable, is an outage: people are told to try
// again, and the log says the IdP cannot be reached.
func TestConnectionThatCannotLoad(t *testing.T) {
	var out testenv.Output
	w := newWorld(t, 10, false, withLogger(out.Logger()))

	// An OpenID provider whose discovery document names another issuer
	// than the one configured (the mistake is not a trailing slash, which
	// the edge forgives).
	wrongIssuer := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(rw).Encode(map[string]any{
			"issuer": "https://login.example.com/tenant-b", "authorization_endpoint": "https://login.example.com/authorize",
			"token_endpoint": "https://login.example.com/token", "jwks_uri": "https://login.example.com/keys",
		})
	}))
	t.Cleanup(wrongIssuer.Close)
	unavailable := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unavailable.Close)
	notMetadata := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = rw.Write([]byte("<html>this is the IdP's home page, not its metadata</html>"))
	}))
	t.Cleanup(notMetadata.Close)
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	oidc := func(issuer string) []byte {
		b, _ := json.Marshal(map[string]any{"issuer": issuer, "client_id": "c", "client_secret_env": "PATH"})
		return b
	}
	samlURL := func(u string) []byte {
		b, _ := json.Marshal(map[string]any{"idp_metadata_url": u, "sp_entity_id": "https://sso.acme.example/saml/acme/idp"})
		return b
	}
	tests := []struct {
		conn, protocol string
		settings       []byte
		status         int
		page, log      string
		logHas         []string
	}{
		{"oidc-wrong-issuer", "oidc", oidc(wrongIssuer.URL + "/tenant-a"), http.StatusInternalServerError, "not set up correctly",
			"configuration error: the OIDC connection cannot be loaded", []string{"protocol=oidc", "did not match the issuer URL returned by provider"}},
		{"oidc-unavailable", "oidc", oidc(unavailable.URL), http.StatusServiceUnavailable, "cannot be reached",
			"cannot reach the identity provider of the OIDC connection", []string{"protocol=oidc", "503"}},
		{"oidc-refused", "oidc", oidc(closed), http.StatusServiceUnavailable, "cannot be reached",
			"cannot reach the identity provider of the OIDC connection", []string{"protocol=oidc", "refused"}},
		{"saml-not-metadata", "saml", samlURL(notMetadata.URL + "/metadata"), http.StatusInternalServerError, "not set up correctly",
			"configuration error: the SAML connection cannot be loaded", []string{"protocol=saml"}},
		{"saml-unavailable", "saml", samlURL(unavailable.URL + "/metadata"), http.StatusServiceUnavailable, "cannot be reached",
			"cannot reach the identity provider of the SAML connection", []string{"protocol=saml", "503"}},
	}
	var conns []store.Connection
	for _, tt := range tests {
		conns = append(conns, store.Connection{OrganizationID: "acme", ID: tt.conn, Protocol: tt.protocol, Settings: tt.settings})
	}
	if err := w.store.ApplyOrganizations(context.Background(), nil, conns); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.conn, func(t *testing.T) {
			p := newBrowser(t).Get(w.edgeURL + "/" + tt.protocol + "/acme/" + tt.conn + "/login")
			if p.Status != tt.status || !strings.Contains(p.Body, tt.page) {
				t.Errorf("login start: %d %s, want %d and %q", p.Status, p.Body, tt.status, tt.page)
			}
			misconfigured := tt.status == http.StatusInternalServerError
			if misconfigured == strings.Contains(p.Body, "try again") {
				t.Errorf("page %q: says to try again: %t, want %t", p.Body, !misconfigured, misconfigured)
			}
			var line string
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "connection="+tt.conn+" ") {
					line = l
				}
			}
			if !strings.Contains(line, tt.log) || !strings.Contains(line, "org=acme") {
				t.Fatalf("log line of %s: %q, want %q", tt.conn, line, tt.log)
			}
			for _, want := range tt.logHas {
				if !strings.Contains(line, want) {
					t.Errorf("log line %q lacks %q", line, want)
				}
			}
			if strings.Contains(line, "SAML") != (tt.protocol == "saml") {
				t.Errorf("log line %q names the wrong protocol", line)
			}
		})
	}
}
