// Package naive is the baseline `jitprov loadtest compare` measures the
// pipeline against: the naive synchronous design jitprov replaced. One plain
// net/http handler validates the login exactly as sso-edge does (SAML:
// internal/edge/samlsp with the load-test connections' settings; OIDC:
// internal/edge/oidcrp) and then provisions the person in ONE pgx
// transaction on the request's goroutine — the statements of
// internal/bench/decision.pgbench.sql (the provisioner's decision: user,
// identity, seat, user.created in the outbox, the decision row) — and
// answers 303 with a session cookie. No NATS, no known-identity cache, no
// replay cache shared by replicas: the design the pipeline replaces.
//
// The same handler without the database (paths under /validate) is the
// validation-only baseline: the most a returning login could cost.
package naive

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
)

// CookieName is the naive session cookie.
const CookieName = "naive_session"

// pendingCookie carries an OIDC login's state, nonce and PKCE verifier.
const pendingCookie = "naive_pending"

// Config of the naive server.
type Config struct {
	PublicURL url.URL  // where browsers reach it: ACS URLs are built on it
	Orgs      []string // the organisations it serves
	// SAMLConnection is the id of each organisation's SAML connection
	// ("idp"); SPEntityID(org) its pinned SP entity id.
	SAMLConnection string
	SPEntityID     func(org string) string
	IDPMetadata    *saml.EntityDescriptor
	ClockSkew      time.Duration
	SPKey          crypto.Signer
	SPCert         *x509.Certificate
	// OIDC, when set, serves /oidc/<org>/<OIDC.Connection>/login and
	// /callback against that provider.
	OIDC *OIDC
	// Pool is the database; nil serves validation only.
	Pool      *pgxpool.Pool
	CookieKey []byte // HMAC key of the cookies (32 bytes)
}

// OIDC is the OpenID provider the OIDC connections use.
type OIDC struct {
	Connection   string // "oidc"
	Issuer       string
	ClientID     string
	ClientSecret string
}

// Server is the naive baseline's HTTP handler.
type Server struct {
	cfg      Config
	full     map[string]*samlsp.SP // by org: ACS under /saml/
	validate map[string]*samlsp.SP // by org: ACS under /validate/saml/
	rps      map[string]*oidcrp.RP // by org
	mux      *http.ServeMux
}

// Errors of a provisioning transaction.
var (
	ErrNoSeat     = errors.New("no seat available")
	ErrReplay     = errors.New("this login was already used")
	ErrUnknownOrg = errors.New("unknown organisation")
)

// New builds the SPs (and the OIDC relying parties, which fetch the
// provider's discovery document) of every organisation.
func New(ctx context.Context, cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, full: map[string]*samlsp.SP{}, validate: map[string]*samlsp.SP{}, rps: map[string]*oidcrp.RP{},
		mux: http.NewServeMux()}
	if len(cfg.CookieKey) < 16 {
		return nil, errors.New("naive: a cookie key of at least 16 bytes is needed")
	}
	for _, org := range cfg.Orgs {
		for _, v := range []struct {
			prefix string
			into   map[string]*samlsp.SP
		}{{"", s.full}, {"validate", s.validate}} {
			base := cfg.PublicURL.JoinPath(v.prefix, "saml", org, cfg.SAMLConnection)
			// The edge's loadSAML, for a connection with
			// allow_idp_initiated: true, signed assertions required, no SHA-1.
			sp, err := samlsp.New(samlsp.Config{EntityID: cfg.SPEntityID(org), ACSURL: *base.JoinPath("acs"),
				MetadataURL: *base.JoinPath("metadata"), IDPMetadata: cfg.IDPMetadata, AllowIDPInitiated: true,
				ClockSkew: cfg.ClockSkew, Key: cfg.SPKey, Certificate: cfg.SPCert})
			if err != nil {
				return nil, fmt.Errorf("naive: %s: %w", org, err)
			}
			v.into[org] = sp
		}
		if o := cfg.OIDC; o != nil {
			issuer, _ := url.Parse(o.Issuer)
			rp, err := oidcrp.New(ctx, oidcrp.Config{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret,
				RedirectURL: cfg.PublicURL.JoinPath("oidc", org, o.Connection, "callback").String(),
				HTTPClient:  &http.Client{Timeout: 10 * time.Second}, AllowInsecure: issuer.Scheme == "http"})
			if err != nil {
				return nil, fmt.Errorf("naive: %s: %w", org, err)
			}
			s.rps[org] = rp
		}
	}
	s.mux.HandleFunc("POST /saml/{org}/{conn}/acs", func(w http.ResponseWriter, r *http.Request) { s.acs(w, r, s.full, true) })
	s.mux.HandleFunc("POST /validate/saml/{org}/{conn}/acs", func(w http.ResponseWriter, r *http.Request) { s.acs(w, r, s.validate, false) })
	s.mux.HandleFunc("GET /oidc/{org}/{conn}/login", s.oidcLogin)
	s.mux.HandleFunc("GET /oidc/{org}/{conn}/callback", s.oidcCallback)
	s.mux.HandleFunc("GET /auth/verify", s.verify)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) acs(w http.ResponseWriter, r *http.Request, sps map[string]*samlsp.SP, provision bool) {
	org := r.PathValue("org")
	sp, ok := sps[org]
	if !ok || r.PathValue("conn") != s.cfg.SAMLConnection {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	a, err := sp.ParseResponse(r.Context(), r.PostForm.Get("SAMLResponse"), nil)
	if err != nil {
		http.Error(w, "sign-in failed: "+string(samlsp.ReasonOf(err)), http.StatusForbidden)
		return
	}
	ext, err := samlsp.ExternalID(a, samlsp.ExternalIDRule{})
	if err != nil {
		http.Error(w, "sign-in failed: no external id", http.StatusForbidden)
		return
	}
	p := Person{Org: org, Connection: s.cfg.SAMLConnection, LoginID: a.ID, ExternalID: ext,
		Email: first(a.Attributes["email"]), GivenName: first(a.Attributes["givenName"]), FamilyName: first(a.Attributes["familyName"])}
	s.finish(w, r, p, provision)
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, p Person, provision bool) {
	uid := "v:" + p.ExternalID // validation only: the session names the person
	if provision {
		var err error
		uid, err = Provision(r.Context(), s.cfg.Pool, p)
		switch {
		case errors.Is(err, ErrNoSeat), errors.Is(err, ErrReplay), errors.Is(err, ErrUnknownOrg):
			http.Error(w, "sign-in refused: "+err.Error(), http.StatusForbidden)
			return
		case err != nil:
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.seal(uid), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: 8 * 3600})
	http.Redirect(w, r, "/auth/verify", http.StatusSeeOther)
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(CookieName)
	if err != nil {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	uid, ok := s.open(c.Value)
	if !ok {
		http.Error(w, "no session", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-Jitprov-User-Id", uid)
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	rp, ok := s.rps[r.PathValue("org")]
	if !ok || r.PathValue("conn") != s.cfg.OIDC.Connection {
		http.NotFound(w, r)
		return
	}
	start, err := rp.Begin()
	if err != nil {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
		return
	}
	v := strings.Join([]string{start.State, start.Nonce, start.Verifier}, " ")
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: s.seal(v), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
		MaxAge: 600})
	http.Redirect(w, r, start.URL, http.StatusFound)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	rp, ok := s.rps[org]
	if !ok || r.PathValue("conn") != s.cfg.OIDC.Connection {
		http.NotFound(w, r)
		return
	}
	c, err := r.Cookie(pendingCookie)
	var parts []string
	if err == nil {
		if v, ok := s.open(c.Value); ok {
			parts = strings.Split(v, " ")
		}
	}
	if len(parts) != 3 {
		http.Error(w, "no pending login", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Path: "/", MaxAge: -1})
	cl, err := rp.Finish(r.Context(), oidcrp.Pending{State: parts[0], Nonce: parts[1], Verifier: parts[2]}, r.URL.Query())
	if err != nil {
		http.Error(w, "sign-in failed: "+string(oidcrp.ReasonOf(err)), http.StatusForbidden)
		return
	}
	given, _ := cl.Raw["given_name"].(string)
	family, _ := cl.Raw["family_name"].(string)
	s.finish(w, r, Person{Org: org, Connection: s.cfg.OIDC.Connection, LoginID: "oidc-" + parts[0], ExternalID: cl.Subject,
		Email: cl.Email, GivenName: given, FamilyName: family}, s.cfg.Pool != nil)
}

// seal is v with its HMAC: v "." mac, both base64url.
func (s *Server) seal(v string) string {
	m := hmac.New(sha256.New, s.cfg.CookieKey)
	m.Write([]byte(v))
	return base64.RawURLEncoding.EncodeToString([]byte(v)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) open(c string) (string, bool) {
	b64, mac, ok := strings.Cut(c, ".")
	if !ok {
		return "", false
	}
	v, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil {
		return "", false
	}
	m := hmac.New(sha256.New, s.cfg.CookieKey)
	m.Write(v)
	return string(v), hmac.Equal(got, m.Sum(nil))
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Person is one verified login to provision.
type Person struct {
	Org, Connection string
	LoginID         string // the assertion ID (SAML) or the state (OIDC): the decision's key
	ExternalID      string
	Email           string
	GivenName       string
	FamilyName      string
}

// Provision decides one login in ONE transaction: the statements of
// internal/bench/decision.pgbench.sql (the provisioner's transaction for a
// first login), with a returning person's user touched instead of
// created. It returns the user's id. Two logins of one new person at once
// meet on the unique indexes; the loser is rolled back and tried again,
// and then finds the user: one user, one seat.
func Provision(ctx context.Context, pool *pgxpool.Pool, p Person) (string, error) {
	for attempt := 0; ; attempt++ {
		var uid string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var err error
			uid, err = provisionTx(ctx, tx, p)
			return err
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40P01") && attempt < 3 {
			continue // unique violation (a concurrent first login of the same person) or deadlock
		}
		return uid, err
	}
}

func provisionTx(ctx context.Context, tx pgx.Tx, p Person) (string, error) {
	var dummy string
	err := tx.QueryRow(ctx, `SELECT login_id FROM provisioning_decisions WHERE login_id = $1`, p.LoginID).Scan(&dummy)
	if err == nil {
		return "", ErrReplay
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	var role string
	err = tx.QueryRow(ctx, `SELECT id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling, update_policy, link_by_email,
			verified_domains, seat_warning_percent, landing_url, initial_admins
		FROM organizations WHERE id = $1`, p.Org).Scan(&dummy, nil, nil, nil, nil, &role, nil, nil, nil, nil, nil, nil, nil)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrUnknownOrg
	} else if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `SELECT org_id, id, protocol, settings::text, display_name, replaces FROM connections WHERE org_id = $1 ORDER BY id`, p.Org); err != nil {
		return "", err
	}
	var uid string
	err = tx.QueryRow(ctx, `SELECT u.id::text, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
			u.display_name, u.groups, u.role, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at
		FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.org_id = $1 AND i.connection_id = $2 AND i.external_id = $3 FOR UPDATE OF u`, p.Org, p.Connection, p.ExternalID).
		Scan(&uid, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil)
	switch {
	case err == nil: // returning: touch the user and the identity, record the decision
		if _, err := tx.Exec(ctx, `UPDATE users SET last_login_at = now() WHERE id = $1`, uid); err != nil {
			return "", err
		}
		if _, err := tx.Exec(ctx, `UPDATE identities SET last_seen_at = now() WHERE org_id = $1 AND connection_id = $2 AND external_id = $3`,
			p.Org, p.Connection, p.ExternalID); err != nil {
			return "", err
		}
		return uid, decision(ctx, tx, p, uid, "unchanged")
	case !errors.Is(err, pgx.ErrNoRows):
		return "", err
	}
	if _, err := tx.Exec(ctx, `SELECT u.id::text, u.org_id, coalesce(u.email, ''), u.email_verified, u.given_name, u.family_name,
			u.display_name, u.groups, u.role, u.status, u.attributes, u.created_by, u.created_at, u.updated_at, u.last_login_at
		FROM users u WHERE org_id = $1 AND lower(email) = lower($2) FOR UPDATE`, p.Org, p.Email); err != nil {
		return "", err
	}
	tag, err := tx.Exec(ctx, `UPDATE organizations SET seats_used = seats_used + 1, updated_at = now()
		WHERE id = $1 AND seats_used < max_seats
		RETURNING id, name, max_seats, seats_used, roles, default_role, jit_role_ceiling, update_policy, link_by_email, verified_domains,
			seat_warning_percent, landing_url, initial_admins`, p.Org)
	if err != nil {
		return "", err
	}
	if tag.RowsAffected() == 0 {
		return "", ErrNoSeat
	}
	var created time.Time
	err = tx.QueryRow(ctx, `INSERT INTO users (id, org_id, email, given_name, family_name, display_name,
			groups, role, status, attributes, created_by, email_verified, last_login_at)
		VALUES (gen_random_uuid(), $1, $2, $3, $4, '', '{}', $5, 'active', '{}', 'jit', true, now())
		RETURNING id::text, created_at`, p.Org, p.Email, p.GivenName, p.FamilyName, role).Scan(&uid, &created)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO identities (org_id, connection_id, external_id, user_id, linked_by)
		VALUES ($1, $2, $3, $4, 'created')`, p.Org, p.Connection, p.ExternalID, uid); err != nil {
		return "", err
	}
	at := created.UTC().Format(time.RFC3339Nano)
	data, _ := json.Marshal(map[string]any{"login_id": p.LoginID, "user": map[string]any{"id": uid, "organization_id": p.Org,
		"connection_id": p.Connection, "external_id": p.ExternalID, "email": p.Email, "given_name": p.GivenName,
		"family_name": p.FamilyName, "role": role, "status": "active", "created_by": "jit", "created_at": at, "updated_at": at}})
	header, _ := json.Marshal(map[string][]string{"ce-id": {p.LoginID}, "ce-time": {at}, "ce-type": {"io.jitprov.user.created.v1"},
		"ce-source": {"/jitprov/naive"}, "ce-subject": {uid}, "content-type": {"application/json"},
		"ce-dataschema": {"https://jitprov.io/schemas/user.created/v1.json"}, "ce-specversion": {"1.0"}})
	if _, err := tx.Exec(ctx, `INSERT INTO outbox (event_id, subject, header, data) VALUES (gen_random_uuid()::text, $1, $2, $3)`,
		"jit.user.created."+p.Org, header, data); err != nil {
		return "", err
	}
	return uid, decision(ctx, tx, p, uid, "created")
}

func decision(ctx context.Context, tx pgx.Tx, p Person, uid, outcome string) error {
	result, _ := json.Marshal(map[string]any{"login_id": p.LoginID, "outcome": outcome,
		"user": map[string]any{"id": uid, "status": "active", "email": p.Email}, "decided_at": time.Now().UTC()})
	_, err := tx.Exec(ctx, `INSERT INTO provisioning_decisions (login_id, org_id, connection_id, external_id, outcome, reason, user_id, result, decided_at)
		VALUES ($1, $2, $3, $4, $5, '', $6, $7, now())`, p.LoginID, p.Org, p.Connection, p.ExternalID, outcome, uid, result)
	return err
}
