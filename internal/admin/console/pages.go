package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// orgPage is what every page of an organisation shows in its header.
type orgPage struct {
	Org store.Organization
}

func (p orgPage) orgName() string { return p.Org.Name }

// organization reads the page's organisation, which the principal must
// be an admin of; false when it has answered the request.
func (c *Console) organization(w http.ResponseWriter, r *http.Request, s *request) (admin.OrganizationDetail, bool) {
	d, err := c.cfg.Core.Organization(r.Context(), s.P, s.Org)
	if err != nil {
		c.fail(w, r, s, err)
		return d, false
	}
	return d, true
}

func orgURL(org string, parts ...string) string {
	u := Prefix + "orgs/" + url.PathEscape(org) + "/"
	for i, p := range parts {
		if i > 0 {
			u += "/"
		}
		u += url.PathEscape(p)
	}
	return u
}

// The organisations list: where a principal of several lands; one of a
// single organisation goes straight to its dashboard.

type homePage struct{ Orgs []store.Organization }

func (homePage) title() string { return "Organisations" }

func (c *Console) home(w http.ResponseWriter, r *http.Request, s *request) {
	orgs, err := c.cfg.Core.Organizations(r.Context(), s.P)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	switch len(orgs) {
	case 0:
		c.forbidden(w, r, s)
	case 1:
		http.Redirect(w, r, orgURL(orgs[0].ID), http.StatusSeeOther)
	default:
		c.render(w, r, s, http.StatusOK, "home", homePage{Orgs: orgs})
	}
}

// The dashboard: seats, pending reviews, and first logins and refusals per
// day over the last 30 days.

type dashboardPage struct {
	orgPage
	SeatsPercent int
	SeatsFull    bool
	Pending      int
	Chart        chart
}

func (p dashboardPage) title() string { return p.Org.Name + " — Dashboard" }
func (dashboardPage) nav() string     { return "dashboard" }

type chart struct {
	Days       []day
	Max        int
	FirstTotal int
	RefTotal   int
	// SVG geometry.
	Width, Height int
}

type day struct {
	Date             time.Time
	First, Refused   int
	X                int
	FirstY, FirstH   int
	RefusedY, RefusH int
}

const (
	chartDays   = 30
	chartHeight = 120
	dayWidth    = 22
)

func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	org := d.Organization
	p := dashboardPage{orgPage: orgPage{Org: org}}
	if org.MaxSeats > 0 {
		p.SeatsPercent = min(100, org.SeatsUsed*100/org.MaxSeats)
		p.SeatsFull = org.SeatsUsed >= org.MaxSeats
	}
	dash, err := c.cfg.Core.Dashboard(r.Context(), s.P, org.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p.Pending = dash.PendingReviews
	p.Chart = c.chart(dash.Days)
	c.render(w, r, s, http.StatusOK, "dashboard", p)
}

// chart draws the first logins (outcome created) and the refusals
// (rejected: no seat; refused: suspended, deprovisioned, conflicts) of the
// last 30 days, from the core's counts per day.
func (c *Console) chart(counts []store.DayCount) chart {
	today := c.cfg.Now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -(chartDays - 1))
	ch := chart{Days: make([]day, chartDays), Width: chartDays * dayWidth, Height: chartHeight}
	for i := range ch.Days {
		ch.Days[i].Date = start.AddDate(0, 0, i)
	}
	for _, n := range counts {
		i := int(n.Day.UTC().Sub(start) / (24 * time.Hour))
		if i < 0 || i >= chartDays {
			continue
		}
		switch events.Outcome(n.Outcome) {
		case events.OutcomeCreated:
			ch.Days[i].First += n.Count
		case events.OutcomeRejected, events.OutcomeRefused:
			ch.Days[i].Refused += n.Count
		}
	}
	for _, d := range ch.Days {
		ch.Max = max(ch.Max, d.First, d.Refused)
		ch.FirstTotal += d.First
		ch.RefTotal += d.Refused
	}
	scale := func(n int) int {
		if ch.Max == 0 || n == 0 {
			return 0
		}
		return max(2, n*(chartHeight-10)/ch.Max)
	}
	for i := range ch.Days {
		d := &ch.Days[i]
		d.X = i * dayWidth
		d.FirstH, d.RefusH = scale(d.First), scale(d.Refused)
		d.FirstY, d.RefusedY = chartHeight-d.FirstH, chartHeight-d.RefusH
	}
	return ch
}

// The review queue.

type reviewsPage struct {
	orgPage
	Pending, Decided []reviewRow
}

type reviewRow struct {
	store.RoleReview
	Email string
	Name  string
}

func (p reviewsPage) title() string { return p.Org.Name + " — Role reviews" }
func (reviewsPage) nav() string     { return "reviews" }

func (c *Console) reviews(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	list, err := c.cfg.Core.Reviews(r.Context(), s.P, store.ReviewFilter{OrganizationID: d.Organization.ID, Limit: 100})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := reviewsPage{orgPage: orgPage{Org: d.Organization}}
	people := map[string]store.User{}
	for _, rv := range list {
		u, ok := people[rv.UserID]
		if !ok {
			if ud, err := c.cfg.Core.User(r.Context(), s.P, d.Organization.ID, rv.UserID); err == nil {
				u = ud.User
			}
			people[rv.UserID] = u
		}
		row := reviewRow{RoleReview: rv, Email: u.Email, Name: displayName(u)}
		if rv.Status == store.ReviewPending {
			p.Pending = append(p.Pending, row)
		} else {
			p.Decided = append(p.Decided, row)
		}
	}
	c.render(w, r, s, http.StatusOK, "reviews", p)
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request, s *request) {
	back := orgURL(s.Org, "reviews")
	res, err := c.cfg.Core.ApproveReview(r.Context(), s.P, s.Org, r.PathValue("id"))
	if err != nil {
		c.done(w, r, back, "error", c.actionError(r, err))
		return
	}
	c.done(w, r, back, "ok", fmt.Sprintf("Approved: %s now has the role %s.", res.User.Email, res.User.Role))
}

type denyPage struct {
	orgPage
	Review reviewRow
	Reason string
	Error  string
}

func (p denyPage) title() string { return p.Org.Name + " — Deny a role review" }
func (denyPage) nav() string     { return "reviews" }

func (c *Console) denyForm(w http.ResponseWriter, r *http.Request, s *request) {
	c.showDeny(w, r, s, http.StatusOK, "", "")
}

func (c *Console) showDeny(w http.ResponseWriter, r *http.Request, s *request, status int, reason, msg string) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	id := r.PathValue("id")
	list, err := c.cfg.Core.Reviews(r.Context(), s.P, store.ReviewFilter{OrganizationID: d.Organization.ID, Limit: store.MaxPageSize})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	i := slices.IndexFunc(list, func(rv store.RoleReview) bool { return rv.ID == id })
	if i < 0 {
		c.fail(w, r, s, admin.ErrNotFound)
		return
	}
	row := reviewRow{RoleReview: list[i]}
	if ud, err := c.cfg.Core.User(r.Context(), s.P, d.Organization.ID, row.UserID); err == nil {
		row.Email, row.Name = ud.User.Email, displayName(ud.User)
	}
	c.render(w, r, s, status, "deny", denyPage{orgPage: orgPage{Org: d.Organization}, Review: row, Reason: reason, Error: msg})
}

func (c *Console) deny(w http.ResponseWriter, r *http.Request, s *request) {
	reason := r.PostFormValue("reason")
	res, err := c.cfg.Core.DenyReview(r.Context(), s.P, s.Org, r.PathValue("id"), reason)
	var fe *admin.FieldError
	switch {
	case errorsAs(err, &fe):
		c.showDeny(w, r, s, http.StatusBadRequest, reason, fieldText(fe))
		return
	case err != nil:
		c.done(w, r, orgURL(s.Org, "reviews"), "error", c.actionError(r, err))
		return
	}
	c.done(w, r, orgURL(s.Org, "reviews"), "ok", fmt.Sprintf("Denied: %s keeps the role %s.", res.User.Email, res.User.Role))
}

// The users table.

type usersPage struct {
	orgPage
	Filter      store.UserFilter
	Connections []store.Connection
	Statuses    []string
	Users       []store.User
	Next        string // the next page's query, "" at the end
	First       string // the first page's query, "" on it
	Filtered    bool
}

func (p usersPage) title() string { return p.Org.Name + " — Users" }
func (usersPage) nav() string     { return "users" }

func (c *Console) users(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := store.UserFilter{OrganizationID: d.Organization.ID, Search: strings.TrimSpace(q.Get("q")), Status: q.Get("status"),
		Role: q.Get("role"), ConnectionID: q.Get("connection"), Cursor: q.Get("cursor"), Limit: 25}
	page, err := c.cfg.Core.Users(r.Context(), s.P, f)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := usersPage{orgPage: orgPage{Org: d.Organization}, Filter: f, Connections: d.Connections, Users: page.Users,
		Statuses: []string{store.StatusActive, store.StatusHeld, store.StatusSuspended, store.StatusDeprovisioned},
		Filtered: f.Search != "" || f.Status != "" || f.Role != "" || f.ConnectionID != ""}
	base := url.Values{}
	for k, v := range map[string]string{"q": f.Search, "status": f.Status, "role": f.Role, "connection": f.ConnectionID} {
		if v != "" {
			base.Set(k, v)
		}
	}
	p.Next, p.First = pages(base, f.Cursor, page.Next)
	c.render(w, r, s, http.StatusOK, "users", p)
}

// The user page.

type userPage struct {
	orgPage
	admin.UserDetail
	Decisions []decisionRow
	Roles     []string
}

func (p userPage) title() string { return p.Org.Name + " — " + p.User.Email }
func (userPage) nav() string     { return "users" }

func (c *Console) user(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	ud, err := c.cfg.Core.User(r.Context(), s.P, d.Organization.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	p := userPage{orgPage: orgPage{Org: d.Organization}, UserDetail: ud, Roles: d.Organization.Roles}
	for _, dec := range ud.Decisions {
		p.Decisions = append(p.Decisions, toDecisionRow(dec))
	}
	c.render(w, r, s, http.StatusOK, "user", p)
}

// userActions are what the user page offers, and what each does.
var userActions = map[string]struct {
	Verb, Button, Explain string
	Danger                bool
}{
	"suspend":        {"Suspend", "Suspend", "They can no longer sign in; they keep their seat and their data, and can be reactivated.", false},
	"reactivate":     {"Reactivate", "Reactivate", "They can sign in again. A deprovisioned person takes a seat again, if one is free.", false},
	"deprovision":    {"Deprovision", "Deprovision", "Their access ends and their seat is freed at once. Their next sign-in is refused, and sign-in will not create them again.", true},
	"role":           {"Change the role of", "Change role", "Their role changes at their next sign-in to the application.", false},
	"approve-signup": {"Approve the sign-up of", "Approve", "They take a seat now (if one is free) and can sign in; the page they wait on signs them in by itself.", false},
	"deny-signup":    {"Deny the sign-up of", "Deny", "They cannot sign in, and sign-in will not create them again. They never take a seat. Say why: they see that they were not approved.", true},
}

type confirmPage struct {
	orgPage
	User                  store.User
	Action                string
	Verb, Button, Explain string
	Danger                bool
	Role                  string
}

func (p confirmPage) title() string { return p.Org.Name + " — " + p.Verb + " " + p.User.Email }
func (confirmPage) nav() string     { return "users" }

func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	action := r.URL.Query().Get("action")
	a, known := userActions[action]
	if !known {
		c.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "Unknown action",
			Message: "The console does not know this action.", Back: orgURL(s.Org, "users", r.PathValue("id"))})
		return
	}
	ud, err := c.cfg.Core.User(r.Context(), s.P, d.Organization.ID, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	role := r.URL.Query().Get("role")
	if action == "role" && !slices.Contains(d.Organization.Roles, role) {
		c.render(w, r, s, http.StatusBadRequest, "error", errorPage{Title: "Please choose a role",
			Message: "Choose one of the organisation's roles.", Back: orgURL(s.Org, "users", ud.User.ID)})
		return
	}
	c.render(w, r, s, http.StatusOK, "confirm", confirmPage{orgPage: orgPage{Org: d.Organization}, User: ud.User,
		Action: action, Verb: a.Verb, Button: a.Button, Explain: a.Explain, Danger: a.Danger, Role: role})
}

func (c *Console) userAction(w http.ResponseWriter, r *http.Request, s *request) {
	id := r.PathValue("id")
	back := orgURL(s.Org, "users", id)
	reason := r.PostFormValue("reason")
	var (
		res  admin.Result
		err  error
		done string
	)
	ctx := r.Context()
	switch r.PathValue("action") {
	case "suspend":
		res, err = c.cfg.Core.Suspend(ctx, s.P, s.Org, id, reason)
		done = "%s is suspended."
	case "reactivate":
		res, err = c.cfg.Core.Reactivate(ctx, s.P, s.Org, id, reason)
		done = "%s is active again."
	case "deprovision":
		res, err = c.cfg.Core.Deprovision(ctx, s.P, s.Org, id, reason)
		done = "%s is deprovisioned; their seat is free."
	case "approve-signup":
		res, err = c.cfg.Core.ApproveSignup(ctx, s.P, s.Org, id)
		done = "%s is approved and has a seat."
	case "deny-signup":
		res, err = c.cfg.Core.DenySignup(ctx, s.P, s.Org, id, reason)
		done = "The sign-up of %s is denied."
	case "role":
		res, err = c.cfg.Core.ChangeRole(ctx, s.P, s.Org, id, r.PostFormValue("role"))
		done = "%s now has the role " + r.PostFormValue("role") + "."
	default:
		c.render(w, r, s, http.StatusNotFound, "error", errorPage{Title: "Unknown action", Message: "The console does not know this action."})
		return
	}
	if err != nil {
		c.done(w, r, back, "error", c.actionError(r, err))
		return
	}
	msg := fmt.Sprintf(done, res.User.Email)
	if !res.Changed {
		msg = "Nothing to change: " + msg
	}
	c.done(w, r, back, "ok", msg)
}

// Connections, with their IdP certificates' expiry and the dry-run
// tester.

type connectionsPage struct {
	orgPage
	Connections []admin.ConnectionInfo
	WarnDays    int
	DryRun      dryRunForm
	Result      *events.ProvisioningResult
	// Mapped is what a pasted SAML response or ID token maps to.
	Mapped *admin.MappedDryRun
	Error  string
}

// dryRunForm is the dry-run tester's form. Input chooses what is tried:
// "identity" (the fields), "saml" (a pasted SAML response) or "oidc" (a
// pasted ID token, and a userinfo response if any).
type dryRunForm struct {
	Input                                string
	Connection, ExternalID, Email, Roles string
	EmailVerified                        bool
	Pasted, Userinfo                     string
}

func (p connectionsPage) title() string { return p.Org.Name + " — Connections" }
func (connectionsPage) nav() string     { return "connections" }

func (c *Console) connections(w http.ResponseWriter, r *http.Request, s *request) {
	c.showConnections(w, r, s, http.StatusOK, dryRunForm{Input: "identity", EmailVerified: true}, nil, "")
}

func (c *Console) showConnections(w http.ResponseWriter, r *http.Request, s *request, status int, f dryRunForm, res *events.ProvisioningResult, msg string) {
	c.showConnectionsMapped(w, r, s, status, f, res, nil, msg)
}

func (c *Console) showConnectionsMapped(w http.ResponseWriter, r *http.Request, s *request, status int, f dryRunForm, res *events.ProvisioningResult, mapped *admin.MappedDryRun, msg string) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	conns, err := c.cfg.Core.Connections(r.Context(), s.P, d.Organization.ID)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, r, s, status, "connections", connectionsPage{orgPage: orgPage{Org: d.Organization}, Connections: conns,
		WarnDays: admin.WarnDays, DryRun: f, Result: res, Mapped: mapped, Error: msg})
}

// dryRun shows what sign-in would decide for an identity, writing nothing.
func (c *Console) dryRun(w http.ResponseWriter, r *http.Request, s *request) {
	f := dryRunForm{Connection: r.PostFormValue("connection"), ExternalID: strings.TrimSpace(r.PostFormValue("external_id")),
		Email: strings.TrimSpace(r.PostFormValue("email")), Roles: r.PostFormValue("roles"), EmailVerified: r.PostFormValue("email_verified") != "",
		Input: r.PostFormValue("input"), Pasted: strings.TrimSpace(r.PostFormValue("pasted")), Userinfo: strings.TrimSpace(r.PostFormValue("userinfo"))}
	switch f.Input {
	case "saml", "oidc":
		c.dryRunPasted(w, r, s, f)
		return
	case "", "identity":
		f.Input = "identity"
	default:
		c.showConnections(w, r, s, http.StatusBadRequest, f, nil, "Please choose what to try: the fields, a SAML response or an ID token.")
		return
	}
	id := events.Identity{OrganizationID: s.Org, ConnectionID: f.Connection, ExternalID: f.ExternalID, Email: f.Email,
		EmailVerified: f.EmailVerified, Protocol: events.ProtocolSAML}
	conns, err := c.cfg.Core.Organization(r.Context(), s.P, s.Org)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, cn := range conns.Connections {
		if cn.ID == f.Connection {
			id.Protocol = events.Protocol(cn.Protocol)
		}
	}
	for _, role := range strings.Split(f.Roles, ",") {
		if role = strings.TrimSpace(role); role != "" {
			id.Roles = append(id.Roles, role)
		}
	}
	if f.ExternalID == "" {
		c.showConnections(w, r, s, http.StatusBadRequest, f, nil, "Please give the person's id at the identity provider (the SAML NameID or the OpenID Connect sub).")
		return
	}
	res, err := c.cfg.Core.DryRun(r.Context(), s.P, s.Org, id)
	var fe *admin.FieldError
	switch {
	case errorsAs(err, &fe):
		c.showConnections(w, r, s, http.StatusBadRequest, f, nil, "This identity is not one sign-in could receive: "+fe.Msg)
		return
	case err != nil:
		c.fail(w, r, s, err)
		return
	}
	c.showConnections(w, r, s, http.StatusOK, f, &res, "")
}

// dryRunPasted shows what a pasted SAML response or ID token maps to and
// what sign-in would decide for it, writing nothing and validating
// nothing.
func (c *Console) dryRunPasted(w http.ResponseWriter, r *http.Request, s *request, f dryRunForm) {
	if f.Pasted == "" {
		what := "SAML response"
		if f.Input == "oidc" {
			what = "ID token"
		}
		c.showConnections(w, r, s, http.StatusBadRequest, f, nil, "Please paste the "+what+" to try.")
		return
	}
	var res admin.MappedDryRun
	var err error
	if f.Input == "saml" {
		res, err = c.cfg.Core.DryRunSAML(r.Context(), s.P, s.Org, f.Connection, f.Pasted)
	} else {
		res, err = c.cfg.Core.DryRunOIDC(r.Context(), s.P, s.Org, f.Connection, f.Pasted, []byte(f.Userinfo))
	}
	var fe *admin.FieldError
	switch {
	case errorsAs(err, &fe):
		c.showConnections(w, r, s, http.StatusBadRequest, f, nil, dryRunFieldNames[fe.Field]+fe.Msg)
		return
	case err != nil:
		c.fail(w, r, s, err)
		return
	}
	c.showConnectionsMapped(w, r, s, http.StatusOK, f, &res.Result, &res, "")
}

// dryRunFieldNames introduces a refusal of the dry run's inputs.
var dryRunFieldNames = map[string]string{
	"saml_response": "The SAML response: ",
	"id_token":      "The ID token: ",
	"userinfo":      "The userinfo response: ",
	"connection_id": "The connection: ",
}

// The audit log: provisioning decisions ("why was Bob refused?") and
// admin actions.

type auditPage struct {
	orgPage
	Kind        string // "decisions" or "actions"
	Person      string
	Outcome     string
	Reason      string
	Connection  string
	Target      string
	Connections []store.Connection
	Outcomes    []events.Outcome
	Reasons     []events.Reason
	Decisions   []decisionRow
	Actions     []store.AuditEntry
	Lookup      string // how Person was looked up, said on the page
	Next, First string
	Filtered    bool
}

func (p auditPage) title() string { return p.Org.Name + " — Audit log" }
func (auditPage) nav() string     { return "audit" }

type decisionRow struct {
	store.Decision
	Email   string
	Message string
}

func toDecisionRow(d store.Decision) decisionRow {
	row := decisionRow{Decision: d}
	var res events.ProvisioningResult
	if json.Unmarshal(d.Result, &res) == nil {
		row.Message = res.Message
		if res.User != nil {
			row.Email = res.User.Email
		}
	}
	return row
}

func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *request) {
	d, ok := c.organization(w, r, s)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := auditPage{orgPage: orgPage{Org: d.Organization}, Kind: q.Get("kind"), Connections: d.Connections,
		Outcomes: []events.Outcome{events.OutcomeCreated, events.OutcomeExisting, events.OutcomeRejected, events.OutcomeRefused, events.OutcomeFailed},
		Reasons: []events.Reason{events.ReasonSeatsExhausted, events.ReasonSuspended, events.ReasonDeprovisioned, events.ReasonEmailInUse,
			events.ReasonIdentityConflict, events.ReasonUnknownConnection, events.ReasonInternalError}}
	base := url.Values{}
	var next string
	cursor := q.Get("cursor")
	if p.Kind == "actions" {
		p.Target = strings.TrimSpace(q.Get("target"))
		base.Set("kind", "actions")
		if p.Target != "" {
			base.Set("target", p.Target)
			p.Filtered = true
		}
		page, err := c.cfg.Core.Audit(r.Context(), s.P, store.AuditFilter{OrganizationID: d.Organization.ID, Target: p.Target, Cursor: cursor, Limit: 50})
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		p.Actions, next = page.Entries, page.Next
	} else {
		p.Kind = "decisions"
		p.Person, p.Outcome, p.Reason, p.Connection = strings.TrimSpace(q.Get("person")), q.Get("outcome"), q.Get("reason"), q.Get("connection")
		f := store.DecisionFilter{OrganizationID: d.Organization.ID, Outcome: p.Outcome, Reason: p.Reason, ConnectionID: p.Connection,
			Cursor: cursor, Limit: 50}
		for k, v := range map[string]string{"person": p.Person, "outcome": p.Outcome, "reason": p.Reason, "connection": p.Connection} {
			if v != "" {
				base.Set(k, v)
				p.Filtered = true
			}
		}
		if p.Person != "" {
			// A person is found by their email among the users, or else
			// taken as their id at the IdP: a person refused a seat has no
			// user.
			users, err := c.cfg.Core.Users(r.Context(), s.P, store.UserFilter{OrganizationID: d.Organization.ID, Search: p.Person, Limit: 10})
			if err != nil {
				c.fail(w, r, s, err)
				return
			}
			i := slices.IndexFunc(users.Users, func(u store.User) bool { return strings.EqualFold(u.Email, p.Person) })
			if i < 0 && len(users.Users) == 1 {
				i = 0
			}
			if i >= 0 {
				f.UserID = users.Users[i].ID
				p.Lookup = "Decisions about the user " + users.Users[i].Email + "."
			} else {
				f.ExternalID = p.Person
				p.Lookup = "No user matches “" + p.Person + "”: showing the decisions about the identity with that id at the identity provider."
			}
		}
		page, err := c.cfg.Core.Decisions(r.Context(), s.P, f)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		for _, dec := range page.Decisions {
			p.Decisions = append(p.Decisions, toDecisionRow(dec))
		}
		next = page.Next
	}
	p.Next, p.First = pages(base, cursor, next)
	c.render(w, r, s, http.StatusOK, "audit", p)
}

// pages are the queries of a list's next page ("" at the end) and of its
// first ("" on it), keeping the filters of base.
func pages(base url.Values, cursor, next string) (nextQuery, firstQuery string) {
	if next != "" {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("cursor", next)
		nextQuery = "?" + q.Encode()
	}
	if cursor != "" {
		firstQuery = "?" + base.Encode()
	}
	return nextQuery, firstQuery
}
