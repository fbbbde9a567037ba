package devidp_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"

	"github.com/jitprov/jitprov/internal/devidp"
)

// ExampleNew wires the development IdP into a dev-mode process: mounted
// at /dev-idp on the edge's own listener (same site as the edge), serving
// the SAML connections of testdata/organizations-dev.yaml and its OIDC
// client.
func ExampleNew() {
	const edge = "http://localhost:8080" // the edge's public URL
	idp, err := devidp.New(context.Background(), devidp.Config{
		BaseURL: edge + "/dev-idp",
		DataDir: ".data", // keeps the keys: the edge's cached metadata stays valid
		SAMLServiceProviders: []devidp.ServiceProvider{
			// The edge's SP metadata of each SAML connection, fetched on the
			// first sign-in (the edge may start after the IdP).
			{MetadataURL: edge + "/saml/demo/devidp-saml/metadata", Organization: devidp.OrgDemo},
			{MetadataURL: edge + "/saml/demo-small/devidp-saml/metadata", Organization: devidp.OrgDemoSmall},
		},
		OIDCClients: []devidp.Client{{
			ID:           "jitprov-demo",
			Secret:       os.Getenv("JITPROV_DEV_OIDC_CLIENT_SECRET"),
			RedirectURIs: []string{edge + "/oidc/demo/devidp-oidc/callback"},
			Organization: devidp.OrgDemo,
		}},
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(idp.PathPrefix()+"/", idp.Handler()) // no StripPrefix
	// mux.Handle("/", edgeHandler) — the edge serves everything else.
	_ = mux
}
