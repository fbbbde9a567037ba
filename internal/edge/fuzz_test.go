package edge_test

// Fuzz targets of sso-edge's public HTTP face: everything a browser, an
// attacker or a misbehaving identity provider sends to the edge. Each
// target builds one deployment (newWorld: Postgres, embedded NATS, a
// provisioner, crewjam/saml's IdP) and one edge over it when it starts,
// then sends every input to the edge's handler in-process, as one HTTP
// request, and checks what it answered (checkAnswer):
//
//   - no 5xx, except a 503 while a dependency really is down (the world's
//     readiness check fails);
//   - HTML pages carry the edge's security headers;
//   - a redirect goes to a path on the edge, or to a configured identity
//     provider, never elsewhere;
//   - no input is shown back unescaped (a markup fragment of an input that
//     appears in the page and in none of the edge's pages for honest
//     input);
//   - every cookie set is HttpOnly, and a session cookie is one the edge
//     itself opens (the target then says whether that session was due).
//
// The edge's session clock is fixed (fuzzClock): a pending-login cookie,
// awaiting token or session cookie in a seed stays valid in the fuzzing
// worker processes and in inputs committed under testdata/fuzz. Logs go to
// a buffer, shown with a failure.
//
//	go test -run '^$' -fuzz '^FuzzACS$' -fuzztime 30s -parallel 1 ./internal/edge/

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	nooptrace "go.opentelemetry.io/otel/trace/noop"

	"github.com/jitprov/jitprov/internal/edge"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/known"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/testenv"
)

// fuzzClock is the fuzz edge's session clock.
var fuzzClock = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Cookie names of the fuzz edge (session.Options.Insecure).
const (
	fuzzSessionCookie  = session.DefaultInsecureCookieName
	fuzzPendingCookie  = session.DefaultInsecurePendingCookieName
	fuzzAwaitingCookie = "jitprov-wait"
)

// fuzzLog keeps the logs of the world's parts since the last reset,
// bounded.
type fuzzLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *fuzzLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() < 64<<10 {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *fuzzLog) reset() {
	l.mu.Lock()
	l.buf.Reset()
	l.mu.Unlock()
}

func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// fuzzEdge is an edge over a world, for fuzzing.
type fuzzEdge struct {
	w   *world
	url string // a live server of the edge, for IdPs and seed browsers
	h   http.Handler
	// ready is the edge's readiness check: a 503 is due only while it
	// fails.
	ready func(context.Context) error
	// sessions has the edge's keys and clock: it opens what the edge seals.
	sessions *session.Manager
	logs     *fuzzLog
	// idpOrigins are where the edge may send a browser besides itself.
	idpOrigins []string
	// baseline holds the edge's pages for honest input: a markup fragment
	// found there is the edge's own, not a reflected input.
	baseline strings.Builder
}

// newFuzzEdge builds the world (with a provisioner) and an edge over it,
// once per fuzz target and process (or test).
func newFuzzEdge(f testing.TB) *fuzzEdge {
	f.Helper()
	e := &fuzzEdge{logs: &fuzzLog{}}
	e.w = newWorld(f, 1_000_000, true, withLogger(slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { e.h.ServeHTTP(rw, r) }))
	f.Cleanup(srv.Close)
	e.url = srv.URL
	public, _ := url.Parse(srv.URL)
	keys, err := session.NewKeys(make([]byte, 32)) // TEST KEY: all zeros, as startEdge's
	if err != nil {
		f.Fatal(err)
	}
	e.sessions, err = session.NewManager(keys, session.Options{Insecure: true, Now: func() time.Time { return fuzzClock }})
	if err != nil {
		f.Fatal(err)
	}
	key, cert := newKeyPair(f, "fuzz-sp")
	s, ready, err := edge.New(context.Background(),
		edge.Config{PublicURL: *public, ProvisionTimeout: 5 * time.Second, SPKeyPair: &tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}},
		edge.Deps{Store: e.w.store, NATS: testenv.Connect(f, e.w.ns), Sessions: e.sessions, Logger: e.w.log, Tracer: nooptrace.NewTracerProvider()})
	if err != nil {
		f.Fatal(err)
	}
	e.h, e.ready = s.Handler(ready), ready
	e.idpOrigins = []string{e.w.idp.srv.URL}

	// Pages for honest input.
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/login?return_to=/app", nil),
		formRequest("/login", url.Values{"email": {"alice@acme.example"}, "return_to": {"/app"}}),
		formRequest("/login", url.Values{"email": {"nobody@nowhere.example"}}),
		formRequest("/login", url.Values{"email": {"not an email"}}),
		formRequest("/saml/acme/idp/acs", url.Values{"SAMLResponse": {"PA=="}}),
		formRequest("/saml/nobody/idp/acs", nil),
		httptest.NewRequest(http.MethodGet, "/logout", nil),
		httptest.NewRequest(http.MethodGet, "/login/continue?t=x", nil),
	} {
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, r)
		e.baseline.WriteString(rec.Body.String())
	}
	e.logs.reset()
	return e
}

func formRequest(target string, form url.Values) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// serve sends r to the edge, with cookies as a raw Cookie header.
func (e *fuzzEdge) serve(r *http.Request, cookies string) *httptest.ResponseRecorder {
	if cookies != "" {
		r.Header.Set("Cookie", cookies)
	}
	e.logs.reset()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, r)
	return rec
}

// markupStart and markupWindows find where an input could open a markup
// context: the windows of 4 to 8 bytes from each '<' that begins a tag or
// comment and each quote followed by what breaks out of an attribute.
// Escaped, such a window never appears raw in a page.
var markupStart = regexp.MustCompile(`<[A-Za-z!/?]|["'][ \t\n/>]`)

func markupWindows(s string) []string {
	var out []string
	for _, loc := range markupStart.FindAllStringIndex(s, 8) {
		w := s[loc[0]:min(len(s), loc[0]+8)]
		if len(w) >= 4 {
			out = append(out, w)
		}
	}
	return out
}

// checkAnswer checks the invariants every answer of the edge keeps (see
// the top of this file) and returns the session the answer sets, if any.
// inputs are the strings of the request the fuzzer chose.
func (e *fuzzEdge) checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, inputs ...string) *session.Session {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format+"\nstatus %d, headers %v\nbody:\n%s\nlogs:\n%s", append(args, rec.Code, rec.Header(), rec.Body.String(), e.logs.String())...)
	}
	if rec.Code >= 500 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.ready(ctx); rec.Code != http.StatusServiceUnavailable || err == nil {
			fail("answered %d while the edge's dependencies are up (readiness: %v)", rec.Code, err)
		}
	}
	h := rec.Header()
	if strings.HasPrefix(h.Get("Content-Type"), "text/html") && rec.Body.Len() > 0 && (rec.Code < 300 || rec.Code > 399) {
		if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" {
			fail("an HTML page without the edge's security headers")
		}
	}
	if loc := h.Get("Location"); loc != "" && !e.allowedLocation(loc) {
		fail("redirect to %q: neither a path on the edge nor an identity provider", loc)
	}
	body := rec.Body.String()
	baseline := e.baseline.String()
	for _, in := range inputs {
		for _, w := range markupWindows(in) {
			if strings.Contains(body, w) && !strings.Contains(baseline, w) {
				fail("the page shows %q of input %q unescaped", w, in)
			}
		}
	}
	var sess *session.Session
	for _, c := range rec.Result().Cookies() {
		if !c.HttpOnly {
			fail("cookie %s without HttpOnly", c.Name)
		}
		if c.Name != fuzzSessionCookie || c.Value == "" {
			continue
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(c)
		s, err := e.sessions.Read(r)
		if err != nil {
			fail("the edge set a session cookie it does not open: %v", err)
		}
		if sess != nil {
			fail("two session cookies")
		}
		sess = &s
	}
	return sess
}

// allowedLocation: a path on the edge (not a scheme-relative //host or
// /\host, which browsers read as another host), or a URL on an identity
// provider of the world.
func (e *fuzzEdge) allowedLocation(loc string) bool {
	for _, o := range e.idpOrigins {
		if strings.HasPrefix(loc, o+"/") {
			return true
		}
	}
	u, err := url.Parse(loc)
	return err == nil && strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") &&
		!strings.ContainsAny(loc, "\\\t\r\n") && u.Scheme == "" && u.Host == ""
}

// cookieOf is the value of the cookie name the browser holds for u.
func cookieOf(tb testing.TB, b *testenv.Browser, u, name string) string {
	tb.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatal(err)
	}
	for _, c := range b.Client().Jar.Cookies(pu) {
		if c.Name == name {
			return c.Value
		}
	}
	tb.Fatalf("the browser holds no cookie %s for %s", name, u)
	return ""
}

// FuzzACS posts a SAMLResponse (the fuzzer's XML, base64-encoded as the
// HTTP-POST binding does), a RelayState and a pending-login cookie to the
// ACS of a connection. On top of checkAnswer: a session is set only for a
// response the IdP of this process really issued, once, and names the
// person that response was for, on that connection.
func FuzzACS(f *testing.F) {
	e := newFuzzEdge(f)
	// genuine maps each response the IdP issued in this process to its
	// person's email; a response signs in at most once.
	genuine := map[string]string{}
	used := map[string]bool{}

	ada := person("00u-fuzz-ada", "ada@acme.example", "eng-leads")
	e.w.idp.signsIn(ada)
	b := newBrowser(f)
	_, form := startLogin(f, b, e.url, "/app")
	pending := cookieOf(f, b, e.url, fuzzPendingCookie)
	spInitiated, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		f.Fatal(err)
	}
	genuine[string(spInitiated)] = "ada@acme.example"
	f.Add("idp", spInitiated, form.Get("RelayState"), fuzzPendingCookie+"="+pending)

	e.w.idp.signsIn(person("00u-fuzz-bob", "bob@acme.example"))
	sp := e.url + "/saml/acme/idp-init/metadata"
	_, form = responseForm(f, testenv.NewBrowser(f).Get(e.w.idp.srv.URL+"/sso?idp_initiated_for="+url.QueryEscape(sp)+"&relay_state=%2Fwelcome"))
	idpInitiated, err := base64.StdEncoding.DecodeString(form.Get("SAMLResponse"))
	if err != nil {
		f.Fatal(err)
	}
	genuine[string(idpInitiated)] = "bob@acme.example"
	f.Add("idp-init", idpInitiated, form.Get("RelayState"), "")

	// Another browser's pending login, an open redirect through
	// RelayState, the other connection, markup everywhere.
	f.Add("idp", spInitiated, "", "")
	f.Add("idp-init", spInitiated, "https://evil.example/steal", fuzzPendingCookie+"="+pending)
	f.Add("idp", idpInitiated, "//evil.example", fuzzPendingCookie+"="+pending)
	f.Add("idp", []byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_r" Version="2.0"/>`), `"><script>alert(1)</script>`, fuzzPendingCookie+"=garbage")
	f.Add("idp", []byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>`), "/\\evil.example", "")
	f.Add("<b>nope</b>", []byte("not xml"), "", fuzzPendingCookie+"="+pending+"; "+fuzzPendingCookie+"=x")
	f.Add("idp", []byte{}, "", "")

	f.Fuzz(func(t *testing.T, conn string, doc []byte, relayState, cookies string) {
		r := formRequest("/saml/acme/"+url.PathEscape(conn)+"/acs", url.Values{
			"SAMLResponse": {base64.StdEncoding.EncodeToString(doc)}, "RelayState": {relayState}})
		rec := e.serve(r, cookies)
		sess := e.checkAnswer(t, rec, conn, string(doc), relayState, cookies)
		if sess == nil {
			return
		}
		email, ok := genuine[string(doc)]
		switch {
		case !ok:
			t.Fatalf("a session for a response the IdP did not issue: %+v\nlogs:\n%s", *sess, e.logs)
		case used[string(doc)]:
			t.Fatalf("a second session for one response: %+v", *sess)
		case sess.Email != email || sess.OrganizationID != "acme" || sess.ConnectionID != conn:
			t.Fatalf("the session %+v is not %s's on acme/%s", *sess, email, conn)
		}
		used[string(doc)] = true
	})
}

// FuzzAuthVerify sends a Cookie header to /auth/verify. On top of
// checkAnswer: the answer is 200 or 401 and never cached; 200 only when a
// session cookie of the request opens, and its headers are that
// session's; nothing is set.
func FuzzAuthVerify(f *testing.F) {
	e := newFuzzEdge(f)
	// The session's user exists and is active: /auth/verify rereads it.
	userID := uuid.NewString()
	if err := e.w.store.InTx(context.Background(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateUser(ctx, store.User{ID: userID, OrganizationID: "acme", Email: "ada@acme.example", Role: "member",
			Status: store.StatusActive, CreatedBy: store.CreatedByAdmin})
		return err
	}); err != nil {
		f.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if err := e.sessions.Issue(rec, session.Session{UserID: userID, OrganizationID: "acme", ConnectionID: "idp", Role: "member", Email: "ada@acme.example"}); err != nil {
		f.Fatal(err)
	}
	valid := rec.Result().Cookies()[0].Value
	past, err := session.NewManager(mustKeys(f), session.Options{Insecure: true, Now: func() time.Time { return fuzzClock.Add(-9 * time.Hour) }})
	if err != nil {
		f.Fatal(err)
	}
	rec = httptest.NewRecorder()
	if err := past.Issue(rec, session.Session{UserID: "u-2", OrganizationID: "acme"}); err != nil {
		f.Fatal(err)
	}
	expired := rec.Result().Cookies()[0].Value
	f.Add(fuzzSessionCookie + "=" + valid)
	f.Add(fuzzSessionCookie + "=" + expired)
	f.Add(fuzzSessionCookie + "=" + expired + "; " + fuzzSessionCookie + "=" + valid)
	f.Add(fuzzSessionCookie + "=" + valid[:len(valid)-1] + "A")
	f.Add(fuzzPendingCookie + "=" + valid)
	f.Add(fuzzSessionCookie + "=\"" + valid + "\"")
	f.Add("")

	f.Fuzz(func(t *testing.T, cookies string) {
		r := httptest.NewRequest(http.MethodGet, "/auth/verify", nil)
		rec := e.serve(r, cookies)
		e.checkAnswer(t, rec, cookies)
		h := rec.Header()
		if h.Get("Cache-Control") != "no-store" || len(h.Values("Set-Cookie")) > 0 {
			t.Fatalf("verify: Cache-Control %q, Set-Cookie %q", h.Get("Cache-Control"), h.Values("Set-Cookie"))
		}
		want, err := e.sessions.Read(r)
		switch {
		case rec.Code == http.StatusUnauthorized && err != nil:
		case rec.Code == http.StatusOK && err == nil:
			for k, v := range map[string]string{"X-Jitprov-User-Id": want.UserID, "X-Jitprov-Organization": want.OrganizationID,
				"X-Jitprov-Role": want.Role, "X-Jitprov-Email": want.Email} {
				if h.Get(k) != v {
					t.Fatalf("verify: %s %q, the session says %q", k, h.Get(k), v)
				}
			}
		default:
			t.Fatalf("verify answered %d; the session cookie opens to %+v, %v", rec.Code, want, err)
		}
	})
}

func mustKeys(tb testing.TB) *session.Keys {
	tb.Helper()
	k, err := session.NewKeys(make([]byte, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// FuzzLoginContinue sends an awaiting token (?t=) and the awaiting cookie
// to /login/continue. On top of checkAnswer: a session is set only for a
// token that opens with this browser's cookie, for an identity the
// provisioner decided with the token's claims, and is that user's.
func FuzzLoginContinue(f *testing.F) {
	e := newFuzzEdge(f)
	// A person the provisioner decided on: their known identity.
	e.w.idp.signsIn(person("00u-fuzz-cleo", "cleo@acme.example"))
	if resp, _ := login(f, newBrowser(f), e.url, "/"); resp.Status != http.StatusSeeOther {
		f.Fatalf("login: %d %s", resp.Status, resp.Body)
	}
	js, err := jetstream.New(testenv.Connect(f, e.w.ns))
	if err != nil {
		f.Fatal(err)
	}
	ids, err := known.New(context.Background(), js, known.Config{})
	if err != nil {
		f.Fatal(err)
	}
	var rec known.Record
	waitUntil(f, func() bool {
		rec, err = ids.Get(context.Background(), "acme", "idp", "00u-fuzz-cleo")
		return err == nil
	})
	seal := func(a session.Awaiting) (token, cookie string) {
		r := httptest.NewRecorder()
		tok, err := e.sessions.SealAwaiting(r, a)
		if err != nil {
			f.Fatal(err)
		}
		return tok, fuzzAwaitingCookie + "=" + r.Result().Cookies()[0].Value
	}
	decided, cookie := seal(session.Awaiting{OrganizationID: "acme", ConnectionID: "idp", ExternalID: "00u-fuzz-cleo", ClaimsDigest: rec.ClaimsDigest, ReturnTo: "/app"})
	f.Add(decided, cookie)
	f.Add(decided, "")
	f.Add(decided, fuzzAwaitingCookie+"=0000")
	waiting, cookie2 := seal(session.Awaiting{OrganizationID: "acme", ConnectionID: "idp", ExternalID: "00u-nobody", ClaimsDigest: "x", ReturnTo: "/app"})
	f.Add(waiting, cookie2)
	other, cookie3 := seal(session.Awaiting{OrganizationID: "acme", ConnectionID: "idp", ExternalID: "00u-fuzz-cleo", ClaimsDigest: "old", ReturnTo: "//evil.example"})
	f.Add(other, cookie3)
	f.Add(`"><script>alert(1)</script>`, cookie)
	f.Add("", "")

	f.Fuzz(func(t *testing.T, token, cookies string) {
		r := httptest.NewRequest(http.MethodGet, "/login/continue", nil)
		r.URL.RawQuery = url.Values{"t": {token}}.Encode()
		rec := e.serve(r, cookies)
		sess := e.checkAnswer(t, rec, token, cookies)
		if sess == nil {
			return
		}
		a, err := e.sessions.OpenAwaiting(r, token)
		if err != nil {
			t.Fatalf("a session for an awaiting token that does not open with this browser's cookie (%v): %+v", err, *sess)
		}
		got, err := ids.Get(context.Background(), a.OrganizationID, a.ConnectionID, a.ExternalID)
		if err != nil || got.ClaimsDigest != a.ClaimsDigest || got.UserID != sess.UserID || sess.OrganizationID != a.OrganizationID {
			t.Fatalf("the session %+v is not the decided identity's %+v (%v) of token %+v", *sess, got, err, a)
		}
	})
}

// discoveryLink is a connection's login on the edge, as discovery offers it.
var discoveryLink = regexp.MustCompile(`^/(saml|oidc)/acme/(idp|idp-init)/login(?:\?return_to=([^&#]+))?$`)

// FuzzDiscovery posts a form body to home-realm discovery (POST /login).
// On top of checkAnswer: it answers 200, 303, 400, 404 or 409 and sets no
// cookie; it sends a person only to a connection of the organisation that
// verified the email's domain, with a return URL that is a path on the
// edge; every link it offers is such a login.
func FuzzDiscovery(f *testing.F) {
	e := newFuzzEdge(f)
	for _, v := range []url.Values{
		{"email": {"alice@acme.example"}, "return_to": {"/app"}},
		{"email": {"alice@ACME.example"}},
		{"email": {"a@acme.example"}, "return_to": {"//evil.example"}},
		{"email": {"a@acme.example"}, "return_to": {"https://evil.example/"}},
		{"email": {"<b>x</b>@acme.example"}, "return_to": {`"><script>`}},
		{"email": {"mallory@evil.example"}},
		{"email": {"not an email"}},
		{"email": {"Alice <alice@acme.example>"}},
	} {
		f.Add(v.Encode())
	}
	f.Add("email=a%40acme.example&email=b%40evil.example&return_to=%2F%5Cevil.example")
	f.Add("%zz")
	f.Add("")

	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := e.serve(r, "")
		form, _ := url.ParseQuery(body)
		inputs := []string{body}
		for _, vs := range form {
			inputs = append(inputs, vs...)
		}
		e.checkAnswer(t, rec, inputs...)
		switch rec.Code {
		case http.StatusOK, http.StatusSeeOther, http.StatusBadRequest, http.StatusNotFound, http.StatusConflict:
		default:
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("discovery answered %d", rec.Code)
			}
		}
		if len(rec.Header().Values("Set-Cookie")) > 0 {
			t.Fatalf("discovery set cookies: %q", rec.Header().Values("Set-Cookie"))
		}
		links := []string{}
		if loc := rec.Header().Get("Location"); loc != "" {
			links = append(links, loc)
		}
		for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(rec.Body.String(), -1) {
			links = append(links, strings.ReplaceAll(m[1], "&amp;", "&"))
		}
		for _, l := range links {
			m := discoveryLink.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("discovery links to %q, not a login of acme's connections", l)
			}
			if m[3] == "" {
				continue // no return_to: the organisation's landing URL
			}
			rt, err := url.QueryUnescape(m[3])
			if err != nil || rt != session.SafeReturnTo(rt, nil, "/") {
				t.Fatalf("discovery passes return_to %q (%v), not a path on the edge", rt, err)
			}
		}
		if len(links) > 0 && !strings.HasSuffix(strings.ToLower(strings.TrimSpace(form.Get("email"))), "@acme.example") {
			t.Fatalf("discovery sent %q to acme's connections", form.Get("email"))
		}
	})
}
