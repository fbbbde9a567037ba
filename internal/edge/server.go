// Package edge is sso-edge: the SAML service provider in front of
// jitprov. It validates what a person's identity provider says
// (samlsp), asks the provisioner for their account (the request-reply
// client of package bus) or finds it in the known identities, and signs
// them in with a sealed session cookie; ingresses ask /auth/verify.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/bus"
	"github.com/jitprov/jitprov/internal/edge/replay"
	"github.com/jitprov/jitprov/internal/edge/samlsp"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/telemetry"
)

// Provisioner answers a login with the provisioner's decision, and hears
// of returning logins (bus.Client).
type Provisioner interface {
	ProvisionEvent(ctx context.Context, ev events.Event) (events.ProvisioningResult, error)
	PublishLogin(ctx context.Context, ev events.Event) error
	Seen(ctx context.Context, seen events.LoginSeen) error
}

// Decisions reads what the provisioner decided about a login, for the
// waiting page: the decision is durable before the login is acked, so a
// person whose account exists is never left waiting.
type Decisions interface {
	Decision(ctx context.Context, loginID string) (store.Decision, error)
	// User reads a user as it is now: the waiting page of a held sign-up
	// notices an admin's approval or denial by it.
	User(ctx context.Context, orgID, userID string) (store.User, error)
}

// Replays claims each assertion id once across all edge replicas.
type Replays interface {
	Claim(ctx context.Context, issuer, assertionID string, notOnOrAfter time.Time) error
}

// KnownIdentities looks up what the provisioner last decided about an
// identity.
type KnownIdentities interface {
	Get(ctx context.Context, org, conn, externalID string) (known.Record, error)
}

// Server serves the edge's HTTP endpoints.
type Server struct {
	cfg      Config
	reg      *registry
	sessions *session.Manager
	replays  Replays
	known    KnownIdentities
	prov     Provisioner
	decided  Decisions
	// republishing bounds the logins whose publish goes on in the
	// background after the person was shown the waiting page.
	republishing chan struct{}
	limits       *limits
	// failures samples the log lines of refused sign-ins: a flood logs one
	// line per kind and interval, with a count.
	failures *sampler
	// unmapped remembers the identity fields it warned of, once per
	// connection and field.
	unmapped *unmappedWarnings
	// standings rechecks a session's user for /auth/verify; nil trusts
	// sessions until they expire.
	standings *standings
	tracer    trace.TracerProvider
	log       *slog.Logger
	m         edgeMetrics
	// certExp is what the last certificate check saw, for the expiry
	// gauge.
	certExp *certExpiries
}

// Handler routes the edge's endpoints.
func (s *Server) Handler(ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			s.log.WarnContext(ctx, "not ready", "err", err)
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	// The sign-in endpoints are rate limited per client address, and those
	// that validate an IdP's answer per connection too; health,
	// forward-auth, sign-out and the waiting page are not.
	mux.HandleFunc("GET /login", s.loginForm)
	mux.Handle("POST /login", s.limits.byClient(http.HandlerFunc(s.discover)))
	mux.Handle("GET /saml/{org}/{conn}/metadata", s.limits.byClient(http.HandlerFunc(s.metadata)))
	mux.Handle("GET /saml/{org}/{conn}/login", s.limits.byClient(http.HandlerFunc(s.startLogin)))
	mux.Handle("POST /saml/{org}/{conn}/acs", s.limits.byConnection(http.HandlerFunc(s.acs)))
	mux.Handle("GET /oidc/{org}/{conn}/login", s.limits.byClient(http.HandlerFunc(s.startOIDC)))
	mux.Handle("GET /oidc/{org}/{conn}/callback", s.limits.byConnection(http.HandlerFunc(s.oidcCallback)))
	// The waiting page refreshes every 3 s: not limited, or people
	// waiting behind one office address would use up its sign-ins. It
	// costs a token check, and at most two reads.
	mux.HandleFunc("GET /login/continue", s.continueLogin)
	mux.HandleFunc("GET /auth/verify", s.verify)
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /logout", s.logout)
	mux.HandleFunc("POST /logout", s.logout)
	return s.traced(s.measured(mux))
}

// traced runs each request in a server span (telemetry.ServerHandler):
// its logs carry a trace id and the login it publishes continues the same
// trace; the edge measures its requests itself, by route (measured).
func (s *Server) traced(next http.Handler) http.Handler {
	return telemetry.ServerHandler(next, s.tracer)
}

// conn finds the path's connection of protocol p, or answers with a page.
func (s *Server) conn(w http.ResponseWriter, r *http.Request, p events.Protocol) (*conn, bool) {
	c, err := s.reg.get(r.Context(), r.PathValue("org"), r.PathValue("conn"))
	switch {
	case errors.Is(err, errUnknownConnection),
		err == nil && (p == events.ProtocolSAML) != (c.saml != nil):
		s.render(w, r, pageUnknownConnection)
		return nil, false
	case err != nil:
		s.connectionFailed(w, r, err)
		return nil, false
	}
	return c, true
}

// connectionFailed says why the path's connection cannot serve: a
// configuration error, which trying again does not cure (the log names it
// as such, with the library's reason), an IdP that cannot be reached now,
// or the store.
func (s *Server) connectionFailed(w http.ResponseWriter, r *http.Request, err error) {
	org, conn := r.PathValue("org"), r.PathValue("conn")
	var le *loadError
	switch {
	case errors.As(err, &le) && le.protocol == "":
		s.fail(w, r, pageUnavailable, "cannot read the connection from the store", "org", org, "connection", conn, "err", err)
	case errors.As(err, &le) && le.transient:
		s.fail(w, r, pageIdPUnreachable, "cannot reach the identity provider of the "+protocolName(le.protocol)+" connection; sign-in through it fails until it answers",
			"protocol", le.protocol, "org", org, "connection", conn, "err", err)
	case errors.As(err, &le):
		s.fail(w, r, pageMisconfigured, "configuration error: the "+protocolName(le.protocol)+" connection cannot be loaded; nobody can sign in through it until its settings are fixed",
			"protocol", le.protocol, "org", org, "connection", conn, "reason", err.Error())
	default:
		s.fail(w, r, pageUnavailable, "cannot load the connection", "org", org, "connection", conn, "err", err)
	}
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	c, ok := s.conn(w, r, events.ProtocolSAML)
	if !ok {
		return
	}
	out, err := samlsp.MarshalMetadata(c.saml.sp.Metadata())
	if err != nil {
		s.fail(w, r, pageUnavailable, "render SP metadata", "err", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(out)
}

// startLogin sends the browser to the IdP with an AuthnRequest, and binds
// the request to this browser with the pending-login cookie.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request) {
	c, ok := s.conn(w, r, events.ProtocolSAML)
	if !ok {
		return
	}
	s.warnOtherHost(r, c.org.ID, c.id)
	returnTo := session.SafeReturnTo(r.URL.Query().Get("return_to"), s.cfg.AllowedReturnOrigins, s.landing(c.org))
	redirect, requestID, err := c.saml.sp.AuthnRequestURL("")
	if err != nil {
		s.fail(w, r, pageUnavailable, "build the AuthnRequest", "err", err)
		return
	}
	if err := s.sessions.IssuePending(w, r, session.PendingLogin{
		RequestID: requestID, ConnectionKey: connKey(c.org.ID, c.id), ReturnTo: returnTo, Traceparent: firstLeg(r.Context()),
	}); err != nil {
		s.fail(w, r, pageUnavailable, "issue the pending-login cookie", "err", err)
		return
	}
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// acs receives the IdP's response (HTTP-POST binding). No CSRF guard may
// sit in front of it: the POST is cross-site by design, and the response's
// InResponseTo, bound to this browser's pending-login cookie, is the guard.
func (s *Server) acs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c, ok := s.conn(w, r, events.ProtocolSAML)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.refusedLogin(ctx, events.ProtocolSAML, "unreadable_form")
		s.fail(w, r, page{Status: http.StatusRequestEntityTooLarge, Title: pageSignInFailed.Title, Message: pageSignInFailed.Message},
			"unreadable ACS form", "org", c.org.ID, "connection", c.id, "err", err)
		return
	}
	key := connKey(c.org.ID, c.id)
	a, err := c.saml.sp.ParseResponse(ctx, r.PostForm.Get("SAMLResponse"), s.sessions.PendingRequestIDs(r, key))
	if samlsp.ReasonOf(err) == samlsp.ReasonUnsolicited && !s.sessions.PendingCookieSent(r) && answersARequest(r.PostForm.Get("SAMLResponse")) {
		// The IdP answers a login request, yet this browser has no
		// login under way: its cookie did not come back. Not a question
		// of IdP-initiated settings.
		s.refusedLogin(ctx, events.ProtocolSAML, "no_pending_cookie")
		s.cookieLost(w, r, "SAML response rejected: it answers a login request, but the browser sent back no pending-login cookie to match it with",
			"protocol", events.ProtocolSAML, "org", c.org.ID, "connection", c.id, "reason", samlsp.ReasonOf(err))
		return
	}
	if err != nil {
		s.refusedLogin(ctx, events.ProtocolSAML, string(samlsp.ReasonOf(err)))
		s.fail(w, r, pageSignInFailed, "SAML response rejected", "org", c.org.ID, "connection", c.id,
			"reason", samlsp.ReasonOf(err), "err", err)
		return
	}
	switch err := s.replays.Claim(ctx, a.Issuer, a.ID, a.ReplayUntil); {
	case errors.Is(err, replay.ErrReplayed):
		s.m.replays.Add(ctx, 1)
		s.refusedLogin(ctx, events.ProtocolSAML, string(samlsp.ReasonReplay))
		s.fail(w, r, pageSignInFailed, "SAML assertion replayed", "org", c.org.ID, "connection", c.id, "assertion_id", a.ID)
		return
	case err != nil:
		s.countLogin(ctx, events.ProtocolSAML, outcomeUnavailable, "replay_check")
		s.fail(w, r, pageUnavailable, "cannot check the assertion for replay; refusing it", "err", err)
		return
	}
	returnTo := s.landing(c.org)
	if a.InResponseTo != "" {
		p, err := s.sessions.TakePending(w, r, key, a.InResponseTo)
		if err != nil {
			s.refusedLogin(ctx, events.ProtocolSAML, "no_pending_login")
			s.fail(w, r, pageSignInFailed, "no pending login for the response", "err", err)
			return
		}
		returnTo = p.ReturnTo
		linkFirstLeg(ctx, p)
	} else if rs := r.PostForm.Get("RelayState"); rs != "" {
		returnTo = session.SafeReturnTo(rs, s.cfg.AllowedReturnOrigins, returnTo)
	}
	id, err := samlIdentity(c, a, s.log)
	if err != nil {
		reason := string(samlsp.ReasonOf(err))
		if reason == "" {
			reason = "identity"
		}
		s.refusedLogin(ctx, events.ProtocolSAML, reason)
		s.fail(w, r, pageSignInFailed, "cannot map the assertion to an identity", "org", c.org.ID, "connection", c.id,
			"reason", samlsp.ReasonOf(err), "err", err)
		return
	}
	s.warnUnmapped(ctx, c, events.ProtocolSAML, samlFields(c.saml.settings, a), samlSent(a))
	s.signIn(w, r, id, returnTo)
}

// signIn finds or provisions the account of id and starts its session.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, id events.Identity, returnTo string) {
	ctx := r.Context()
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("jitprov.org", id.OrganizationID), attribute.String("jitprov.connection", id.ConnectionID))

	// Returning person, unchanged claims, active account: no round trip.
	if rec, err := s.known.Get(ctx, id.OrganizationID, id.ConnectionID, id.ExternalID); err == nil && known.Fresh(rec, id) {
		span.SetAttributes(attribute.Bool("jitprov.fast_path", true))
		s.m.fastPath.Add(ctx, 1, metric.WithAttributes(attribute.String("protocol", protocolLabel(id.Protocol))))
		s.countLogin(ctx, id.Protocol, string(events.OutcomeExisting), "")
		s.tellSeen(ctx, events.LoginSeen{OrganizationID: id.OrganizationID, ConnectionID: id.ConnectionID,
			ExternalID: id.ExternalID, UserID: rec.UserID, AuthenticatedAt: id.AuthenticatedAt})
		if s.startSession(w, r, session.Session{UserID: rec.UserID, OrganizationID: id.OrganizationID,
			ConnectionID: id.ConnectionID, Role: rec.Role, Email: rec.Email}, returnTo) {
			s.log.InfoContext(ctx, "signed in", "outcome", events.OutcomeExisting, "protocol", id.Protocol,
				"org", id.OrganizationID, "connection", id.ConnectionID, "fast_path", true, "user_id", rec.UserID)
		}
		return
	} else if err != nil && !errors.Is(err, known.ErrNotFound) {
		s.log.WarnContext(ctx, "known identities unavailable; taking the slow path", "err", err)
	}

	// Not validated again here: fitContract (identity.go) validated the
	// identity against login.first-seen's schema as it was mapped, and the
	// provisioner validates every login it receives.
	ev, err := events.NewUnvalidated(events.TypeLoginFirstSeen, loginSource, "", id)
	if err != nil {
		s.refusedLogin(ctx, id.Protocol, "contract")
		s.fail(w, r, pageSignInFailed, "the identity cannot be sent to the provisioner", "org", id.OrganizationID, "err", err)
		return
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.ProvisionTimeout)
	defer cancel()
	waited := s.provisionWait(ctx)
	res, err := s.prov.ProvisionEvent(pctx, ev)
	switch {
	case errors.Is(err, bus.ErrUnconfirmed):
		waited("unconfirmed")
		s.countLogin(ctx, id.Protocol, outcomePending, "unconfirmed")
		// The login may or may not be stored: keep publishing it (the
		// same Nats-Msg-Id is stored once) while the person waits.
		retried := s.republish(ctx, ev)
		s.awaiting(w, r, id, session.Awaiting{LoginID: ev.ID(), Unconfirmed: true, Abandoned: !retried, ReturnTo: returnTo}, err)
		return
	case errors.Is(err, bus.ErrPending):
		waited("pending")
		s.countLogin(ctx, id.Protocol, outcomePending, "no_answer")
		s.awaiting(w, r, id, session.Awaiting{LoginID: ev.ID(), ReturnTo: returnTo}, err)
		return
	case err != nil:
		waited("error")
		s.countLogin(ctx, id.Protocol, outcomeUnavailable, "pipeline")
		s.fail(w, r, pageUnavailable, "the provisioning pipeline did not take the login", "org", id.OrganizationID,
			"connection", id.ConnectionID, "login_id", ev.ID(), "err", err)
		return
	}
	waited("answered")
	outcome, reason := decidedLabels(res)
	s.countLogin(ctx, id.Protocol, outcome, reason)
	s.answer(w, r, s.awaitingOf(id, session.Awaiting{LoginID: ev.ID(), ReturnTo: returnTo}), res, "")
}

// awaitingOf fills a with the identity it waits for.
func (s *Server) awaitingOf(id events.Identity, a session.Awaiting) session.Awaiting {
	a.OrganizationID, a.ConnectionID, a.ExternalID, a.ClaimsDigest = id.OrganizationID, id.ConnectionID, id.ExternalID, known.Digest(id)
	a.Protocol = string(id.Protocol)
	return a
}

// loginSource is the CloudEvents source of the logins the edge publishes.
const loginSource = "/jitprov/sso-edge"

// answer acts on the provisioner's decision about a login: a session, or
// the page that says why not.
//
// Every sign-in that decides is logged once, at info when it starts a
// session: its outcome, protocol, organisation, connection, whether it
// took the fast path (no round trip to the provisioner) and the user; the
// record carries the request's trace id. Never a token or a claim value.
//
// a is the login answered (its identity, return_to and login id); token is
// its awaiting token when the waiting page asks again ("" on the first
// answer), which a held sign-up's page keeps using.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, a session.Awaiting, res events.ProvisioningResult, token string) {
	ctx := r.Context()
	protocol, org, conn, returnTo := events.Protocol(a.Protocol), a.OrganizationID, a.ConnectionID, a.ReturnTo
	log := s.log.With("outcome", res.Outcome, "protocol", protocol, "org", org, "connection", conn,
		"fast_path", false, "login_id", res.LoginID)
	if res.Reason != "" {
		log = log.With("reason", res.Reason)
	}
	switch res.Outcome {
	case events.OutcomeCreated, events.OutcomeExisting:
		if res.User == nil || res.User.Status != "active" {
			var userID, status string
			if res.User != nil {
				userID, status = res.User.ID, res.User.Status
			}
			s.fail(w, r, pageRefused, "user not active", "login_id", res.LoginID, "user_id", userID, "status", status)
			return
		}
		if s.startSession(w, r, session.Session{UserID: res.User.ID, OrganizationID: org,
			ConnectionID: conn, Role: res.User.Role, Email: res.User.Email}, returnTo) {
			log.InfoContext(ctx, "signed in", "user_id", res.User.ID)
		}
	case events.OutcomeHeld:
		var userID string
		if res.User != nil {
			userID = res.User.ID
		}
		if token == "" {
			log.InfoContext(ctx, "sign-up held for an admin's approval", "user_id", userID, "message", res.Message)
		}
		s.waitForApproval(w, r, a, res, token)
	case events.OutcomeRejected:
		log.WarnContext(ctx, "login rejected", "message", res.Message)
		s.render(w, r, pageSeatsExhausted)
	case events.OutcomeRefused:
		log.WarnContext(ctx, "login refused", "message", res.Message)
		switch res.Reason {
		case events.ReasonSuspended:
			s.render(w, r, pageSuspended)
		case events.ReasonDeprovisioned:
			s.render(w, r, pageDeprovisioned)
		case events.ReasonEmailInUse, events.ReasonIdentityConflict:
			s.render(w, r, pageNotLinked)
		default:
			s.render(w, r, pageRefused)
		}
	default:
		log.ErrorContext(ctx, "provisioning failed", "message", res.Message)
		s.render(w, r, pageUnavailable)
	}
}

// republishFor is how long the edge goes on publishing a login whose
// PubAck never came, in the background; maxRepublishing bounds how many
// it does at once.
const (
	republishFor    = 2 * time.Minute
	maxRepublishing = 1024
)

// republish goes on publishing an unconfirmed login in the background, for
// up to republishFor: a NATS outage longer than the edge's deadline then
// delays the person's account rather than losing their login. It reports
// whether it does; not when maxRepublishing logins are being republished.
func (s *Server) republish(ctx context.Context, ev events.Event) bool {
	select {
	case s.republishing <- struct{}{}:
	default:
		s.log.WarnContext(ctx, "too many unconfirmed logins to keep publishing; this one is not retried",
			"login_id", ev.ID(), "limit", maxRepublishing)
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), republishFor)
	go func() {
		defer func() { <-s.republishing }()
		defer cancel()
		if err := s.prov.PublishLogin(ctx, ev); err != nil {
			s.log.ErrorContext(ctx, "login still unconfirmed after retrying in the background; the person will be asked to sign in again",
				"login_id", ev.ID(), "err", err)
			return
		}
		s.log.InfoContext(ctx, "unconfirmed login stored after retrying in the background", "login_id", ev.ID())
	}()
	return true
}

// tellSeen publishes login.seen in the background: the person does not
// wait for it, and losing it only costs a less precise last-login time.
func (s *Server) tellSeen(ctx context.Context, seen events.LoginSeen) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	go func() {
		defer cancel()
		if err := s.prov.Seen(ctx, seen); err != nil {
			s.log.WarnContext(ctx, "could not publish login.seen", "err", err)
		}
	}()
}

// startSession issues the session cookie and sends the browser on; false
// when the cookie could not be issued (and an error page was shown).
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, sess session.Session, returnTo string) bool {
	if err := s.sessions.Issue(w, sess); err != nil {
		s.fail(w, r, pageUnavailable, "issue the session cookie", "err", err)
		return false
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
	return true
}

// awaiting shows "setting up your account", which retries by itself: the
// login is durable (or, unconfirmed, still being published) and will be
// decided; the retry finds the decision in the known identities or, by
// the login's id, in the store.
func (s *Server) awaiting(w http.ResponseWriter, r *http.Request, id events.Identity, a session.Awaiting, cause error) {
	a = s.awaitingOf(id, a)
	tok, err := s.sessions.SealAwaiting(w, a)
	if err != nil {
		s.fail(w, r, pageUnavailable, "seal the awaiting token", "err", err)
		return
	}
	s.log.WarnContext(r.Context(), "no answer from the provisioner in time; the person waits",
		"org", id.OrganizationID, "login_id", a.LoginID, "unconfirmed", a.Unconfirmed, "err", cause)
	s.renderWaiting(w, r, tok)
}

// renderWaiting shows "setting up your account", continuing by itself.
func (s *Server) renderWaiting(w http.ResponseWriter, r *http.Request, token string) {
	next := "/login/continue?t=" + url.QueryEscape(token)
	s.render(w, r, page{Status: http.StatusAccepted, Title: "Setting up your account",
		Message: "Your account is being set up. This page will continue by itself in a few seconds.",
		Refresh: "3;url=" + next, Link: next, LinkText: "Continue"})
}

// unconfirmedGrace is how long after the background publishing of an
// unconfirmed login gives up the waiting page still waits for a decision
// before asking the person to sign in again.
const unconfirmedGrace = 30 * time.Second

// continueLogin resumes a login that was still being set up.
func (s *Server) continueLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	a, err := s.sessions.OpenAwaiting(r, r.URL.Query().Get("t"))
	if err != nil {
		s.fail(w, r, pageSignInFailed, "awaiting token refused", "err", err)
		return
	}
	// The known identity first: it is the newest word on this person,
	// and costs no database query.
	rec, kerr := s.known.Get(ctx, a.OrganizationID, a.ConnectionID, a.ExternalID)
	// A held person's record says held until the next decision: their
	// approval or denial is read from the store, below.
	if kerr == nil && rec.ClaimsDigest == a.ClaimsDigest && rec.Status != store.StatusHeld {
		if rec.Status != known.StatusActive {
			if rec.Status == store.StatusDeprovisioned {
				s.render(w, r, pageDeprovisioned)
			} else {
				s.render(w, r, pageSuspended)
			}
			return
		}
		s.sessions.ClearAwaiting(w)
		if s.startSession(w, r, session.Session{UserID: rec.UserID, OrganizationID: a.OrganizationID,
			ConnectionID: a.ConnectionID, Role: rec.Role, Email: rec.Email}, a.ReturnTo) {
			s.log.InfoContext(ctx, "signed in", "outcome", "decided", "protocol", a.Protocol, "org", a.OrganizationID,
				"connection", a.ConnectionID, "fast_path", false, "login_id", a.LoginID, "user_id", rec.UserID, "waited", true)
		}
		return
	}
	if kerr != nil && !errors.Is(kerr, known.ErrNotFound) {
		s.failures.log(ctx, slog.LevelWarn, "known unavailable", "known identities unavailable; asking the store", "err", kerr)
	}
	if a.LoginID == "" {
		// A token sealed before logins were named in it.
		s.continueByRecord(w, r, a, rec, kerr)
		return
	}
	// Then this login's own decision, durable before its login is acked.
	d, err := s.decided.Decision(ctx, a.LoginID)
	switch {
	case err == nil && (d.OrganizationID != a.OrganizationID || d.ConnectionID != a.ConnectionID || d.ExternalID != a.ExternalID):
		s.fail(w, r, pageSignInFailed, "the login's decision is about another identity", "login_id", a.LoginID)
	case err == nil && kerr == nil && rec.ClaimsDigest != a.ClaimsDigest && rec.UpdatedAt.After(d.DecidedAt) &&
		d.Outcome != string(events.OutcomeHeld):
		// (A held sign-up's page reads the user's status instead: an
		// admin's denial rewrites the record, which must not read as a
		// newer login.)
		// Decided since, on other claims (a newer login of the same
		// person): this older decision no longer holds. Start again.
		s.render(w, r, pageSignInFailed)
	case err == nil:
		var res events.ProvisioningResult
		if err := json.Unmarshal(d.Result, &res); err != nil || res.LoginID != a.LoginID {
			s.fail(w, r, pageUnavailable, "the stored decision is unreadable", "login_id", a.LoginID, "err", err)
			return
		}
		if res.Outcome == events.OutcomeCreated || res.Outcome == events.OutcomeExisting {
			s.sessions.ClearAwaiting(w)
		}
		token := ""
		if a.Held {
			token = r.URL.Query().Get("t")
		}
		s.answer(w, r, a, res, token)
	case !errors.Is(err, store.ErrNotFound):
		// The page keeps asking: an outage of the store delays the person,
		// it does not fail their login.
		s.failures.log(ctx, slog.LevelWarn, "decision unreadable", "cannot read the login's decision; the person keeps waiting",
			"login_id", a.LoginID, "err", err)
		s.renderWaiting(w, r, r.URL.Query().Get("t"))
	case a.Unconfirmed && (a.Abandoned || s.sessions.Age(a) > republishFor+unconfirmedGrace):
		// Never stored, it seems: nothing will decide it.
		s.log.WarnContext(ctx, "unconfirmed login never decided; the person is asked to sign in again", "login_id", a.LoginID)
		s.sessions.ClearAwaiting(w)
		s.render(w, r, pageNotCompleted(a.ReturnTo))
	default:
		s.renderWaiting(w, r, r.URL.Query().Get("t"))
	}
}

// heldWait is how long the page of a held sign-up waits for an admin's
// approval without a new sign-in, and heldPoll how often it asks.
const (
	heldWait = 8 * time.Hour
	heldPoll = 5
)

// waitForApproval is the page of a held sign-up: "waiting for your
// administrator's approval", asking again every few seconds. Each time it
// reads the held user as they are now (the store, not the known identity,
// which says held until the person's next decision): approved (active),
// the person is signed in without signing in again; denied, they are told
// so. The page seals its own awaiting token, good for heldWait, on the
// first answer and keeps it (token) after.
func (s *Server) waitForApproval(w http.ResponseWriter, r *http.Request, a session.Awaiting, res events.ProvisioningResult, token string) {
	ctx := r.Context()
	if res.User == nil {
		s.fail(w, r, pageUnavailable, "a held answer names no user", "login_id", res.LoginID)
		return
	}
	if token != "" {
		u, err := s.decided.User(ctx, a.OrganizationID, res.User.ID)
		switch {
		case err != nil:
			// The page keeps asking: an outage of the store delays the
			// person, it does not fail their sign-up.
			s.failures.log(ctx, slog.LevelWarn, "held user unreadable", "cannot read the held user; the person keeps waiting",
				"login_id", a.LoginID, "user_id", res.User.ID, "err", err)
		case u.Status == store.StatusActive:
			s.sessions.ClearAwaiting(w)
			if s.startSession(w, r, session.Session{UserID: u.ID, OrganizationID: a.OrganizationID,
				ConnectionID: a.ConnectionID, Role: u.Role, Email: u.Email}, a.ReturnTo) {
				s.log.InfoContext(ctx, "signed in", "outcome", "approved", "protocol", a.Protocol, "org", a.OrganizationID,
					"connection", a.ConnectionID, "fast_path", false, "login_id", a.LoginID, "user_id", u.ID, "waited", true)
			}
			return
		case u.Status == store.StatusDeprovisioned:
			s.sessions.ClearAwaiting(w)
			s.log.InfoContext(ctx, "held sign-up denied", "org", a.OrganizationID, "login_id", a.LoginID, "user_id", u.ID)
			s.render(w, r, pageSignupDenied)
			return
		case u.Status == store.StatusSuspended:
			s.sessions.ClearAwaiting(w)
			s.render(w, r, pageSuspended)
			return
		}
	} else {
		a.LoginID, a.Held = res.LoginID, true
		var err error
		if token, err = s.sessions.SealAwaitingFor(w, a, heldWait); err != nil {
			s.fail(w, r, pageUnavailable, "seal the awaiting token", "err", err)
			return
		}
	}
	next := "/login/continue?t=" + url.QueryEscape(token)
	msg := "Your organisation's administrator must approve your account before you can sign in. They have been told. " +
		"Keep this page open: it signs you in by itself once they approve."
	if res.Reason == events.ReasonSeatsExhausted {
		msg = "Your organisation has used all of its seats, so your account waits for your administrator's approval. They have been told. " +
			"Keep this page open: it signs you in by itself once they approve."
	}
	s.render(w, r, page{Status: http.StatusAccepted, Title: "Waiting for your administrator's approval", Message: msg,
		Refresh: fmt.Sprintf("%d;url=%s", heldPoll, next), Link: next, LinkText: "Check again"})
}

// continueByRecord is continueLogin for a token without a login id: the
// known identity alone tells.
func (s *Server) continueByRecord(w http.ResponseWriter, r *http.Request, a session.Awaiting, rec known.Record, err error) {
	switch {
	case errors.Is(err, known.ErrNotFound),
		err == nil && rec.UpdatedAt.Before(a.Since):
		// Not decided yet (no record, or only one from an earlier login).
		s.renderWaiting(w, r, r.URL.Query().Get("t"))
	case err != nil:
		s.fail(w, r, pageUnavailable, "known identities unavailable", "err", err)
	default:
		// Decided since, on other claims (a newer login): start again.
		s.render(w, r, pageSignInFailed)
	}
}

// verify answers an ingress's forward-auth request: 200 with the identity
// in headers, or 401.
func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Read(r)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			s.log.InfoContext(r.Context(), "session refused", "err", err)
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	role, email := sess.Role, sess.Email
	if s.standings != nil {
		st, ok, err := s.standings.of(r.Context(), sess.OrganizationID, sess.UserID, sess.IssuedAt)
		switch {
		case !ok:
			// The store cannot say: trust the session, rather than lock
			// everyone out while the database is down.
			s.failures.log(r.Context(), slog.LevelWarn, "session-recheck", "session user not rechecked: the store does not answer", "err", err)
		case st.status != store.StatusActive:
			s.log.InfoContext(r.Context(), "session refused: its user is no longer active", "user_id", sess.UserID,
				"org", sess.OrganizationID, "status", st.status)
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		default:
			role, email = st.role, st.email // the role an admin gave since
		}
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Jitprov-User-Id", sess.UserID)
	h.Set("X-Jitprov-Organization", sess.OrganizationID)
	h.Set("X-Jitprov-Role", role)
	h.Set("X-Jitprov-Email", email)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.sessions.Clear(w)
	s.render(w, r, pageSignedOut)
}
