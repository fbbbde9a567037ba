package devidp

import (
	"bytes"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
)

//go:embed pages/*.html
var pageFiles embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{"join": strings.Join, "devLabel": func() string { return DevLabel }}).
	ParseFS(pageFiles, "pages/*.html"))

// DevLabel is the warning every page of the IdP carries.
const DevLabel = "Development identity provider — not for production"

// loginPage is the data of the login page: one form per person, each
// posting IDField=ID and person=<the person's ID> to Action.
type loginPage struct {
	Title   string
	For     string // who asks, e.g. "The SAML service provider http://…"
	Action  string
	IDField string
	ID      string
	People  []Person
}

// responsePage is the SAML HTTP-POST binding's form, submitted by a
// script (and by a button without one).
type responsePage struct {
	Title        string
	For          string
	Person       string
	URL          string
	SAMLResponse string
	RelayState   string
	Nonce        string
}

type messagePage struct {
	Title   string
	Message string
}

type indexPage struct {
	Title           string
	SAMLMetadataURL string
	Issuer          string
	People          []Person
}

// writePage renders template name with the headers of every page: no
// caching, no sniffing, no framing, no referrer, and scripts only with
// nonce (the SAML auto-submit).
func writePage(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, name string, data any, nonce string) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		log.ErrorContext(r.Context(), "dev IdP: render page", "template", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	script := "'none'"
	if nonce != "" {
		script = "'nonce-" + nonce + "'"
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src "+script+"; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// writeMessage shows a short page, e.g. why a sign-in cannot go on.
func writeMessage(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, title, msg string) {
	writePage(w, r, log, status, "message", messagePage{Title: title, Message: msg}, "")
}
