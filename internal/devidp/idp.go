package devidp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// Config configures the development IdP.
type Config struct {
	// BaseURL is where the IdP is reached, e.g.
	// http://localhost:8080/dev-idp: absolute, http or https, without
	// query or fragment. Its path is the prefix Handler serves under.
	BaseURL string
	// DataDir keeps the signing keys (devidp-saml.key, devidp-saml.crt,
	// devidp-oidc.key), made on first start, so that a restart serves the
	// same certificate and key id. Empty: keys in memory, new at each
	// start.
	DataDir string
	// SAMLServiceProviders are the SPs the SAML IdP answers; an
	// AuthnRequest from any other is refused.
	SAMLServiceProviders []ServiceProvider
	// OIDCClients are the clients of the OpenID provider.
	OIDCClients []Client
	// People to offer; default People().
	People []Person
	// HTTPClient fetches SP metadata; default a client with a 10s
	// timeout (never http.DefaultClient).
	HTTPClient *http.Client
	// SPMetadataTTL is how long fetched SP metadata is used before it is
	// fetched again; default one minute.
	SPMetadataTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// IdP is the development identity provider: a SAML 2.0 IdP
// (crewjam/saml) and an OpenID provider (zitadel/oidc) behind one login
// page listing the demo people. Safe for concurrent use.
type IdP struct {
	base    string
	prefix  string
	people  []Person
	keys    *keys
	saml    *samlIdP
	oidc    *oidcOP
	handler http.Handler
	log     *slog.Logger
}

// New builds the IdP: it loads or makes its keys in cfg.DataDir. SP
// metadata given by URL is fetched later, on first use.
func New(ctx context.Context, cfg Config) (*IdP, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	base, prefix, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	cfg.BaseURL = base
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.People == nil {
		cfg.People = People()
	}
	if err := checkPeople(cfg.People); err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.HTTPClient == http.DefaultClient {
		return nil, errors.New("devidp: HTTPClient must not be http.DefaultClient (it has no timeout)")
	}
	if cfg.SPMetadataTTL <= 0 {
		cfg.SPMetadataTTL = time.Minute
	}
	people := clonePeople(cfg.People)
	log := cfg.Logger.With("component", "devidp")

	k, err := loadKeys(cfg.DataDir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("devidp: keys: %w", err)
	}
	if cfg.DataDir == "" {
		log.WarnContext(ctx, "dev IdP: no data directory; keys live in memory only, so SPs must fetch new metadata after a restart")
	}
	idp := &IdP{base: base, prefix: prefix, people: people, keys: k, log: log}
	if idp.saml, err = newSAMLIdP(&cfg, k, people, log); err != nil {
		return nil, fmt.Errorf("devidp: SAML: %w", err)
	}
	if idp.oidc, err = newOIDCOP(&cfg, k, people, log); err != nil {
		return nil, fmt.Errorf("devidp: OIDC: %w", err)
	}
	idp.handler = idp.routes()
	log.InfoContext(ctx, "dev IdP ready — development only, not for production",
		"saml_metadata", idp.SAMLMetadataURL(), "oidc_issuer", idp.Issuer(), "people", len(people))
	return idp, nil
}

// checkBaseURL validates the base URL and returns it without a trailing
// slash, and its path (the handler's prefix, "" for the root).
func checkBaseURL(raw string) (base, prefix string, err error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || raw == "":
		return "", "", fmt.Errorf("base URL %q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "", "", fmt.Errorf("base URL %q must be an absolute http or https URL", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", "", fmt.Errorf("base URL %q must have no query, fragment or user", raw)
	case strings.ContainsAny(u.Path, "{}") || u.RawPath != "":
		return "", "", fmt.Errorf("base URL %q: the path must be plain", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), u.Path, nil
}

// routes: everything under the base URL's path.
func (idp *IdP) routes() http.Handler {
	p := idp.prefix
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p+"/{$}", idp.index)
	mux.HandleFunc("GET "+p+"/saml/metadata", idp.saml.serveMetadata)
	mux.HandleFunc("GET "+p+"/saml/sso", idp.saml.serveSSO)
	mux.HandleFunc("POST "+p+"/saml/sso", idp.saml.serveSSO)
	mux.HandleFunc("POST "+p+"/saml/login", idp.saml.finish)
	mux.HandleFunc("GET "+p+"/oidc/login", idp.oidc.loginPage)
	// The login form's redirect to the op's callback needs the issuer in
	// the context, as the op's own handlers have it.
	mux.Handle("POST "+p+"/oidc/login", op.NewIssuerInterceptor(idp.oidc.provider.IssuerFromRequest).HandlerFunc(idp.oidc.finish))
	mux.Handle(p+"/oidc/", http.StripPrefix(p+"/oidc", idp.oidc.provider))
	return mux
}

func (idp *IdP) index(w http.ResponseWriter, r *http.Request) {
	writePage(w, r, idp.log, http.StatusOK, "index", indexPage{
		Title: "Development identity provider", SAMLMetadataURL: idp.SAMLMetadataURL(), Issuer: idp.Issuer(), People: idp.people,
	}, "")
}

// Handler serves the IdP. It expects the full request path, under
// BaseURL's path: mount it at that prefix without stripping it, e.g.
// mux.Handle(idp.PathPrefix()+"/", idp.Handler()), or serve it as a whole
// server's handler.
//
//	<prefix>/                 an overview: URLs and demo people
//	<prefix>/saml/metadata    SAML IdP metadata (the entity id is this URL)
//	<prefix>/saml/sso         SingleSignOnService, HTTP-Redirect and HTTP-POST
//	<prefix>/saml/login       the login page's form (POST)
//	<prefix>/oidc/...         the OpenID provider (issuer <BaseURL>/oidc)
//	<prefix>/oidc/login       the login page of an authorization request
func (idp *IdP) Handler() http.Handler { return idp.handler }

// PathPrefix is BaseURL's path without a trailing slash ("" at the root).
func (idp *IdP) PathPrefix() string { return idp.prefix }

// BaseURL is Config.BaseURL without a trailing slash.
func (idp *IdP) BaseURL() string { return idp.base }

// SAMLMetadataURL is the SAML IdP's metadata URL, also its entity id: the
// edge's idp_metadata_url.
func (idp *IdP) SAMLMetadataURL() string { return idp.base + "/saml/metadata" }

// SAMLMetadata returns the SAML IdP's metadata, for an edge connection's
// idp_metadata_xml.
func (idp *IdP) SAMLMetadata() ([]byte, error) {
	return marshalMetadata(idp.saml.metadata())
}

// SAMLCertificate is the certificate that signs the SAML responses.
func (idp *IdP) SAMLCertificate() *x509.Certificate { return idp.keys.samlCert }

// Issuer is the OpenID provider's issuer: <BaseURL>/oidc.
func (idp *IdP) Issuer() string { return idp.base + "/oidc" }

// OIDCKeyID is the kid of the key that signs ID tokens.
func (idp *IdP) OIDCKeyID() string { return idp.keys.oidcKID }

// People are the people the IdP offers.
func (idp *IdP) People() []Person { return clonePeople(idp.people) }
