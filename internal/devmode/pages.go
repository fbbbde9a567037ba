package devmode

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"github.com/jitprov/jitprov/internal/devidp"
	"github.com/jitprov/jitprov/internal/devinbox"
)

// devHandler serves the dev server: the tour, the demo application, the
// admin console, the admin API and SCIM, the inbox and the development IdP.
func devHandler(edgeURL, devURL string, idp *devidp.IdP, inbox *devinbox.Inbox, adminService, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	app := devURL + "/app"
	links := signInLinks(edgeURL, app)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		render(w, http.StatusOK, indexPage, map[string]any{"Edge": edgeURL, "Dev": devURL, "People": devidp.People(), "SignIn": links})
	})
	mux.Handle("GET /app", &demoApp{edgeURL: edgeURL, devURL: devURL, links: links,
		client: &http.Client{Timeout: 5 * time.Second}})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("/inbox/", http.StripPrefix("/inbox", inbox.Handler()))
	mux.Handle("/admin/", adminService) // the console
	mux.Handle("/api/", adminService)   // the admin API
	mux.Handle("/scim/", adminService)  // SCIM 2.0 for IdPs (docs/scim.md)
	mux.Handle(idp.PathPrefix()+"/", idp.Handler())
	if metrics != nil {
		mux.Handle("GET /metrics", metrics) // every service's metrics: they share one meter here
	}
	return mux
}

type signIn struct{ Label, URL, Who string }

func signInLinks(edgeURL, app string) []signIn {
	rt := "?return_to=" + url.QueryEscape(app)
	return []signIn{
		{"Sign in with SSO (type your work email)", edgeURL + "/login" + rt, "any demo person"},
		{"Demo — SAML", edgeURL + "/saml/demo/devidp-saml/login" + rt, "Ada, Grace or Olivia"},
		{"Demo — OpenID Connect", edgeURL + "/oidc/demo/devidp-oidc/login" + rt, "Ada, Grace or Olivia"},
		{"Demo Small (3 seats) — SAML", edgeURL + "/saml/demo-small/devidp-saml/login" + rt, "Alan, Barbara, Edsger, Katherine"},
	}
}

// demoApp is an application behind forward-auth: it asks the edge's
// /auth/verify about the request's cookies, as an ingress would, and shows
// who the person is.
type demoApp struct {
	edgeURL, devURL string
	links           []signIn
	client          *http.Client
}

func (a *demoApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.edgeURL+"/auth/verify", nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header["Cookie"] = r.Header["Cookie"]
	resp, err := a.client.Do(req)
	if err != nil {
		render(w, http.StatusBadGateway, appPage, map[string]any{"Error": "sso-edge does not answer: " + err.Error(), "SignIn": a.links})
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		render(w, http.StatusOK, appPage, map[string]any{"SignIn": a.links, "Dev": a.devURL})
		return
	}
	h := resp.Header
	render(w, http.StatusOK, appPage, map[string]any{
		"User": map[string]string{"ID": h.Get("X-Jitprov-User-Id"), "Email": h.Get("X-Jitprov-Email"),
			"Role": h.Get("X-Jitprov-Role"), "Organization": h.Get("X-Jitprov-Organization")},
		"Logout": a.edgeURL + "/logout", "Dev": a.devURL,
	})
}

func render(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

const style = `<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.45}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.5em 1em;border-radius:6px}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}
a.button{display:inline-block;margin:.2em 0;padding:.4em .9em;background:#1f4fd1;color:#fff;text-decoration:none;border-radius:4px}
dl{display:grid;grid-template-columns:max-content auto;gap:.3em 1em}dt{font-weight:bold}</style>`

const devLabel = `<p class="banner">Development mode (<code>jitprov dev</code>) — built-in identity provider, demo people, an inbox in memory. Not for production.</p>`

var indexPage = template.Must(template.New("index").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>jitprov dev</title>` + style + `</head><body>` + devLabel + `
<h1>jitprov, running on your machine</h1>
<p>Every part of the pipeline is here, in one process: sso-edge at <a href="{{.Edge}}/login">{{.Edge}}</a>, the provisioner and the notifier
on an embedded NATS JetStream, an embedded store, and a development identity provider with demo people.</p>
<h2>A tour</h2>
<ol>
<li>Open the <a href="{{.Dev}}/app">demo application</a>. It sits behind forward-auth: nobody is signed in, so it offers to sign in with SSO.</li>
<li>Sign in as <strong>Ada</strong> (Demo, SAML or OpenID Connect). Her account is created on the spot: the app shows her user id, her role <em>member</em> and her organisation.</li>
<li>Sign out, and sign in as <strong>Grace</strong>. Her IdP says she is in <em>demo-admins</em>, which claims the admin role — above what sign-in grants on its own — so she gets <em>member</em> and a role review is opened. The <a href="{{.Dev}}/inbox/">dev inbox</a> shows the alert, by mail and by signed webhook.</li>
<li>Sign in, one after the other, as Alan, Barbara, Edsger and Katherine of <strong>Demo Small</strong>, which has 3 seats. The second seat warns that seats run out; the fourth person gets the "no seat available" page, and a few seconds later the inbox tells the admins how many people were turned away.</li>
<li>Open the <a href="{{.Dev}}/admin/">admin console</a> and sign in as <strong>Olivia Operator</strong> (Demo — SAML or OpenID Connect): the organisations file names her
demo's initial admin, so her first sign-in makes her <em>admin</em>. In <em>Role reviews</em>, approve Grace's review; the users table, and the demo application
at Grace's next sign-in, show her new role. Deprovision someone from their page and watch the dashboard's seat count drop; the audit log says who did what, and why anyone was refused.</li>
<li>Stop with Ctrl-C and start again: the people are still there, and signing in again is instant.</li>
</ol>
<h2>Sign in</h2>
<p>{{range .SignIn}}<a class="button" href="{{.URL}}">{{.Label}}</a> <small>{{.Who}}</small><br>{{end}}</p>
<h2>Demo people</h2>
<table><tr><th>Person</th><th>Email</th><th>Organisation</th><th>Groups</th><th>What happens</th></tr>
{{range .People}}<tr><td>{{.Name}}</td><td>{{.Email}}</td><td>{{.Organization}}</td><td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td><td>{{.Note}}</td></tr>
{{end}}</table>
</body></html>`))

var appPage = template.Must(template.New("app").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo app</title>` + style + `</head><body>` + devLabel + `
<h1>Demo application</h1>
{{if .Error}}<p><strong>{{.Error}}</strong></p>{{end}}
{{with .User}}<p>You are signed in. This is what forward-auth (<code>/auth/verify</code>) told the application:</p>
<dl><dt>Email</dt><dd id="email">{{.Email}}</dd><dt>Role</dt><dd id="role">{{.Role}}</dd>
<dt>Organisation</dt><dd id="organization">{{.Organization}}</dd><dt>User id</dt><dd id="user-id">{{.ID}}</dd></dl>
<p><a class="button" href="{{$.Logout}}">Sign out</a> <a href="{{$.Dev}}/inbox/">Dev inbox</a> · <a href="{{$.Dev}}/admin/">Admin console</a> · <a href="{{$.Dev}}/">Tour</a></p>
{{else}}<p>Nobody is signed in.</p>
<p>{{range .SignIn}}<a class="button" href="{{.URL}}">{{.Label}}</a> <small>{{.Who}}</small><br>{{end}}</p>
{{end}}</body></html>`))
