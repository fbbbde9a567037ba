// Package console is the admin web console: server-rendered pages over the
// admin core (internal/admin), mounted at /admin/. It has no JavaScript:
// every action is a form, every form is protected against cross-site
// requests twice (net/http's CrossOriginProtection and a per-session token),
// and every action goes through the core with the signed-in admin's
// Principal, so the console decides nothing the API and the CLI do not.
package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/admin"
)

// Prefix is where the console is mounted.
const Prefix = "/admin/"

// Authenticator tells who sends a request: the signed-in admin's
// Principal, its role read afresh: internal/admin/authn's Authenticator.
//
// Errors: admin.ErrForbidden shows the "not an administrator" page,
// admin.ErrUnavailable a page saying to try again; any other error
// (authn.ErrUnauthenticated: nobody signed in, or a session no longer
// good) sends the person to sign in. A principal that
// is not its organisation's admin is refused by the core, with the same
// 403 page.
type Authenticator interface {
	Principal(r *http.Request) (admin.Principal, error)
}

// Config is what the console needs.
type Config struct {
	Core *admin.Core
	Auth Authenticator
	// LoginURL is the edge's sign-in page; a person not signed in is sent
	// there with return_to the page they asked for.
	LoginURL string
	// PublicURL is the console's own origin (scheme://host[:port]), for
	// the return_to address; "" uses the request's Host over http, or
	// https when the request came over TLS.
	PublicURL string
	// CSRFKey keys the per-session form tokens; nil makes a random one (the
	// forms of an earlier process are then refused, and must be reloaded).
	CSRFKey []byte
	// Secure marks the console's cookies Secure (the console is served
	// over https).
	Secure bool
	// TrustedOrigins are other origins (scheme://host[:port]) allowed to
	// post the console's forms, e.g. behind a proxy that rewrites Host.
	TrustedOrigins []string
	Logger         *slog.Logger
	// Now is the clock of the dashboard's chart; default time.Now.
	Now func() time.Time
}

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static/console.css
var css []byte

// Console is the console's handler.
type Console struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	csrf  *http.CrossOriginProtection
	mux   *http.ServeMux
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Core == nil || cfg.Auth == nil {
		return nil, errors.New("console: Core and Auth are required")
	}
	if cfg.LoginURL == "" {
		return nil, errors.New("console: LoginURL is required (the edge's /login)")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.CSRFKey) == 0 {
		cfg.CSRFKey = make([]byte, 32)
		_, _ = rand.Read(cfg.CSRFKey)
	}
	c := &Console{cfg: cfg, log: cfg.Logger, pages: map[string]*template.Template{}}
	if err := c.parse(); err != nil {
		return nil, err
	}
	c.csrf = http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := c.csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("console: trusted origin: %w", err)
		}
	}
	c.csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.renderStatus(w, r, http.StatusForbidden, "error", errorPage{Title: "This form came from another site",
			Message: "The console accepts its forms only from its own pages. Go back to the console, reload the page and try again."})
	}))
	c.routes()
	return c, nil
}

func (c *Console) parse() error {
	funcs := template.FuncMap{
		"when":    when,
		"date":    func(t time.Time) string { return dateOf(t) },
		"reason":  reasonText,
		"outcome": outcomeText,
		"action":  actionText,
		"status":  statusText,
		"add":     func(a, b int) int { return a + b },
		"onUser":  func(a string) bool { return strings.HasPrefix(a, "user.") || strings.HasPrefix(a, "identity.") },
	}
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	names, err := templateFiles.ReadDir("templates")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n.Name() == "layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+n.Name())
		if err != nil {
			return fmt.Errorf("console: template %s: %w", n.Name(), err)
		}
		c.pages[strings.TrimSuffix(n.Name(), ".html")] = t
	}
	return nil
}

// ServeHTTP serves the console; mount it at Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /admin/static/console.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(css)
	})
	m.Handle("GET /admin/{$}", c.signedIn(c.home))
	m.Handle("GET /admin/orgs/{org}/{$}", c.signedIn(c.dashboard))
	m.Handle("GET /admin/orgs/{org}/reviews", c.signedIn(c.reviews))
	m.Handle("GET /admin/orgs/{org}/reviews/{id}/deny", c.signedIn(c.denyForm))
	m.Handle("POST /admin/orgs/{org}/reviews/{id}/approve", c.action(c.approve))
	m.Handle("POST /admin/orgs/{org}/reviews/{id}/deny", c.action(c.deny))
	m.Handle("GET /admin/orgs/{org}/users", c.signedIn(c.users))
	m.Handle("GET /admin/orgs/{org}/users/{id}", c.signedIn(c.user))
	m.Handle("GET /admin/orgs/{org}/users/{id}/confirm", c.signedIn(c.confirm))
	m.Handle("POST /admin/orgs/{org}/users/{id}/{action}", c.action(c.userAction))
	m.Handle("GET /admin/orgs/{org}/connections", c.signedIn(c.connections))
	m.Handle("POST /admin/orgs/{org}/connections/dry-run", c.action(c.dryRun))
	m.Handle("GET /admin/orgs/{org}/audit", c.signedIn(c.audit))
	m.Handle("/admin/", c.signedIn(func(w http.ResponseWriter, r *http.Request, s *request) {
		c.render(w, r, s, http.StatusNotFound, "error", errorPage{Title: "Page not found",
			Message: "There is no such page in the console."})
	}))
	c.mux = m
}

// request is one signed-in request: who, and the form token of their
// session.
type request struct {
	P    admin.Principal
	CSRF string
	// Org is the organisation of the page ("" on the organisations list).
	Org string
}

type handler func(w http.ResponseWriter, r *http.Request, s *request)

// signedIn runs h for a signed-in person: anyone else is sent to sign in,
// and the person's form token is set.
func (c *Console) signedIn(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := c.cfg.Auth.Principal(r)
		switch {
		case errors.Is(err, admin.ErrForbidden), err == nil && p.SCIM:
			c.forbidden(w, r, nil)
			return
		case errors.Is(err, admin.ErrUnavailable):
			c.log.ErrorContext(r.Context(), "console: who is signed in", "err", err)
			c.renderStatus(w, r, http.StatusServiceUnavailable, "error", errorPage{Title: "The console cannot tell who you are",
				Message: "Your sign-in could not be checked just now. Please try again in a minute."})
			return
		case err != nil:
			c.log.InfoContext(r.Context(), "console: not signed in; sent to sign in", "err", err)
			c.toLogin(w, r)
			return
		}
		s := &request{P: p, Org: r.PathValue("org")}
		s.CSRF = c.token(w, r, p)
		h(w, r, s)
	})
}

// action is signedIn for a form post: refused unless it comes from the
// console's own pages (CrossOriginProtection) and carries the session's
// form token.
func (c *Console) action(h handler) http.Handler {
	return c.csrf.Handler(c.signedIn(func(w http.ResponseWriter, r *http.Request, s *request) {
		if !c.validToken(r, s.P) {
			c.render(w, r, s, http.StatusForbidden, "error", errorPage{Title: "This form has expired",
				Message: "The form was not sent from a page of your current session. Go back, reload the page and try again."})
			return
		}
		// Another organisation's page is refused outright, not after the
		// redirect an action's outcome takes.
		if _, err := c.cfg.Core.Organization(r.Context(), s.P, s.Org); err != nil {
			c.fail(w, r, s, err)
			return
		}
		h(w, r, s)
	}))
}

// toLogin sends the person to the edge's sign-in, to come back here.
func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	back := c.origin(r) + r.URL.RequestURI()
	if r.Method != http.MethodGet {
		back = c.origin(r) + Prefix
	}
	u := c.cfg.LoginURL
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	http.Redirect(w, r, u+sep+"return_to="+url.QueryEscape(back), http.StatusSeeOther)
}

func (c *Console) origin(r *http.Request) string {
	if c.cfg.PublicURL != "" {
		return strings.TrimSuffix(c.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// forbidden is the page of a person who is signed in but may not do this.
func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, s *request) {
	p := errorPage{Title: "You are not an administrator here",
		Message: "You are signed in, but the console is only for your organisation's administrators. " +
			"If you should be one, ask an administrator of your organisation to give you the admin role."}
	if s == nil {
		c.renderStatus(w, r, http.StatusForbidden, "error", p)
		return
	}
	c.render(w, r, s, http.StatusForbidden, "error", p)
}

// The form token: an HMAC of a random per-browser cookie and the
// principal, so that it is bound to both, and a page from another session
// or another person does not carry a valid one.

const csrfCookie = "jitprov_console"

func (c *Console) token(w http.ResponseWriter, r *http.Request, p admin.Principal) string {
	seed := ""
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) >= 32 {
		seed = ck.Value
	} else {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		seed = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: seed, Path: Prefix, HttpOnly: true,
			Secure: c.cfg.Secure, SameSite: http.SameSiteStrictMode})
		r.AddCookie(&http.Cookie{Name: csrfCookie, Value: seed})
	}
	return c.mac(seed, p)
}

func (c *Console) mac(seed string, p admin.Principal) string {
	m := hmac.New(sha256.New, c.cfg.CSRFKey)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%s", seed, p.Kind, p.ID, p.Organization)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) validToken(r *http.Request, p admin.Principal) bool {
	ck, err := r.Cookie(csrfCookie)
	if err != nil {
		return false
	}
	got := r.PostFormValue("csrf")
	return got != "" && hmac.Equal([]byte(got), []byte(c.mac(ck.Value, p)))
}

// Flash messages: what an action did, shown once on the page it leads to.

const flashCookie = "jitprov_console_flash"

type flash struct {
	Kind string // "ok" or "error"
	Text string
}

func (c *Console) setFlash(w http.ResponseWriter, kind, text string) {
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: kind + "." + base64.RawURLEncoding.EncodeToString([]byte(text)),
		Path: Prefix, HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode, MaxAge: 60})
}

func (c *Console) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: c.cfg.Secure})
	kind, enc, _ := strings.Cut(ck.Value, ".")
	text, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || (kind != "ok" && kind != "error") || len(text) == 0 {
		return nil
	}
	return &flash{Kind: kind, Text: string(text)}
}

// done redirects to to after an action, with its outcome to show.
func (c *Console) done(w http.ResponseWriter, r *http.Request, to, kind, text string) {
	c.setFlash(w, kind, text)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// Rendering.

// view is what every page's layout reads.
type view struct {
	Title   string
	Nav     string // the current section
	Org     string
	OrgName string
	Who     string
	CSRF    string
	Flash   *flash
	Status  int
	Data    any
}

type errorPage struct {
	Title, Message string
	Back           string
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *request, status int, name string, data any) {
	v := view{Data: data, Status: status, Org: s.Org, Who: s.P.Name, CSRF: s.CSRF}
	if status < 400 {
		v.Flash = c.takeFlash(w, r)
	}
	c.write(w, r, status, name, v)
}

func (c *Console) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	c.write(w, r, status, name, view{Data: data, Status: status})
}

func (c *Console) write(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t := c.pages[name]
	if t == nil {
		c.log.ErrorContext(r.Context(), "console: no such template", "template", name)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	if tp, ok := v.Data.(interface{ title() string }); ok {
		v.Title = tp.title()
	}
	if op, ok := v.Data.(interface{ orgName() string }); ok {
		v.OrgName = op.orgName()
	}
	if np, ok := v.Data.(interface{ nav() string }); ok {
		v.Nav = np.nav()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.ErrorContext(r.Context(), "console: render", "template", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (e errorPage) title() string { return e.Title }

// fail shows err, an error of the core, as a page in words.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *request, err error) {
	status, p := c.explain(r, err)
	if status == http.StatusForbidden {
		c.forbidden(w, r, s)
		return
	}
	c.render(w, r, s, status, "error", p)
}

// explain maps the core's errors to a status and words.
func (c *Console) explain(r *http.Request, err error) (int, errorPage) {
	var fe *admin.FieldError
	switch {
	case errors.As(err, &fe):
		return http.StatusBadRequest, errorPage{Title: "Please check the form", Message: fieldText(fe)}
	case errors.Is(err, admin.ErrForbidden):
		return http.StatusForbidden, errorPage{}
	case errors.Is(err, admin.ErrNotFound):
		return http.StatusNotFound, errorPage{Title: "Not found",
			Message: "It does not exist in your organisation, or no longer does."}
	case errors.Is(err, admin.ErrConflict):
		return http.StatusConflict, errorPage{Title: "Already changed",
			Message: "Someone changed this before you: reload the page to see where it stands now."}
	case errors.Is(err, admin.ErrNoSeat):
		return http.StatusConflict, errorPage{Title: "No seat available",
			Message: "Every seat of your organisation is taken. Free one first (deprovision someone) or raise the organisation's seat limit."}
	case errors.Is(err, admin.ErrUnavailable):
		return http.StatusServiceUnavailable, errorPage{Title: "The console is unavailable",
			Message: "The database did not answer. Please try again in a minute."}
	}
	c.log.ErrorContext(r.Context(), "console", "err", err)
	return http.StatusInternalServerError, errorPage{Title: "Something went wrong",
		Message: "The console could not do this. Please try again; if it keeps failing, tell your operator."}
}

// actionError is an action's failure in a sentence, for the flash message.
func (c *Console) actionError(r *http.Request, err error) string {
	var fe *admin.FieldError
	switch {
	case errors.As(err, &fe):
		return fieldText(fe)
	case errors.Is(err, admin.ErrForbidden):
		return "You may not do this: " + forbiddenText(err)
	case errors.Is(err, admin.ErrConflict):
		return "Nothing was changed: it is no longer in a state that allows this (someone may have acted already). The page shows where it stands now."
	}
	_, p := c.explain(r, err)
	return p.Title + ". " + p.Message
}

func fieldText(fe *admin.FieldError) string {
	switch fe.Field {
	case "reason":
		if strings.HasPrefix(fe.Msg, "required") {
			return "Please give a reason: it is kept in the person's record and the audit log."
		}
		return "The reason is too long: please keep it under 1024 characters."
	case "cursor":
		return "That page of the list no longer exists: start again from the first page."
	case "role":
		return "That role is not one of your organisation's roles."
	}
	return strings.ToUpper(fe.Field[:1]) + fe.Field[1:] + ": " + fe.Msg
}

// forbiddenText is the core's refusal without its prefix.
func forbiddenText(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "admin: forbidden: "); i >= 0 {
		msg = msg[i+len("admin: forbidden: "):]
	}
	return msg
}
