package console_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/html"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/console"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

const loginURL = "http://edge.test/login"

// world is the console on a real Postgres with two organisations, acme
// (3 seats) and globex, signed in to through real edge session cookies.
type world struct {
	s        *postgres.Store
	core     *admin.Core
	dec      *provisioner.Decider
	sessions *session.Manager
	srv      *httptest.Server
}

func org(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Org " + id, MaxSeats: seats, Roles: []string{"viewer", "member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
}

func newWorld(t *testing.T, seats int) *world {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org("acme", seats), org("globex", 10)}, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml", DisplayName: "Acme SAML"},
		{OrganizationID: "acme", ID: "oidc", Protocol: "oidc"},
		{OrganizationID: "globex", ID: "idp", Protocol: "saml"},
	}); err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeys([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.NewManager(keys, session.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{s: s, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t)), sessions: sessions}
	c, err := console.New(console.Config{Core: w.core, Auth: authn.New(authn.Config{Store: w.s, Sessions: sessions}),
		LoginURL: loginURL, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c)
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	return w
}

// login provisions a person through the pipeline's decision.
func (w *world) login(t *testing.T, orgID, conn, ext string, roles ...string) events.ProvisioningResult {
	t.Helper()
	res, err := w.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: orgID, ConnectionID: conn,
		Protocol: events.ProtocolSAML, ExternalID: ext, Email: ext + "@" + orgID + ".example", EmailVerified: true,
		GivenName: strings.ToUpper(ext[:1]) + ext[1:], FamilyName: "Example",
		Roles: roles, AuthenticatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatalf("login %s: %v", ext, err)
	}
	return res
}

// admin makes an admin of orgID (as the bootstrap or another admin would)
// and returns a browser signed in as them.
func (w *world) admin(t *testing.T, orgID, ext string) (*testenv.Browser, string) {
	t.Helper()
	id := w.login(t, orgID, "idp", ext).User.ID
	if _, err := w.core.ChangeRole(t.Context(), admin.Operator("test"), orgID, id, "admin"); err != nil {
		t.Fatal(err)
	}
	return w.browser(t, orgID, id, ext+"@"+orgID+".example"), id
}

// browser is a browser holding the edge's session of the user.
func (w *world) browser(t *testing.T, orgID, userID, email string) *testenv.Browser {
	t.Helper()
	b := testenv.NewBrowser(t, testenv.StopAt("edge.test"))
	rec := httptest.NewRecorder()
	if err := w.sessions.Issue(rec, session.Session{UserID: userID, OrganizationID: orgID, ConnectionID: "idp", Role: "member", Email: email}); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(w.srv.URL)
	b.Client().Jar.SetCookies(u, rec.Result().Cookies())
	return b
}

func (w *world) url(path string) string { return w.srv.URL + path }

func (w *world) user(t *testing.T, orgID, id string) store.User {
	t.Helper()
	d, err := w.core.User(t.Context(), admin.Operator("test"), orgID, id)
	if err != nil {
		t.Fatal(err)
	}
	return d.User
}

func (w *world) seatsUsed(t *testing.T, orgID string) int {
	t.Helper()
	d, err := w.core.Organization(t.Context(), admin.Operator("test"), orgID)
	if err != nil {
		t.Fatal(err)
	}
	return d.Organization.SeatsUsed
}

func mustStatus(t *testing.T, p *testenv.Page, status int, wants ...string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("%s: status %d, want %d:\n%s", p.URL, p.Status, status, p.Body)
	}
	mustShow(t, p, wants...)
}

// mustShow checks the page's text (tags dropped, spaces collapsed) shows
// each of wants.
func mustShow(t *testing.T, p *testenv.Page, wants ...string) {
	t.Helper()
	text := pageText(p, "body")
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s does not show %q; it shows:\n%s", p.URL, want, text)
		}
	}
}

func mustNotShow(t *testing.T, p *testenv.Page, unwanted string) {
	t.Helper()
	text := pageText(p, "main")
	if strings.Contains(text, unwanted) {
		t.Errorf("%s shows %q, and should not:\n%s", p.URL, unwanted, text)
	}
}

// pageText is the text of the page's first element tag, one space between
// the texts of elements, as a person reads it.
func pageText(p *testenv.Page, tag string) string {
	var b strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
		case n.Type == html.ElementNode && (n.Data == "option" || n.Data == "select" || n.Data == "script" || n.Data == "style"):
			return // a filter's choices are not what the page says
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
		b.WriteString(" ")
	}
	els := p.Elements(tag)
	if len(els) == 0 {
		return ""
	}
	walk(els[0])
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestWhoMayUseTheConsole(t *testing.T) {
	w := newWorld(t, 10)
	boss, _ := w.admin(t, "acme", "boss")
	member := w.login(t, "acme", "idp", "ann").User
	t.Run("nobody signed in is sent to the edge's sign-in, to come back", func(t *testing.T) {
		b := testenv.NewBrowser(t, testenv.StopAt("edge.test"))
		p := b.Get(w.url("/admin/orgs/acme/users?status=active"))
		if p.Status != http.StatusSeeOther {
			t.Fatalf("status %d, want 303 to the sign-in:\n%s", p.Status, p.Body)
		}
		loc, _ := url.Parse(p.Header.Get("Location"))
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != loginURL {
			t.Errorf("sent to %s, want %s", got, loginURL)
		}
		if rt := loc.Query().Get("return_to"); rt != w.url("/admin/orgs/acme/users?status=active") {
			t.Errorf("return_to %q, want the page asked for", rt)
		}
	})
	t.Run("a member gets a clear 403", func(t *testing.T) {
		b := w.browser(t, "acme", member.ID, member.Email)
		for _, path := range []string{"/admin/", "/admin/orgs/acme/", "/admin/orgs/acme/users"} {
			mustStatus(t, b.Get(w.url(path)), http.StatusForbidden, "You are not an administrator here")
		}
		p := b.Post(w.url("/admin/orgs/acme/users/"+member.ID+"/role"), url.Values{"role": {"admin"}})
		mustStatus(t, p, http.StatusForbidden)
		if u := w.user(t, "acme", member.ID); u.Role != "member" {
			t.Errorf("a member's post changed a role: %s", u.Role)
		}
	})
	t.Run("an admin of acme cannot see or change globex", func(t *testing.T) {
		g := w.login(t, "globex", "idp", "gus").User
		mustStatus(t, boss.Get(w.url("/admin/orgs/globex/")), http.StatusForbidden, "You are not an administrator here")
		mustStatus(t, boss.Get(w.url("/admin/orgs/globex/users/"+g.ID)), http.StatusForbidden)
		home := boss.Get(w.url("/admin/orgs/globex/users"))
		mustStatus(t, home, http.StatusForbidden)
		confirm := boss.Get(w.url("/admin/orgs/acme/users/" + member.ID + "/confirm?action=suspend"))
		var csrf string
		for _, f := range confirm.Forms() {
			csrf = f.Fields.Get("csrf")
		}
		mustStatus(t, boss.Post(w.url("/admin/orgs/globex/users/"+g.ID+"/suspend"), url.Values{"csrf": {csrf}}), http.StatusForbidden)
		if u := w.user(t, "globex", g.ID); u.Status != store.StatusActive {
			t.Errorf("acme's admin suspended globex's %s", g.Email)
		}
	})
	t.Run("an admin lands on their organisation's dashboard", func(t *testing.T) {
		p := boss.Get(w.url("/admin/"))
		mustStatus(t, p, http.StatusOK, "Dashboard", "Org acme", "Signed in as boss@acme.example")
		if p.URL.Path != "/admin/orgs/acme/" {
			t.Errorf("landed on %s", p.URL.Path)
		}
	})
	t.Run("an admin demoted loses the console at once", func(t *testing.T) {
		b, id := w.admin(t, "acme", "dana")
		mustStatus(t, b.Get(w.url("/admin/orgs/acme/")), http.StatusOK)
		if _, err := w.core.ChangeRole(t.Context(), admin.Operator("test"), "acme", id, "member"); err != nil {
			t.Fatal(err)
		}
		mustStatus(t, b.Get(w.url("/admin/orgs/acme/")), http.StatusForbidden, "You are not an administrator here")
	})
}

// Every form post is refused unless it comes from the console's own page
// (CrossOriginProtection) with the session's token.
func TestCSRF(t *testing.T) {
	w := newWorld(t, 10)
	boss, _ := w.admin(t, "acme", "boss")
	ann := w.login(t, "acme", "idp", "ann").User
	page := boss.Get(w.url("/admin/orgs/acme/users/" + ann.ID + "/confirm?action=suspend"))
	mustStatus(t, page, http.StatusOK, "Suspend ann@acme.example?")
	form := page.Forms()[0]
	if form.Fields.Get("csrf") == "" {
		t.Fatalf("the form carries no token: %v", form.Fields)
	}
	post := func(fields url.Values, header map[string]string) *testenv.Page {
		req, _ := http.NewRequest(http.MethodPost, form.Action, strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return boss.Do(req)
	}
	refusals := []struct {
		name   string
		fields url.Values
		header map[string]string
		want   string
	}{
		{"no token", url.Values{"reason": {"x"}}, nil, "This form has expired"},
		{"a wrong token", url.Values{"csrf": {"bm9wZQ"}}, nil, "This form has expired"},
		{"cross-site, with the token", form.Fields, map[string]string{"Sec-Fetch-Site": "cross-site"}, "This form came from another site"},
		{"another origin, with the token", form.Fields, map[string]string{"Origin": "http://evil.example"}, "This form came from another site"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			mustStatus(t, post(r.fields, r.header), http.StatusForbidden, r.want)
			if u := w.user(t, "acme", ann.ID); u.Status != store.StatusActive {
				t.Fatalf("a refused post suspended ann")
			}
		})
	}
	t.Run("another session's token", func(t *testing.T) {
		other, _ := w.admin(t, "acme", "otto")
		p := other.Get(w.url("/admin/orgs/acme/users/" + ann.ID + "/confirm?action=suspend"))
		theirs := p.Forms()[0].Fields
		mustStatus(t, post(theirs, nil), http.StatusForbidden, "This form has expired")
	})
	t.Run("the console's own form, same origin", func(t *testing.T) {
		p := post(form.Fields, map[string]string{"Sec-Fetch-Site": "same-origin"})
		mustStatus(t, p, http.StatusOK, "ann@acme.example is suspended.")
		if u := w.user(t, "acme", ann.ID); u.Status != store.StatusSuspended {
			t.Fatalf("ann is %s, want suspended", u.Status)
		}
	})
}

func TestDashboard(t *testing.T) {
	w := newWorld(t, 3)
	boss, _ := w.admin(t, "acme", "boss")
	p := boss.Get(w.url("/admin/orgs/acme/"))
	mustStatus(t, p, http.StatusOK, "1 of 3 used", "No pending reviews", "First logins: 1", "Refused or turned away: 0")
	w.login(t, "acme", "idp", "ann")
	w.login(t, "acme", "idp", "grace", "admin") // a review, and the last seat
	bob := w.login(t, "acme", "idp", "bob")     // no seat
	if bob.Outcome != events.OutcomeRejected {
		t.Fatalf("bob: %s, want rejected", bob.Outcome)
	}
	p = boss.Get(w.url("/admin/orgs/acme/"))
	mustStatus(t, p, http.StatusOK, "3 of 3 used", "Every seat is taken", "1 pending", "First logins: 3", "Refused or turned away: 1")
	meters := p.Elements("meter")
	if len(meters) != 1 || testenv.Attr(meters[0], "value") != "3" || testenv.Attr(meters[0], "max") != "3" {
		t.Errorf("the seat bar is not a meter of 3 of 3: %d meters", len(meters))
	}
	rects := 0
	for _, r := range p.Elements("rect") {
		if strings.HasPrefix(testenv.Attr(r, "class"), "bar-") {
			rects++
		}
	}
	if rects != 2 {
		t.Errorf("the chart has %d bars, want 2 (today's first logins and refusals)", rects)
	}
	today := time.Now().UTC().Format("2 Jan")
	mustShow(t, p, today+" 3 1")
}

func TestReviews(t *testing.T) {
	w := newWorld(t, 10)
	boss, _ := w.admin(t, "acme", "boss")
	mustStatus(t, boss.Get(w.url("/admin/orgs/acme/reviews")), http.StatusOK, "No pending reviews.", "No review has been decided yet.")
	grace := w.login(t, "acme", "idp", "grace", "admin").User
	hal := w.login(t, "acme", "idp", "hal", "admin").User

	p := boss.Get(w.url("/admin/orgs/acme/reviews"))
	mustStatus(t, p, http.StatusOK, "grace@acme.example", "hal@acme.example")
	// Approve Grace's, with the form the page shows for it.
	reviews, err := w.core.Reviews(t.Context(), admin.Operator("t"), store.ReviewFilter{OrganizationID: "acme", UserID: grace.ID})
	if err != nil || len(reviews) != 1 {
		t.Fatalf("grace's reviews: %v %v", reviews, err)
	}
	var approve testenv.Form
	for _, f := range p.Forms() {
		if f.Action == w.url("/admin/orgs/acme/reviews/"+reviews[0].ID+"/approve") {
			approve = f
		}
	}
	if approve.Action == "" {
		t.Fatalf("no approve form for grace's review:\n%s", p.Body)
	}
	done := boss.Post(approve.Action, approve.Fields)
	mustStatus(t, done, http.StatusOK, "Approved: grace@acme.example now has the role admin.")
	if u := w.user(t, "acme", grace.ID); u.Role != "admin" {
		t.Fatalf("grace is %s after approval", u.Role)
	}
	mustShow(t, done, "Approved")
	users := boss.Get(w.url("/admin/orgs/acme/users?q=grace"))
	mustStatus(t, users, http.StatusOK, "grace@acme.example Grace Example admin Active")

	t.Run("approving twice is a clear conflict", func(t *testing.T) {
		again := boss.Post(approve.Action, approve.Fields)
		mustStatus(t, again, http.StatusOK, "Nothing was changed: it is no longer in a state that allows this")
	})

	t.Run("deny asks a reason, and keeps the role", func(t *testing.T) {
		hr, _ := w.core.Reviews(t.Context(), admin.Operator("t"), store.ReviewFilter{OrganizationID: "acme", UserID: hal.ID})
		form := boss.Get(w.url("/admin/orgs/acme/reviews/" + hr[0].ID + "/deny"))
		mustStatus(t, form, http.StatusOK, "Deny admin to hal@acme.example?", "keeps the role member")
		f := form.Forms()[0]
		f.Fields.Set("reason", "  ")
		mustStatus(t, boss.Post(f.Action, f.Fields), http.StatusBadRequest, "Please give a reason")
		f.Fields.Set("reason", "Not on the ops rota")
		mustStatus(t, boss.Post(f.Action, f.Fields), http.StatusOK, "Denied: hal@acme.example keeps the role member.")
		if u := w.user(t, "acme", hal.ID); u.Role != "member" {
			t.Errorf("hal is %s after a denial", u.Role)
		}
		page := boss.Get(w.url("/admin/orgs/acme/reviews"))
		mustShow(t, page, "No pending reviews.", "Denied", "Not on the ops rota")
	})
	t.Run("an unknown review", func(t *testing.T) {
		mustStatus(t, boss.Get(w.url("/admin/orgs/acme/reviews/nope/deny")), http.StatusNotFound, "Not found")
	})
}

func TestUsersTable(t *testing.T) {
	w := newWorld(t, 100)
	boss, _ := w.admin(t, "acme", "boss")
	for i := range 30 {
		w.login(t, "acme", "idp", fmt.Sprintf("person%02d", i))
	}
	oscar := w.login(t, "acme", "oidc", "oscar").User
	if _, err := w.core.Suspend(t.Context(), admin.Operator("t"), "acme", oscar.ID, ""); err != nil {
		t.Fatal(err)
	}
	p := boss.Get(w.url("/admin/orgs/acme/users"))
	mustStatus(t, p, http.StatusOK, "oscar@acme.example")
	if n := len(p.Elements("tr")) - 1; n != 25 {
		t.Errorf("the first page has %d rows, want 25", n)
	}
	next := p.Link("Next page")
	p2 := boss.Get(next)
	mustStatus(t, p2, http.StatusOK, "boss@acme.example")
	if n := len(p2.Elements("tr")) - 1; n != 7 {
		t.Errorf("the second page has %d rows, want 7 (32 users)", n)
	}
	p2.Link("First page")

	for _, c := range []struct {
		query string
		rows  int
		want  string
	}{
		{"q=PERSON1", 10, "person19@acme.example"},
		{"status=suspended", 1, "oscar@acme.example"},
		{"role=admin", 1, "boss@acme.example"},
		{"connection=oidc", 1, "oscar@acme.example"},
		{"q=person&status=suspended", 0, "No users match these filters."},
	} {
		p := boss.Get(w.url("/admin/orgs/acme/users?" + c.query))
		mustStatus(t, p, http.StatusOK, c.want)
		if n := max(0, len(p.Elements("tr"))-1); n != c.rows {
			t.Errorf("%s: %d rows, want %d", c.query, n, c.rows)
		}
	}
	mustStatus(t, boss.Get(w.url("/admin/orgs/acme/users?cursor=garbage")), http.StatusBadRequest, "start again from the first page")
	// Every filter has a label.
	for _, in := range append(p.Elements("input"), p.Elements("select")...) {
		id := testenv.Attr(in, "id")
		if testenv.Attr(in, "type") == "hidden" || id == "" {
			continue
		}
		if !strings.Contains(p.Body, `for="`+id+`"`) {
			t.Errorf("the field %s has no label", id)
		}
	}
}

func TestUserPageActions(t *testing.T) {
	w := newWorld(t, 3)
	boss, bossID := w.admin(t, "acme", "boss")
	ann := w.login(t, "acme", "idp", "ann").User

	p := boss.Get(w.url("/admin/orgs/acme/users/" + ann.ID))
	mustStatus(t, p, http.StatusOK, "ann@acme.example", "Role member", "Status Active", "idp ann created",
		"Created (first login)", "No role reviews.", "No admin has acted on this user.")

	act := func(link, confirmTitle, button, done string, fields map[string]string) *testenv.Page {
		t.Helper()
		c := boss.Get(w.url("/admin/orgs/acme/users/" + ann.ID + "/confirm?" + link))
		mustStatus(t, c, http.StatusOK, confirmTitle)
		f := c.Forms()[0]
		for k, v := range fields {
			f.Fields.Set(k, v)
		}
		got := boss.Post(f.Action, f.Fields)
		mustStatus(t, got, http.StatusOK, done)
		if got.URL.Path != "/admin/orgs/acme/users/"+ann.ID {
			t.Errorf("after %s the browser is at %s, want the user's page", button, got.URL.Path)
		}
		return got
	}
	p = act("action=suspend", "Suspend ann@acme.example?", "Suspend", "ann@acme.example is suspended.", map[string]string{"reason": "on leave"})
	mustShow(t, p, "Status Suspended", "Suspended a user", "boss@acme.example", "reason: on leave")
	if u := w.user(t, "acme", ann.ID); u.Status != store.StatusSuspended {
		t.Fatalf("ann is %s", u.Status)
	}
	p = act("action=reactivate", "Reactivate ann@acme.example?", "Reactivate", "ann@acme.example is active again.", nil)
	p = act("action=role&role=viewer", "Change the role of ann@acme.example to viewer?", "Change role", "ann@acme.example now has the role viewer.", nil)
	if u := w.user(t, "acme", ann.ID); u.Role != "viewer" {
		t.Fatalf("ann is %s", u.Role)
	}
	if n := w.seatsUsed(t, "acme"); n != 2 {
		t.Fatalf("seats used %d before deprovisioning, want 2", n)
	}
	p = act("action=deprovision", "Deprovision ann@acme.example?", "Deprovision", "ann@acme.example is deprovisioned; their seat is free.", nil)
	mustShow(t, p, "Status Deprovisioned", "Deprovisioned a user")
	mustNotShow(t, p, "Deprovision…")
	if n := w.seatsUsed(t, "acme"); n != 1 {
		t.Errorf("seats used %d after deprovisioning, want 1", n)
	}
	mustShow(t, boss.Get(w.url("/admin/orgs/acme/")), "1 of 3 used")

	t.Run("an admin may not give a role above theirs, nor one that does not exist", func(t *testing.T) {
		mustStatus(t, boss.Get(w.url("/admin/orgs/acme/users/"+ann.ID+"/confirm?action=role&role=owner")), http.StatusBadRequest, "Please choose a role")
		mustStatus(t, boss.Get(w.url("/admin/orgs/acme/users/"+ann.ID+"/confirm?action=explode")), http.StatusBadRequest, "Unknown action")
	})
	t.Run("no seat to come back to", func(t *testing.T) {
		w.login(t, "acme", "idp", "bea")
		w.login(t, "acme", "idp", "cy") // 3 of 3
		c := boss.Get(w.url("/admin/orgs/acme/users/" + ann.ID + "/confirm?action=reactivate"))
		f := c.Forms()[0]
		mustStatus(t, boss.Post(f.Action, f.Fields), http.StatusOK, "No seat available. Every seat of your organisation is taken.")
	})
	t.Run("an unknown user", func(t *testing.T) {
		mustStatus(t, boss.Get(w.url("/admin/orgs/acme/users/"+uuid.NewString())), http.StatusNotFound, "Not found")
	})
	_ = bossID
}

func TestAuditLog(t *testing.T) {
	w := newWorld(t, 2)
	boss, _ := w.admin(t, "acme", "boss")
	mustStatus(t, boss.Get(w.url("/admin/orgs/acme/audit?kind=actions")), http.StatusOK, "Changed a user's role") // the operator's
	w.login(t, "acme", "idp", "ann")
	w.login(t, "acme", "idp", "bob") // no seat: "why was Bob refused?"

	p := boss.Get(w.url("/admin/orgs/acme/audit"))
	mustStatus(t, p, http.StatusOK, "ann@acme.example", "Turned away", "No seat was free")
	why := boss.Get(w.url("/admin/orgs/acme/audit?person=bob"))
	mustStatus(t, why, http.StatusOK, "No user matches “bob”", "Turned away", "No seat was free")
	mustNotShow(t, why, "ann@acme.example")
	annOnly := boss.Get(w.url("/admin/orgs/acme/audit?person=ann@acme.example"))
	mustStatus(t, annOnly, http.StatusOK, "Decisions about the user ann@acme.example", "Created (first login)")
	mustNotShow(t, annOnly, "No seat was free")
	mustStatus(t, boss.Get(w.url("/admin/orgs/acme/audit?outcome=rejected&reason=seats_exhausted")), http.StatusOK, "No seat was free")
	mustStatus(t, boss.Get(w.url("/admin/orgs/acme/audit?outcome=refused")), http.StatusOK, "No decisions match these filters.")
	mustStatus(t, boss.Get(w.url("/admin/orgs/globex/audit")), http.StatusForbidden)
}

func TestConnections(t *testing.T) {
	w := newWorld(t, 2)
	boss, _ := w.admin(t, "acme", "boss")
	p := boss.Get(w.url("/admin/orgs/acme/connections"))
	mustStatus(t, p, http.StatusOK, "Acme SAML idp SAML — None found", "oidc oidc OpenID Connect", "Keys rotated by the provider", "Dry run")

	users := func() int {
		page, err := w.core.Users(t.Context(), admin.Operator("t"), store.UserFilter{OrganizationID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Users)
	}
	dry := func(fields map[string]string) *testenv.Page {
		t.Helper()
		f := boss.Get(w.url("/admin/orgs/acme/connections")).Forms()[0]
		for k, v := range fields {
			f.Fields.Set(k, v)
		}
		return boss.Post(f.Action, f.Fields)
	}
	before := users()
	mustStatus(t, dry(map[string]string{"external_id": "newbie", "email": "newbie@acme.example", "roles": "admin"}), http.StatusOK,
		"Sign-in would: Created (first login)", "a new user, newbie@acme.example", "Role review would be opened for admin")
	mustStatus(t, dry(map[string]string{"external_id": "boss"}), http.StatusOK, "Sign-in would: Signed in", "boss@acme.example")
	mustStatus(t, dry(map[string]string{"external_id": ""}), http.StatusBadRequest, "Please give the person's id")
	w.login(t, "acme", "idp", "ann") // 2 of 2
	mustStatus(t, dry(map[string]string{"external_id": "carl", "email": "carl@acme.example"}), http.StatusOK, "Sign-in would: Turned away", "No seat was free")
	if got := users(); got != before+1 {
		t.Errorf("dry runs wrote users: %d, want %d (ann's only)", got, before+1)
	}
	css := boss.Get(w.url("/admin/static/console.css"))
	if css.Status != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
		t.Errorf("the stylesheet: %d %s", css.Status, css.Header.Get("Content-Type"))
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("the pages' CSP %q allows more than styles", csp)
	}
	if len(p.Elements("script")) != 0 {
		t.Errorf("the console has a script")
	}
	mustStatus(t, boss.Get(w.url("/admin/nothing/here")), http.StatusNotFound, "Page not found")
}

// The connections page badges an IdP certificate by its expiry.
func TestCertificateBadges(t *testing.T) {
	w := newWorld(t, 2)
	boss, _ := w.admin(t, "acme", "boss")
	now := time.Now().UTC()
	settings := func(xml string) []byte {
		raw, err := json.Marshal(map[string]any{"idp_metadata_xml": xml, "sp_entity_id": "urn:test:" + xml[len(xml)-8:]})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if err := w.s.ApplyOrganizations(t.Context(), nil, []store.Connection{
		{OrganizationID: "acme", ID: "later", Protocol: "saml", Settings: settings(testenv.IDPMetadataExpiring(t, "later.idp.example", now.Add(100*24*time.Hour)))},
		{OrganizationID: "acme", ID: "soon", Protocol: "saml", Settings: settings(testenv.IDPMetadataExpiring(t, "soon.idp.example", now.Add(10*24*time.Hour+time.Hour)))},
		{OrganizationID: "acme", ID: "gone", Protocol: "saml", Settings: settings(testenv.IDPMetadataExpiring(t, "gone.idp.example", now.Add(-24*time.Hour)))},
		{OrganizationID: "acme", ID: "broken", Protocol: "saml", Settings: settings("<not-metadata/>")},
	}); err != nil {
		t.Fatal(err)
	}
	p := boss.Get(w.url("/admin/orgs/acme/connections"))
	mustStatus(t, p, http.StatusOK, "later SAML — Valid until", "soon SAML — Expires in 10 days until", "gone SAML — Expired until", "broken SAML — Cannot be read")
}

// authnLike answers as internal/admin/authn's Authenticator does: its own
// unauthenticated error, or the user's principal with their current role,
// which the core refuses unless it is the organisation's admin.
type authnLike struct {
	p   admin.Principal
	err error
}

func (a authnLike) Principal(*http.Request) (admin.Principal, error) { return a.p, a.err }

func TestWithAnotherAuthenticator(t *testing.T) {
	w := newWorld(t, 10)
	ann := w.login(t, "acme", "idp", "ann").User
	serve := func(a console.Authenticator) *testenv.Browser {
		c, err := console.New(console.Config{Core: w.core, Auth: a, LoginURL: loginURL})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(c)
		t.Cleanup(srv.Close)
		w.srv = srv
		return testenv.NewBrowser(t, testenv.StopAt("edge.test"))
	}
	b := serve(authnLike{err: fmt.Errorf("%w: no session", errors.New("authn: unauthenticated"))})
	if p := b.Get(w.url("/admin/orgs/acme/")); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), loginURL) {
		t.Errorf("an unauthenticated error: %d %s, want 303 to the sign-in", p.Status, p.Header.Get("Location"))
	}
	b = serve(authnLike{p: admin.Principal{Kind: store.ActorUser, ID: ann.ID, Name: ann.Email, Organization: "acme", Write: true, Role: "member"}})
	for _, path := range []string{"/admin/", "/admin/orgs/acme/", "/admin/orgs/acme/reviews", "/admin/orgs/acme/audit"} {
		mustStatus(t, b.Get(w.url(path)), http.StatusForbidden, "You are not an administrator here")
	}
	b = serve(authnLike{err: fmt.Errorf("%w: the store is down", admin.ErrUnavailable)})
	mustStatus(t, b.Get(w.url("/admin/orgs/acme/")), http.StatusServiceUnavailable, "The console cannot tell who you are")
}

// A held sign-up in the console: filtered as "Waiting for approval",
// approved from the person's page (a seat), or refused with a clear reason
// when no seat is free; a denial needs a reason.
func TestHeldSignupsInTheConsole(t *testing.T) {
	w := newWorld(t, 2)
	o := org("acme", 2)
	o.WhenFull = store.WhenFullHold
	if err := w.s.ApplyOrganizations(t.Context(), []store.Organization{o}, nil); err != nil {
		t.Fatal(err)
	}
	boss, _ := w.admin(t, "acme", "boss") // seat 1
	w.login(t, "acme", "idp", "ann")      // seat 2
	bea := w.login(t, "acme", "idp", "bea")
	cy := w.login(t, "acme", "idp", "cy")
	if bea.Outcome != events.OutcomeHeld || cy.Outcome != events.OutcomeHeld {
		t.Fatalf("logins in a full organisation: %s, %s; want held", bea.Outcome, cy.Outcome)
	}
	list := boss.Get(w.url("/admin/orgs/acme/users?status=held"))
	mustStatus(t, list, http.StatusOK, "bea@acme.example", "cy@acme.example", "Waiting for approval")
	mustNotShow(t, list, "ann@acme.example")

	page := boss.Get(w.url("/admin/orgs/acme/users/" + bea.User.ID))
	mustStatus(t, page, http.StatusOK, "waits for your approval", "Approve…", "Deny…")
	mustNotShow(t, page, "Deprovision…")
	confirm := boss.Get(w.url("/admin/orgs/acme/users/" + bea.User.ID + "/confirm?action=approve-signup"))
	mustStatus(t, confirm, http.StatusOK, "Approve the sign-up of bea@acme.example?")
	f := confirm.Forms()[0]
	mustStatus(t, boss.Post(f.Action, f.Fields), http.StatusOK, "No seat available")
	if u := w.user(t, "acme", bea.User.ID); u.Status != store.StatusHeld {
		t.Fatalf("bea is %s after a refused approval", u.Status)
	}

	deny := boss.Get(w.url("/admin/orgs/acme/users/" + cy.User.ID + "/confirm?action=deny-signup"))
	mustStatus(t, deny, http.StatusOK, "Deny the sign-up of cy@acme.example?", "required")
	df := deny.Forms()[0]
	mustStatus(t, boss.Post(df.Action, df.Fields), http.StatusOK, "reason")
	df.Fields.Set("reason", "not one of ours")
	got := boss.Post(df.Action, df.Fields)
	mustStatus(t, got, http.StatusOK, "The sign-up of cy@acme.example is denied.")
	mustShow(t, got, "Denied a sign-up", "Status Deprovisioned")

	// A seat freed, the approval goes through.
	if _, err := w.core.Deprovision(t.Context(), admin.Operator("test"), "acme", w.login(t, "acme", "idp", "ann").User.ID, "left"); err != nil {
		t.Fatal(err)
	}
	got = boss.Post(f.Action, f.Fields)
	mustStatus(t, got, http.StatusOK, "bea@acme.example is approved and has a seat.")
	mustShow(t, got, "Status Active", "Approved a sign-up")
	if n := w.seatsUsed(t, "acme"); n != 2 {
		t.Errorf("seats used %d, want 2", n)
	}
}

// The user's page lists the changes the fields' owners kept out.
func TestUserPageFieldConflicts(t *testing.T) {
	w := newWorld(t, 3)
	boss, _ := w.admin(t, "acme", "boss")
	ann := w.login(t, "acme", "idp", "ann").User
	mustNotShow(t, boss.Get(w.url("/admin/orgs/acme/users/"+ann.ID)), "kept out by the fields' owners")
	acme := org("acme", 3)
	acme.FieldOwners = map[string]string{store.FieldRole: store.OwnerApp}
	if err := w.s.ApplyOrganizations(t.Context(), []store.Organization{acme}, nil); err != nil {
		t.Fatal(err)
	}
	if res := w.login(t, "acme", "idp", "ann", "viewer"); res.User.Role != "member" {
		t.Fatalf("ann's role %q after a sign-in claiming viewer, want member kept (the application owns it)", res.User.Role)
	}
	p := boss.Get(w.url("/admin/orgs/acme/users/" + ann.ID))
	mustStatus(t, p, http.StatusOK, "Changes kept out by the fields' owners")
	if got := pageText(p, "main"); !strings.Contains(got, "role a sign-in viewer member app") {
		t.Errorf("conflicts section: %q", got)
	}
}
