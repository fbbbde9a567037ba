package api_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/api"
	"github.com/jitprov/jitprov/internal/admin/authn"
)

// Every route the mux serves is in the OpenAPI document, and every
// operation of the document is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi %q, want 3.x", doc.OpenAPI)
	}
	var documented []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(method)+" "+path)
			}
		}
	}
	served := api.Routes()
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("served but not documented: %s", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("documented but not served: %s", d)
		}
	}
	// The document is served, without credentials.
	srv := httptest.NewServer(api.New(api.Config{Authn: nobody{}}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + api.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %d", api.OpenAPIPath, resp.StatusCode)
	}
	// And the mux answers every documented operation itself: without
	// credentials, 401, never its 404 or 405.
	fill := strings.NewReplacer("{org}", "acme", "{id}", "x", "{connection}", "idp", "{external_id}", "e")
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		if path == api.OpenAPIPath {
			continue
		}
		req, _ := http.NewRequest(method, srv.URL+fill.Replace(path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d, want 401 from the route", d, resp.StatusCode)
		}
	}
}

// nobody authenticates no one.
type nobody struct{}

func (nobody) Principal(*http.Request) (admin.Principal, error) {
	return admin.Principal{}, authn.ErrUnauthenticated
}
