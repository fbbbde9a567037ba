package edge

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/connection"
	"github.com/jitprov/jitprov/internal/edge/oidcrp"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

type oidcSide struct {
	settings connection.OIDC
	rp       *oidcrp.RP
}

// loadOIDC builds an OIDC connection's relying party: discovery, client
// secret from its file or variable, callback on the edge's public URL.
func (r *registry) loadOIDC(ctx context.Context, org store.Organization, c store.Connection) (*conn, error) {
	settings, problems := connection.CheckOIDC(c.Settings, org.Roles)
	if len(problems) > 0 {
		return nil, fmt.Errorf("connection %s/%s: settings: %w", org.ID, c.ID, connection.ProblemList(problems))
	}
	var secret string
	var key crypto.Signer
	var err error
	if settings.TokenEndpointAuth == connection.AuthPrivateKeyJWT {
		key, err = settings.PrivateKey()
	} else {
		secret, err = settings.ClientSecret(os.Getenv)
	}
	if err != nil {
		return nil, fmt.Errorf("connection %s/%s: %w", org.ID, c.ID, err)
	}
	issuer, _ := url.Parse(settings.Issuer) // checked by Problems
	rp, err := oidcrp.New(ctx, oidcrp.Config{
		Issuer: settings.Issuer, ClientID: settings.ClientID, ClientSecret: secret,
		RedirectURL: r.publicURL.JoinPath("oidc", org.ID, c.ID, "callback").String(),
		Scopes:      settings.Scopes, AllowedAlgs: settings.AllowedAlgs,
		TokenAuth:     oidcrp.TokenAuth(settings.TokenEndpointAuth),
		PrivateKey:    key,
		PrivateKeyID:  settings.PrivateKeyID,
		HTTPClient:    &http.Client{Timeout: r.client.Timeout, Transport: telemetry.HTTPTransport(nil, r.tracer, "oidc-provider", telemetry.RedactQuery)},
		AllowInsecure: issuer.Scheme == "http", // Problems allows http only on loopback
		Userinfo:      settings.Userinfo,
	})
	if err != nil {
		return nil, fmt.Errorf("connection %s/%s: %w", org.ID, c.ID, err)
	}
	return &conn{org: org, id: c.ID, loaded: time.Now(), oidc: &oidcSide{settings: settings, rp: rp}}, nil
}

// startOIDC sends the browser to the provider: authorization code with
// PKCE, state and nonce bound to this browser's pending-login cookie.
func (s *Server) startOIDC(w http.ResponseWriter, r *http.Request) {
	c, ok := s.conn(w, r, events.ProtocolOIDC)
	if !ok {
		return
	}
	s.warnOtherHost(r, c.org.ID, c.id)
	returnTo := session.SafeReturnTo(r.URL.Query().Get("return_to"), s.cfg.AllowedReturnOrigins, s.landing(c.org))
	start, err := c.oidc.rp.Begin()
	if err != nil {
		s.fail(w, r, pageUnavailable, "begin the OIDC login", "err", err)
		return
	}
	if err := s.sessions.IssuePending(w, r, session.PendingLogin{RequestID: start.State, ConnectionKey: connKey(c.org.ID, c.id),
		ReturnTo: returnTo, Nonce: start.Nonce, PKCEVerifier: start.Verifier, Traceparent: firstLeg(r.Context())}); err != nil {
		s.fail(w, r, pageUnavailable, "issue the pending-login cookie", "err", err)
		return
	}
	http.Redirect(w, r, start.URL, http.StatusFound)
}

// oidcCallback finishes the login: the state must match a pending login
// of this browser (used once), then code exchange and ID-token checks.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	c, ok := s.conn(w, r, events.ProtocolOIDC)
	if !ok {
		return
	}
	p, err := s.sessions.TakePending(w, r, connKey(c.org.ID, c.id), r.URL.Query().Get("state"))
	if err != nil && !s.sessions.PendingCookieSent(r) && r.URL.Query().Get("error") == "" {
		s.refusedLogin(r.Context(), events.ProtocolOIDC, "no_pending_cookie")
		s.cookieLost(w, r, "OIDC callback without a pending login of this browser: the browser sent back no pending-login cookie",
			"protocol", events.ProtocolOIDC, "org", c.org.ID, "connection", c.id)
		return
	}
	if err != nil {
		s.refusedLogin(r.Context(), events.ProtocolOIDC, string(oidcrp.ReasonPending))
		s.fail(w, r, pageSignInFailed, "OIDC callback without a pending login of this browser", "org", c.org.ID, "connection", c.id, "err", err)
		return
	}
	linkFirstLeg(r.Context(), p)
	claims, err := c.oidc.rp.Finish(r.Context(), oidcrp.Pending{State: p.RequestID, Nonce: p.Nonce, Verifier: p.PKCEVerifier}, r.URL.Query())
	if err != nil {
		s.refusedLogin(r.Context(), events.ProtocolOIDC, string(oidcrp.ReasonOf(err)))
		s.fail(w, r, pageSignInFailed, "OIDC login rejected", "org", c.org.ID, "connection", c.id,
			"reason", oidcrp.ReasonOf(err), "err", err)
		return
	}
	id, err := oidcIdentity(c, claims, s.log)
	if err != nil {
		s.refusedLogin(r.Context(), events.ProtocolOIDC, "identity")
		s.fail(w, r, pageSignInFailed, "cannot map the claims to an identity", "org", c.org.ID, "connection", c.id, "err", err)
		return
	}
	s.warnUnmapped(r.Context(), c, events.ProtocolOIDC, oidcFields(c.oidc.settings, claims), oidcSent(claims))
	s.signIn(w, r, id, p.ReturnTo)
}

// oidcIdentity maps verified claims to the identity the provisioner
// decides on. The external id is the subject (the connection fixes the
// issuer). Claims the login contract cannot carry are dropped or refuse
// the login (fitContract).
func oidcIdentity(c *conn, cl *oidcrp.Claims, log *slog.Logger) (events.Identity, error) {
	return MapOIDC(c.org.ID, c.id, c.oidc.settings, cl, log)
}

// MapOIDC maps ID-token (and userinfo) claims to the identity the
// provisioner decides on, by an OIDC connection's settings s: the mapping
// of a login at the edge, callable without an edge (the admin dry run).
// It logs to log what it drops or ignores. It does not verify cl; the
// edge calls it only on verified claims.
func MapOIDC(orgID, connID string, s connection.OIDC, cl *oidcrp.Claims, log *slog.Logger) (events.Identity, error) {
	m := s.Claims
	str := func(path, def string) string {
		if path == "" {
			path = def
		}
		if v, ok := oidcrp.Lookup(cl.Raw, path); ok {
			if s, ok := v.(string); ok {
				return s
			}
		}
		return ""
	}
	list := func(path string) []string {
		if path == "" {
			return nil
		}
		v, _ := oidcrp.Lookup(cl.Raw, path)
		switch t := v.(type) {
		case string:
			return []string{t}
		case []any:
			var out []string
			for _, e := range t {
				if s, ok := e.(string); ok {
					out = append(out, s)
				}
			}
			return out
		}
		return nil
	}
	id := events.Identity{
		OrganizationID: orgID, ConnectionID: connID, Protocol: events.ProtocolOIDC, ExternalID: cl.Subject,
		GivenName: str(m.GivenName, "given_name"), FamilyName: str(m.FamilyName, "family_name"),
		DisplayName: str(m.DisplayName, "name"), Groups: list(m.Groups), Roles: list(m.Roles),
		AuthenticatedAt: time.Now().UTC(),
	}
	email, verified := cl.Email, cl.EmailVerified
	if m.Email != "" {
		email = str(m.Email, "")
		// The standard email_verified speaks of the standard email claim
		// only: a mapped claim (preferred_username, upn…) that a person may
		// set to someone else's address is verified only by a mapped
		// email_verified, or where it is that very address.
		verified = cl.EmailVerified && cl.Email != "" && email == cl.Email
	}
	if m.EmailVerified != "" {
		v, _ := oidcrp.Lookup(cl.Raw, m.EmailVerified)
		verified, _ = v.(bool)
	}
	if email != "" {
		if validEmail(email) {
			id.Email, id.EmailVerified = email, verified
		} else {
			log.Warn("the provider's email claim is not an email address a login carries; ignored", "connection", connID)
		}
	}
	applyClaimRules(&id, s.GroupRoles, s.Constants)
	applyConstants(&id, s.Constants)
	if err := fitContract(&id, log); err != nil {
		return events.Identity{}, err
	}
	return id, nil
}

// applyClaimRules adds a connection's constant groups and roles, then the
// roles its group rules give (SAML and OIDC alike).
func applyClaimRules(id *events.Identity, groupRoles []connection.GroupRole, constants connection.Constants) {
	for _, g := range constants.Groups {
		if !slices.Contains(id.Groups, g) {
			id.Groups = append(id.Groups, g)
		}
	}
	for _, r := range constants.Roles {
		if !slices.Contains(id.Roles, r) {
			id.Roles = append(id.Roles, r)
		}
	}
	for _, gr := range groupRoles {
		if slices.Contains(id.Groups, gr.Group) && !slices.Contains(id.Roles, gr.Role) {
			id.Roles = append(id.Roles, gr.Role)
		}
	}
}
