package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/config"
	"github.com/jitprov/jitprov/internal/store/postgres"
)

// ConnectionID is the id of each load-test organisation's SAML connection.
const ConnectionID = "idp"

// SetupConfig says which load-test organisations to write.
type SetupConfig struct {
	Dir      string // the state folder: key, certificate, organisations file, loadtest.json
	EdgeURL  string // the edge's public URL (JITPROV_EDGE_PUBLIC_URL): ACS URLs are built on it
	Orgs     int    // how many organisations (M)
	Prefix   string // organisation ids are <prefix>-0 … <prefix>-(M-1); default "loadtest"
	MaxSeats int    // per organisation; default 1,000,000
	// DatabaseURL, when set, applies the organisations there (a migrated
	// jitprov database); otherwise apply the organisations file yourself.
	DatabaseURL string
	// CertValidity of the IdP certificate; default 30 days.
	CertValidity time.Duration
	// OIDCIssuer, when set, gives every organisation an OIDC connection
	// too (OIDCConnectionID) against the load-test provider at that URL,
	// client OIDCClientID, its secret in the edge's OIDCSecretEnv.
	OIDCIssuer string
	// IdP, when set, is the load-test IdP to write (else a new one).
	IdP *IdP
}

// State is what setup leaves for the runs (loadtest.json).
type State struct {
	EdgeURL    string   `json:"edge_url"`
	Orgs       []string `json:"orgs"`
	Connection string   `json:"connection"`
	// OIDCConnection is each organisation's OIDC connection, when setup
	// made one (compare does, against its load-test provider).
	OIDCConnection string    `json:"oidc_connection,omitempty"`
	Created        time.Time `json:"created"`
}

func (s State) target(org string) target {
	base := strings.TrimRight(s.EdgeURL, "/")
	return target{acs: base + "/saml/" + org + "/" + s.Connection + "/acs", spEntityID: SPEntityID(org)}
}

func (s State) oidcLogin(org string) string {
	return strings.TrimRight(s.EdgeURL, "/") + "/oidc/" + org + "/" + s.OIDCConnection + "/login"
}

// SPEntityID is the pinned sp_entity_id of org's load-test connection.
func SPEntityID(org string) string { return "urn:jitprov:loadtest:" + org + ":" + ConnectionID }

// Setup makes the load-test IdP key, writes the organisations file and
// the state into cfg.Dir, and applies the organisations when
// cfg.DatabaseURL is set. It returns the organisations file.
func Setup(ctx context.Context, cfg SetupConfig) ([]byte, error) {
	if cfg.Orgs < 1 {
		return nil, errors.New("loadtest setup: -orgs must be at least 1")
	}
	u, err := url.Parse(cfg.EdgeURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("loadtest setup: -edge-url %q: want the edge's public URL, e.g. https://sso.example.com", cfg.EdgeURL)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "loadtest"
	}
	if cfg.MaxSeats <= 0 {
		cfg.MaxSeats = 1_000_000
	}
	if cfg.CertValidity <= 0 {
		cfg.CertValidity = 30 * 24 * time.Hour
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	idp := cfg.IdP
	if idp == nil {
		if idp, err = NewIdP(cfg.CertValidity); err != nil {
			return nil, err
		}
	}
	st := State{EdgeURL: strings.TrimRight(cfg.EdgeURL, "/"), Connection: ConnectionID, Created: time.Now().UTC()}
	if cfg.OIDCIssuer != "" {
		st.OIDCConnection = OIDCConnectionID
	}
	for i := range cfg.Orgs {
		st.Orgs = append(st.Orgs, fmt.Sprintf("%s-%d", cfg.Prefix, i))
	}
	yml, err := organizationsYAML(idp, st.Orgs, cfg.MaxSeats, cfg.OIDCIssuer)
	if err != nil {
		return nil, err
	}
	orgs, conns, err := config.ParseOrganizations(orgsFile, yml)
	if err != nil {
		return nil, fmt.Errorf("loadtest setup: the organisations file does not validate: %w", err)
	}
	if err := idp.Save(cfg.Dir); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, orgsFile), yml, 0o644); err != nil {
		return nil, err
	}
	js, _ := json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.Dir, stateFile), append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: 2})
		if err != nil {
			return nil, err
		}
		defer s.Close()
		if err := s.ApplyOrganizations(ctx, orgs, conns); err != nil {
			return nil, fmt.Errorf("loadtest setup: apply the organisations: %w", err)
		}
	}
	return yml, nil
}

// LoadState reads loadtest.json from dir.
func LoadState(dir string) (State, error) {
	var st State
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, fmt.Errorf("%w (run `jitprov loadtest setup` first)", err)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	if len(st.Orgs) == 0 || st.EdgeURL == "" {
		return st, fmt.Errorf("%s names no organisations or no edge URL", filepath.Join(dir, stateFile))
	}
	return st, nil
}

// OrganizationsYAML is the organisations file of the load-test
// organisations: each with one SAML connection that trusts the load-test
// IdP (its metadata inline), accepts IdP-initiated logins, and tolerates
// ClockSkew.
func OrganizationsYAML(idp *IdP, orgs []string, maxSeats int) ([]byte, error) {
	return organizationsYAML(idp, orgs, maxSeats, "")
}

func organizationsYAML(idp *IdP, orgs []string, maxSeats int, oidcIssuer string) ([]byte, error) {
	md, err := idp.MetadataXML()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Load-test organisations, written by `jitprov loadtest setup`. Apply them to the\n")
	b.WriteString("# database the edge and the provisioner use (jitprov apply -f, or setup -database-url).\n")
	b.WriteString("organizations:\n")
	for _, id := range orgs {
		fmt.Fprintf(&b, `  - id: %s
    name: Load test %s
    max_seats: %d
    roles: [viewer, member, admin]
    default_role: member
    jit_role_ceiling: member
    update_policy: prefer-idp
    link_by_email: never
    connections:
      - id: %s
        protocol: saml
        settings:
          sp_entity_id: %s
          allow_idp_initiated: true
          clock_skew: %s
          email_verified: true
          attributes: {email: email, given_name: givenName, family_name: familyName}
          idp_metadata_xml: |
`, id, id, maxSeats, ConnectionID, SPEntityID(id), ClockSkew)
		for line := range strings.SplitSeq(md, "\n") {
			b.WriteString("            " + line + "\n")
		}
		if oidcIssuer != "" {
			fmt.Fprintf(&b, `      - id: %s
        protocol: oidc
        settings:
          issuer: %s
          client_id: %s
          client_secret_env: %s
          allowed_algs: [ES256]
`, OIDCConnectionID, oidcIssuer, OIDCClientID, OIDCSecretEnv)
		}
	}
	return []byte(b.String()), nil
}

// WriteTarget writes a state folder that points runs at another server
// with the same load-test IdP: the naive baseline, serving organisations
// of its own.
func WriteTarget(dir string, idp *IdP, st State) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := idp.Save(dir); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(dir, stateFile), append(js, '\n'), 0o644)
}
