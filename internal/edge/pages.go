package edge

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

//go:embed pages/*.html
var pageFiles embed.FS

var pageTemplate = template.Must(template.ParseFS(pageFiles, "pages/*.html"))

// page is what a person sees when a sign-in does not simply succeed. It
// never carries internal errors: those go to the log, under the trace id
// shown as Ref on error pages (status 400 and above).
type page struct {
	Status   int
	Title    string
	Message  string
	Link     string
	LinkText string
	Refresh  string // meta refresh, e.g. "3;url=/login/continue?t=..."
	Ref      string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, p page) {
	// The reference is for an administrator looking into a failure; a
	// page that reports none (signed out, waiting) carries none.
	if sc := trace.SpanContextFromContext(r.Context()); sc.IsValid() && p.Status >= 400 {
		p.Ref = sc.TraceID().String()
	}
	s.writeHTML(w, r, p.Status, "layout", p)
}

// writeHTML renders template name into w with the headers every page of
// the edge carries: no caching, no sniffing, no framing, no scripts.
func (s *Server) writeHTML(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "template", name, "err", err)
		http.Error(w, http.StatusText(status), status)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Pages of the outcomes a person can meet.
var (
	pageSignInFailed = page{Status: http.StatusForbidden, Title: "Sign-in failed",
		Message: "Your identity provider's answer could not be accepted. Please start the sign-in again; if it keeps failing, tell your administrator."}
	pageSeatsExhausted = page{Status: http.StatusForbidden, Title: "No seat available",
		Message: "Your organisation has used all of its seats, so no account could be created for you. Its administrators have been told."}
	pageSignupDenied = page{Status: http.StatusForbidden, Title: "Account not approved",
		Message: "Your organisation's administrator did not approve an account for you. If you think this is a mistake, please contact them."}
	pageSuspended = page{Status: http.StatusForbidden, Title: "Account suspended",
		Message: "Your account is suspended. Please contact your organisation's administrator."}
	pageDeprovisioned = page{Status: http.StatusForbidden, Title: "Account removed",
		Message: "Your account here has been removed by your organisation's administrator. Please contact them if you need access again."}
	pageRefused = page{Status: http.StatusForbidden, Title: "Account not available",
		Message: "An account could not be set up for you automatically. Please contact your organisation's administrator."}
	pageNotLinked = page{Status: http.StatusForbidden, Title: "Account not linked",
		Message: "You may already have an account here through another way of signing in, and this sign-in could not be linked to it automatically. Sign in the way you did before, or ask your organisation's administrator to link the two; they can see why in the provisioning log."}
	pageUnavailable = page{Status: http.StatusServiceUnavailable, Title: "Sign-in is unavailable",
		Message: "We cannot set up accounts right now. Please try again in a few minutes."}
	pageMisconfigured = page{Status: http.StatusInternalServerError, Title: "Sign-in is not set up correctly",
		Message: "Sign-in through this connection is not set up correctly, so it cannot start. Please tell your administrator: trying again will not help until the connection's settings are fixed."}
	pageIdPUnreachable = page{Status: http.StatusServiceUnavailable, Title: "Your identity provider cannot be reached",
		Message: "Sign-in through your organisation's identity provider is not possible right now, because it does not answer. Please try again in a few minutes."}
	pageUnknownConnection = page{Status: http.StatusNotFound, Title: "Unknown sign-in link",
		Message: "This sign-in link does not match any configured organisation. Please check the address."}
	pageTooMany = page{Status: http.StatusTooManyRequests, Title: "Too many sign-in attempts",
		Message: "There were too many sign-in attempts in a short time. Please wait a minute and try again."}
	pageStarting = page{Status: http.StatusServiceUnavailable, Title: "Sign-in is starting",
		Message: "The sign-in service is starting. Please try again in a few seconds."}
	pageSignedOut = page{Status: http.StatusOK, Title: "Signed out", Message: "You are signed out.", Link: "/login", LinkText: "Sign in again"}
)

// pageCookieLost: the IdP's answer came without the cookie that ties it
// to the login this browser started; login is where to start again.
func pageCookieLost(login string) page {
	return page{Status: http.StatusForbidden, Title: "Sign-in failed",
		Message: "Your browser did not send back the cookie it was given when this sign-in started, so your identity provider's answer cannot be matched to it. " +
			"This happens when the sign-in was started at another address than " + strings.TrimSuffix(login, "/login") +
			" (for example 127.0.0.1 instead of localhost), or when the browser blocks cookies. Please start again from there.",
		Link: login, LinkText: "Start again"}
}

// pageNotCompleted asks the person to sign in again: their login never
// reached the pipeline.
func pageNotCompleted(returnTo string) page {
	return page{Status: http.StatusServiceUnavailable, Title: "Sign-in did not complete",
		Message: "Your sign-in could not be completed while the service was interrupted. Please sign in again.",
		Link:    returnTo, LinkText: "Sign in again"}
}

// fail logs why a page is shown, at a level that fits, and shows it. A
// flood of the same refusal (the same message, organisation, connection
// and reason) logs one line per interval, with the count held back.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p page, msg string, args ...any) {
	level := slog.LevelWarn
	if p.Status >= 500 {
		level = slog.LevelError
	}
	kind := msg
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && (k == "org" || k == "connection" || k == "reason") {
			kind += fmt.Sprintf("|%v", args[i+1])
		}
	}
	s.failures.log(r.Context(), level, kind, msg, args...)
	s.render(w, r, p)
}
