package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/api"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/edge/session"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// harness is the admin API on a real Postgres with two organisations,
// acme and globex, served over HTTP.
type harness struct {
	s        *postgres.Store
	core     *admin.Core
	dec      *provisioner.Decider
	sessions *session.Manager
	clock    *clockwork.FakeClock
	srv      *httptest.Server
}

type limits struct {
	failures int // failed token attempts a minute per client
	uses     int // requests a minute per token
}

func org(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Org " + id, MaxSeats: seats, Roles: []string{"viewer", "member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
}

func newHarness(t *testing.T, seats int, l limits) *harness {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org("acme", seats), org("globex", seats)}, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml"}, {OrganizationID: "globex", ID: "idp", Protocol: "saml"},
	}); err != nil {
		t.Fatal(err)
	}
	sessions, err := authn.SessionManager([]string{strings.Repeat("ab", 32)}, true, "") // TEST KEY
	if err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClockAt(time.Now())
	h := &harness{s: s, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t)),
		sessions: sessions, clock: clock}
	auth := authn.New(authn.Config{Store: s, Sessions: sessions, Clock: clock, UsesPerMinute: l.uses,
		Failures: token.NewLimiter(l.failures, time.Minute, clock)})
	h.srv = httptest.NewServer(api.New(api.Config{Core: h.core, Authn: auth, Log: testenv.Logger(t)}).Handler())
	t.Cleanup(h.srv.Close)
	return h
}

// login provisions a person through the pipeline's decision.
func (h *harness) login(t *testing.T, orgID, ext string, roles ...string) events.ProvisioningResult {
	t.Helper()
	res, err := h.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: orgID, ConnectionID: "idp",
		Protocol: events.ProtocolSAML, ExternalID: ext, Email: ext + "@" + orgID + ".example", EmailVerified: true,
		Roles: roles, AuthenticatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatalf("login %s: %v", ext, err)
	}
	return res
}

// admin provisions an organisation's admin (JIT never grants the admin
// role: an operator does).
func (h *harness) admin(t *testing.T, orgID, ext string) store.User {
	t.Helper()
	u := h.login(t, orgID, ext).User
	res, err := h.core.ChangeRole(t.Context(), admin.Operator("test"), orgID, u.ID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return store.User{ID: res.User.ID, OrganizationID: orgID, Email: res.User.Email, Role: "admin"}
}

// cookie is the edge's session cookie of u, claiming role (which the API
// must not believe: it reads the user's current role).
func (h *harness) cookie(t *testing.T, orgID, userID, role string) *http.Cookie {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := h.sessions.Issue(rec, session.Session{UserID: userID, OrganizationID: orgID, Role: role, Email: userID + "@example"}); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}

// token creates a token as an operator and returns its secret and id.
func (h *harness) token(t *testing.T, orgID, scope string) (string, string) {
	t.Helper()
	c, err := h.core.CreateToken(t.Context(), admin.Operator("test"), admin.NewToken{Name: "t-" + orgID + "-" + scope, OrganizationID: orgID, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return c.Secret, c.Token.ID
}

// cred is how a request authenticates.
type cred struct {
	bearer string
	cookie *http.Cookie
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// errorOf is the error body of r.
func (r response) errorOf(t *testing.T) api.Error {
	t.Helper()
	var e struct{ Error api.Error }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not an error body: %q (%v)", r.body, err)
	}
	return e.Error
}

func (h *harness) do(t *testing.T, c cred, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, h.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// outbox decodes the outbox rows after seq, as the relay would publish them.
func (h *harness) outbox(t *testing.T, after int64) (int64, []string) {
	t.Helper()
	rows, err := h.s.Pool().Query(t.Context(), `SELECT seq, subject, header, data FROM outbox WHERE seq > $1 ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	last, types := after, []string{}
	for rows.Next() {
		var m nats.Msg
		var hd map[string][]string
		if err := rows.Scan(&last, &m.Subject, &hd, &m.Data); err != nil {
			t.Fatal(err)
		}
		m.Header = nats.Header(hd)
		ev, err := events.Decode(&m) // validates against the schema
		if err != nil {
			t.Fatalf("outbox row %d breaks the contract: %v", last, err)
		}
		types = append(types, ev.Type())
	}
	return last, types
}

func (h *harness) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := h.s.Pool().QueryRow(t.Context(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Who may do what over HTTP, one row per credential.
func TestAuthorizationMatrix(t *testing.T) {
	h := newHarness(t, 10, limits{failures: 1000, uses: -1})
	ctx := t.Context()
	boss := h.admin(t, "acme", "boss")
	gboss := h.admin(t, "globex", "gboss")
	ann := h.login(t, "acme", "ann").User
	gina := h.login(t, "globex", "gina").User
	gone := h.admin(t, "acme", "gone")
	if _, err := h.core.Suspend(ctx, admin.Operator("test"), "acme", gone.ID, ""); err != nil {
		t.Fatal(err)
	}
	acmeRead, _ := h.token(t, "acme", store.ScopeRead)
	acmeWrite, _ := h.token(t, "acme", store.ScopeWrite)
	globexWrite, _ := h.token(t, "globex", store.ScopeWrite)
	globalWrite, _ := h.token(t, "", store.ScopeWrite)
	globalRead, _ := h.token(t, "", store.ScopeRead)
	revoked, revokedID := h.token(t, "", store.ScopeWrite)
	if _, _, err := h.core.RevokeToken(ctx, admin.Operator("test"), revokedID); err != nil {
		t.Fatal(err)
	}
	expired, hash, err := token.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.CreateToken(ctx, store.Token{ID: uuid.NewString(), Name: "old", Scope: store.ScopeWrite, SecretHash: hash,
			CreatedBy: "system:test", CreatedAt: time.Now().Add(-48 * time.Hour), ExpiresAt: time.Now().Add(-time.Hour)})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	creds := map[string]cred{
		"nothing":              {},
		"acme admin session":   {cookie: h.cookie(t, "acme", boss.ID, "admin")},
		"acme member session":  {cookie: h.cookie(t, "acme", ann.ID, "admin")}, // the cookie's role is stale
		"suspended admin":      {cookie: h.cookie(t, "acme", gone.ID, "admin")},
		"globex admin session": {cookie: h.cookie(t, "globex", gboss.ID, "admin")},
		"acme read token":      {bearer: acmeRead},
		"acme write token":     {bearer: acmeWrite},
		"globex write token":   {bearer: globexWrite},
		"global write token":   {bearer: globalWrite},
		"global read token":    {bearer: globalRead},
		"revoked token":        {bearer: revoked},
		"expired token":        {bearer: expired},
		"unknown token":        {bearer: token.Prefix + strings.Repeat("A", 43)},
		"not a token":          {bearer: "hunter2"},
	}
	type action struct {
		method, path, body string
		reset              func()
	}
	reactivate := func(orgID, id string) func() {
		return func() { _, _ = h.core.Reactivate(ctx, admin.Operator("test"), orgID, id, "") }
	}
	actions := map[string]action{
		"read acme users":    {"GET", "/api/v1/organizations/acme/users", "", nil},
		"read acme user":     {"GET", "/api/v1/organizations/acme/users/" + ann.ID, "", nil},
		"suspend acme user":  {"POST", "/api/v1/organizations/acme/users/" + ann.ID + "/suspend", `{"reason":"matrix"}`, reactivate("acme", ann.ID)},
		"read globex users":  {"GET", "/api/v1/organizations/globex/users", "", nil},
		"suspend globex":     {"POST", "/api/v1/organizations/globex/users/" + gina.ID + "/suspend", "", reactivate("globex", gina.ID)},
		"create acme token":  {"POST", "/api/v1/tokens", `{"name":"m","organization":"acme","scope":"read"}`, nil},
		"create global tok.": {"POST", "/api/v1/tokens", `{"name":"m","scope":"read"}`, nil},
	}
	const (
		ok      = http.StatusOK
		created = http.StatusCreated
		no      = http.StatusForbidden
		who     = http.StatusUnauthorized
	)
	all := func(code int) map[string]int {
		m := map[string]int{}
		for a := range actions {
			m[a] = code
		}
		return m
	}
	want := map[string]map[string]int{
		"nothing":             all(who),
		"suspended admin":     all(who),
		"revoked token":       all(who),
		"expired token":       all(who),
		"unknown token":       all(who),
		"not a token":         all(who),
		"acme member session": all(no),
		"acme admin session": {"read acme users": ok, "read acme user": ok, "suspend acme user": ok, "read globex users": no,
			"suspend globex": no, "create acme token": created, "create global tok.": no},
		"globex admin session": {"read acme users": no, "read acme user": no, "suspend acme user": no, "read globex users": ok,
			"suspend globex": ok, "create acme token": no, "create global tok.": no},
		"acme read token": {"read acme users": ok, "read acme user": ok, "suspend acme user": no, "read globex users": no,
			"suspend globex": no, "create acme token": no, "create global tok.": no},
		"acme write token": {"read acme users": ok, "read acme user": ok, "suspend acme user": ok, "read globex users": no,
			"suspend globex": no, "create acme token": no, "create global tok.": no},
		"globex write token": {"read acme users": no, "read acme user": no, "suspend acme user": no, "read globex users": ok,
			"suspend globex": ok, "create acme token": no, "create global tok.": no},
		"global write token": {"read acme users": ok, "read acme user": ok, "suspend acme user": ok, "read globex users": ok,
			"suspend globex": ok, "create acme token": created, "create global tok.": created},
		"global read token": {"read acme users": ok, "read acme user": ok, "suspend acme user": no, "read globex users": ok,
			"suspend globex": no, "create acme token": no, "create global tok.": no},
	}
	for name, c := range creds {
		for an, a := range actions {
			t.Run(name+"/"+an, func(t *testing.T) {
				got := h.do(t, c, a.method, a.path, a.body)
				if a.reset != nil {
					defer a.reset()
				}
				exp, okk := want[name][an]
				if !okk {
					t.Fatalf("no expectation for %s / %s", name, an)
				}
				if got.status != exp {
					t.Fatalf("status %d, want %d: %s", got.status, exp, got.body)
				}
				if exp >= 400 {
					e := got.errorOf(t)
					wantCode := map[int]string{no: api.CodeForbidden, who: api.CodeUnauthorized}[exp]
					if e.Code != wantCode {
						t.Errorf("code %q, want %q", e.Code, wantCode)
					}
				}
			})
		}
	}
	// The organisations list shows each principal its own.
	for name, wantOrgs := range map[string][]string{"acme admin session": {"acme"}, "global read token": {"acme", "globex"}, "globex write token": {"globex"}} {
		got := h.do(t, creds[name], "GET", "/api/v1/organizations", "")
		var body struct{ Organizations []struct{ ID string } }
		_ = json.Unmarshal(got.body, &body)
		var ids []string
		for _, o := range body.Organizations {
			ids = append(ids, o.ID)
		}
		if got.status != ok || !slices.Equal(ids, wantOrgs) {
			t.Errorf("%s lists organisations %v (%d), want %v", name, ids, got.status, wantOrgs)
		}
	}
	if got := h.do(t, creds["acme member session"], "GET", "/api/v1/organizations", ""); got.status != no {
		t.Errorf("a member listing organisations: %d, want 403", got.status)
	}
	// A session whose person lost the admin role loses the API at once.
	if _, err := h.core.ChangeRole(ctx, admin.Operator("test"), "acme", boss.ID, "member"); err != nil {
		t.Fatal(err)
	}
	if got := h.do(t, creds["acme admin session"], "GET", "/api/v1/organizations/acme/users", ""); got.status != no {
		t.Errorf("a demoted admin's session: %d, want 403", got.status)
	}
}

// Every write route: its answer, its event in the outbox, its audit row
// naming the actor; and the same request again changes nothing twice.
func TestWrites(t *testing.T) {
	h := newHarness(t, 10, limits{failures: 1000, uses: -1})
	boss := h.admin(t, "acme", "boss")
	ann := h.login(t, "acme", "ann").User
	grace := h.login(t, "acme", "grace", "admin").RoleReview.ID
	mallory := h.login(t, "acme", "mallory", "admin").RoleReview.ID
	as := cred{cookie: h.cookie(t, "acme", boss.ID, "admin")}
	u := "/api/v1/organizations/acme/users/" + ann.ID
	rv := "/api/v1/organizations/acme/reviews/"
	type step struct {
		name, method, path, body string
		status                   int
		events                   []string
		action, target           string
		check                    func(t *testing.T, body map[string]any)
		again                    int // the repeat's status
	}
	userIs := func(status, role string, changed bool) func(*testing.T, map[string]any) {
		return func(t *testing.T, b map[string]any) {
			t.Helper()
			usr, _ := b["user"].(map[string]any)
			if usr["status"] != status || usr["role"] != role || b["changed"] != changed {
				t.Errorf("body %v, want %s/%s changed=%t", b, status, role, changed)
			}
		}
	}
	steps := []step{
		{"suspend", "POST", u + "/suspend", `{"reason":"on leave"}`, 200, []string{string(events.TypeUserSuspended)}, "user.suspend", ann.ID, userIs("suspended", "member", true), 200},
		{"reactivate", "POST", u + "/reactivate", ``, 200, []string{string(events.TypeUserReactivated)}, "user.reactivate", ann.ID, userIs("active", "member", true), 200},
		{"role", "PUT", u + "/role", `{"role":"viewer"}`, 200, []string{string(events.TypeUserRoleChanged)}, "user.change-role", ann.ID, userIs("active", "viewer", true), 200},
		{"link", "POST", u + "/identities", `{"connection_id":"idp","external_id":"ann-laptop"}`, 200, []string{string(events.TypeUserIdentityLinked)}, "identity.link", ann.ID, userIs("active", "viewer", true), 200},
		{"unlink", "DELETE", "/api/v1/organizations/acme/identities/idp/ann-laptop", ``, 200, []string{string(events.TypeUserIdentityUnlinked)}, "identity.unlink", ann.ID, userIs("active", "viewer", true), 404},
		{"deprovision", "POST", u + "/deprovision", `{"reason":"left"}`, 200, []string{string(events.TypeUserDeprovisioned)}, "user.deprovision", ann.ID, userIs("deprovisioned", "viewer", true), 200},
		{"approve", "POST", rv + grace + "/approve", ``, 200, []string{string(events.TypeUserRoleChanged), string(events.TypeRoleReviewDecided)}, "review.approve", grace, func(t *testing.T, b map[string]any) {
			if r, _ := b["review"].(map[string]any); r["status"] != "approved" || r["decided_by"] != "user:"+boss.ID {
				t.Errorf("approve: %v", b)
			}
		}, 409},
		{"deny", "POST", rv + mallory + "/deny", `{"reason":"not on the team"}`, 200, []string{string(events.TypeRoleReviewDecided)}, "review.deny", mallory, func(t *testing.T, b map[string]any) {
			if r, _ := b["review"].(map[string]any); r["status"] != "denied" || r["reason"] != "not on the team" {
				t.Errorf("deny: %v", b)
			}
		}, 409},
	}
	seq, _ := h.outbox(t, 0)
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			audits := h.count(t, `SELECT count(*) FROM admin_audit`)
			got := h.do(t, as, s.method, s.path, s.body)
			if got.status != s.status {
				t.Fatalf("status %d, want %d: %s", got.status, s.status, got.body)
			}
			s.check(t, got.json(t))
			var types []string
			seq, types = h.outbox(t, seq)
			if !slices.Equal(types, s.events) {
				t.Errorf("events %v, want %v", types, s.events)
			}
			if n := h.count(t, `SELECT count(*) FROM admin_audit WHERE action = $1 AND target = $2 AND actor_type = 'user' AND actor_id = $3 AND actor_name = $4`,
				s.action, s.target, boss.ID, boss.Email); n != 1 || h.count(t, `SELECT count(*) FROM admin_audit`) != audits+1 {
				t.Errorf("audit rows of %s by %s: %d, want 1", s.action, boss.ID, n)
			}
			again := h.do(t, as, s.method, s.path, s.body)
			if again.status != s.again {
				t.Errorf("repeat: status %d, want %d: %s", again.status, s.again, again.body)
			}
			if again.status == 200 && again.json(t)["changed"] != false {
				t.Errorf("repeat: %s, want changed false", again.body)
			}
			if again.status >= 400 {
				if code := again.errorOf(t).Code; code != map[int]string{404: api.CodeNotFound, 409: api.CodeConflict}[again.status] {
					t.Errorf("repeat: code %q", code)
				}
			}
			if _, types := h.outbox(t, seq); len(types) != 0 {
				t.Errorf("the repeat emitted %v", types)
			}
			if h.count(t, `SELECT count(*) FROM admin_audit`) != audits+1 {
				t.Errorf("the repeat wrote an audit row")
			}
		})
	}

	t.Run("tokens", func(t *testing.T) {
		body := `{"name":"ci","organization":"acme","scope":"write","expires_in":"720h"}`
		first := h.do(t, as, "POST", "/api/v1/tokens", body, "Idempotency-Key", "k-1")
		if first.status != http.StatusCreated {
			t.Fatalf("create: %d %s", first.status, first.body)
		}
		var c struct {
			Token  struct{ ID, Scope, OrganizationID string }
			Secret string
		}
		_ = json.Unmarshal(first.body, &c)
		if !token.Valid(c.Secret) || c.Token.Scope != "write" {
			t.Fatalf("created: %s", first.body)
		}
		if h.count(t, `SELECT count(*) FROM admin_audit WHERE action = 'token.create' AND target = $1 AND actor_id = $2`, c.Token.ID, boss.ID) != 1 {
			t.Error("no audit row for the token's creation")
		}
		again := h.do(t, as, "POST", "/api/v1/tokens", body, "Idempotency-Key", "k-1")
		if again.status != http.StatusCreated || !bytes.Equal(again.body, first.body) || again.header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry with the same key: %d %s", again.status, again.body)
		}
		if n := h.count(t, `SELECT count(*) FROM api_tokens WHERE name = 'ci'`); n != 1 {
			t.Errorf("%d tokens named ci, want 1", n)
		}
		other := h.do(t, as, "POST", "/api/v1/tokens", strings.Replace(body, "ci", "cd", 1), "Idempotency-Key", "k-1")
		if e := other.errorOf(t); other.status != 422 || e.Field != "Idempotency-Key" {
			t.Errorf("the key with another body: %d %+v", other.status, e)
		}
		// The new token works, and never shows its secret again.
		list := h.do(t, cred{bearer: c.Secret}, "GET", "/api/v1/organizations/acme/users", "")
		if list.status != 200 {
			t.Errorf("using the new token: %d %s", list.status, list.body)
		}
		tokens := h.do(t, as, "GET", "/api/v1/tokens", "")
		if tokens.status != 200 || strings.Contains(string(tokens.body), c.Secret) || strings.Contains(string(tokens.body), "secret") {
			t.Errorf("token list: %d %s", tokens.status, tokens.body)
		}
		rev := h.do(t, as, "DELETE", "/api/v1/tokens/"+c.Token.ID, "")
		if rev.status != 200 || rev.json(t)["changed"] != true {
			t.Fatalf("revoke: %d %s", rev.status, rev.body)
		}
		if h.count(t, `SELECT count(*) FROM admin_audit WHERE action = 'token.revoke' AND target = $1 AND actor_id = $2`, c.Token.ID, boss.ID) != 1 {
			t.Error("no audit row for the revocation")
		}
		rev = h.do(t, as, "DELETE", "/api/v1/tokens/"+c.Token.ID, "")
		if rev.status != 200 || rev.json(t)["changed"] != false {
			t.Errorf("revoke again: %d %s", rev.status, rev.body)
		}
		if h.count(t, `SELECT count(*) FROM admin_audit WHERE action = 'token.revoke'`) != 1 {
			t.Error("revoking again wrote an audit row")
		}
		if got := h.do(t, cred{bearer: c.Secret}, "GET", "/api/v1/organizations/acme/users", ""); got.status != 401 {
			t.Errorf("a revoked token: %d", got.status)
		}
	})
}

// Error bodies: a code, a message, the field; no secret, no stack.
func TestErrors(t *testing.T) {
	h := newHarness(t, 1, limits{failures: 1000, uses: -1})
	secret, _ := h.token(t, "", store.ScopeWrite)
	as := cred{bearer: secret}
	p1 := h.login(t, "acme", "p1").User.ID
	u := "/api/v1/organizations/acme/users/" + p1
	if got := h.do(t, as, "POST", u+"/deprovision", ""); got.status != 200 {
		t.Fatal(got.status, string(got.body))
	}
	h.login(t, "acme", "p2") // takes the only seat
	for _, c := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code, field              string
	}{
		{"unknown field", "PUT", u + "/role", `{"role":"viewer","rol":"x"}`, nil, 422, "invalid", "rol"},
		{"wrong type", "PUT", u + "/role", `{"role":7}`, nil, 422, "invalid", "role"},
		{"not JSON", "PUT", u + "/role", `{"role":`, nil, 422, "invalid", ""},
		{"two values", "PUT", u + "/role", `{"role":"viewer"}{}`, nil, 422, "invalid", ""},
		{"missing role", "PUT", u + "/role", `{}`, nil, 422, "invalid", "role"},
		{"unknown role", "PUT", u + "/role", `{"role":"owner"}`, nil, 422, "invalid", "role"},
		{"form body", "PUT", u + "/role", `{"role":"viewer"}`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "invalid", ""},
		{"too large", "POST", u + "/suspend", `{"reason":"` + strings.Repeat("x", api.MaxBody) + `"}`, nil, 413, "invalid", ""},
		{"deny without reason", "POST", "/api/v1/organizations/acme/reviews/" + uuid.NewString() + "/deny", `{"reason":" "}`, nil, 422, "invalid", "reason"},
		{"bad limit", "GET", "/api/v1/organizations/acme/users?limit=0", "", nil, 422, "invalid", "limit"},
		{"bad since", "GET", "/api/v1/organizations/acme/users?created_since=yesterday", "", nil, 422, "invalid", "created_since"},
		{"bad status", "GET", "/api/v1/organizations/acme/users?status=gone", "", nil, 422, "invalid", "status"},
		{"unknown parameter", "GET", "/api/v1/organizations/acme/users?serach=ann", "", nil, 422, "invalid", "serach"},
		{"bad cursor", "GET", "/api/v1/organizations/acme/decisions?cursor=nope", "", nil, 422, "invalid", "cursor"},
		{"unknown user", "GET", "/api/v1/organizations/acme/users/" + uuid.NewString(), "", nil, 404, "not_found", ""},
		{"unknown organisation", "GET", "/api/v1/organizations/initech", "", nil, 404, "not_found", ""},
		{"unknown route", "GET", "/api/v1/nope", "", nil, 404, "not_found", ""},
		{"no seat", "POST", u + "/reactivate", "", nil, 409, "no_seat", ""},
		{"token scope", "POST", "/api/v1/tokens", `{"name":"x","scope":"admin"}`, nil, 422, "invalid", "scope"},
		{"token lifetime", "POST", "/api/v1/tokens", `{"name":"x","scope":"read","expires_in":"87600h"}`, nil, 422, "invalid", "expires_at"},
		{"cross-site write", "POST", u + "/suspend", "", []string{"Sec-Fetch-Site", "cross-site"}, 403, "forbidden", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := h.do(t, as, c.method, c.path, c.body, c.headers...)
			if got.status != c.status {
				t.Fatalf("status %d, want %d: %s", got.status, c.status, got.body)
			}
			e := got.errorOf(t)
			if e.Code != c.code || e.Field != c.field || e.Message == "" {
				t.Errorf("error %+v, want code %q field %q", e, c.code, c.field)
			}
			if got.header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", got.header.Get("Content-Type"))
			}
			if s := string(got.body); strings.Contains(s, "goroutine") || strings.Contains(s, ".go:") || strings.Contains(s, secret) {
				t.Errorf("the error leaks: %s", s)
			}
		})
	}
	got := h.do(t, cred{}, "GET", "/api/v1/organizations", "")
	if got.status != 401 || got.errorOf(t).Code != "unauthorized" || !strings.HasPrefix(got.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no credentials: %d %v %s", got.status, got.header, got.body)
	}
}

// The store down: 503 unavailable, nothing of the database's address.
func TestUnavailable(t *testing.T) {
	s, err := postgres.Open(context.Background(), "postgres://jitprov:secretpw@127.0.0.1:1/jitprov?connect_timeout=1", postgres.Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(api.New(api.Config{Core: admin.New(s, nil), Authn: authn.New(authn.Config{Store: s})}).Handler())
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/organizations", nil)
	req.Header.Set("Authorization", "Bearer "+token.Prefix+strings.Repeat("A", 43))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(b), `"unavailable"`) || strings.Contains(string(b), "127.0.0.1") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("store down: %d %s", resp.StatusCode, b)
	}
}

// Failed token attempts are limited per client: 429 after N, with
// Retry-After, the good token included; the bucket refills with time.
// Successful uses are limited per token.
func TestTokenRateLimits(t *testing.T) {
	h := newHarness(t, 10, limits{failures: 3, uses: 5})
	good, _ := h.token(t, "acme", store.ScopeRead)
	bad := cred{bearer: token.Prefix + strings.Repeat("B", 43)}
	path := "/api/v1/organizations/acme/users"
	for i := range 3 {
		if got := h.do(t, bad, "GET", path, ""); got.status != 401 {
			t.Fatalf("failure %d: %d, want 401", i+1, got.status)
		}
	}
	for _, c := range []cred{bad, {bearer: good}} {
		got := h.do(t, c, "GET", path, "")
		if got.status != 429 || got.errorOf(t).Code != "rate_limited" || got.header.Get("Retry-After") == "" {
			t.Fatalf("after 3 failures: %d %s (Retry-After %q), want 429", got.status, got.body, got.header.Get("Retry-After"))
		}
	}
	h.clock.Advance(21 * time.Second) // one failure's worth refills (3 a minute)
	if got := h.do(t, cred{bearer: good}, "GET", path, ""); got.status != 200 {
		t.Fatalf("after waiting: %d %s", got.status, got.body)
	}
	// Uses: 5 a minute per token (one used above).
	for i := range 4 {
		if got := h.do(t, cred{bearer: good}, "GET", path, ""); got.status != 200 {
			t.Fatalf("use %d: %d", i+2, got.status)
		}
	}
	if got := h.do(t, cred{bearer: good}, "GET", path, ""); got.status != 429 {
		t.Errorf("the 6th use in a minute: %d, want 429", got.status)
	}
	h.clock.Advance(time.Minute)
	if got := h.do(t, cred{bearer: good}, "GET", path, ""); got.status != 200 {
		t.Errorf("a minute later: %d", got.status)
	}
}

// The dry run answers what a login would get and writes nothing; apply
// takes an operator and says first what it would do.
func TestDryRunAndApply(t *testing.T) {
	h := newHarness(t, 10, limits{failures: 1000, uses: -1})
	global, _ := h.token(t, "", store.ScopeWrite)
	acme, _ := h.token(t, "acme", store.ScopeRead)
	conns := h.do(t, cred{bearer: acme}, "GET", "/api/v1/organizations/acme/connections", "")
	if conns.status != 200 || !strings.Contains(string(conns.body), `"id":"idp"`) || !strings.Contains(string(conns.body), `"certificates":[]`) {
		t.Errorf("connections: %d %s", conns.status, conns.body)
	}
	if got := h.do(t, cred{bearer: acme}, "GET", "/api/v1/organizations/globex/connections", ""); got.status != 403 {
		t.Errorf("another organisation's connections: %d", got.status)
	}
	users, sent := h.count(t, `SELECT count(*) FROM users`), h.count(t, `SELECT count(*) FROM outbox`)
	got := h.do(t, cred{bearer: acme}, "POST", "/api/v1/organizations/acme/dry-run",
		`{"connection_id":"idp","protocol":"saml","external_id":"zed","email":"zed@acme.example","roles":["admin"]}`)
	var body struct{ Result events.ProvisioningResult }
	if err := json.Unmarshal(got.body, &body); err != nil || got.status != 200 || body.Result.Outcome != events.OutcomeCreated || body.Result.RoleReview == nil {
		t.Fatalf("dry run: %d %s", got.status, got.body)
	}
	if h.count(t, `SELECT count(*) FROM users`) != users || h.count(t, `SELECT count(*) FROM outbox`) != sent {
		t.Error("the dry run wrote")
	}
	if got := h.do(t, cred{bearer: acme}, "POST", "/api/v1/organizations/globex/dry-run", `{"connection_id":"idp","protocol":"saml","external_id":"zed"}`); got.status != 403 {
		t.Errorf("a dry run in another organisation: %d", got.status)
	}
	file := `organizations:
  - id: acme
    name: Org acme
    max_seats: 20
    roles: [viewer, member, admin]
    default_role: member
    jit_role_ceiling: member
    connections:
      - id: idp
        protocol: saml
        settings: {idp_metadata_url: "https://idp.example/metadata", sp_entity_id: "https://sso.example/acme"}
`
	post := func(c cred, query string) response {
		return h.do(t, c, "POST", "/api/v1/apply"+query, file, "Content-Type", "application/yaml")
	}
	if got := post(cred{bearer: acme}, "?dry_run=true"); got.status != 403 {
		t.Errorf("apply by an organisation's token: %d %s", got.status, got.body)
	}
	dry := post(cred{bearer: global}, "?dry_run=true")
	if dry.status != 200 || !strings.Contains(string(dry.body), `"dry_run":true`) || !strings.Contains(string(dry.body), `"action":"update"`) {
		t.Fatalf("apply --dry-run: %d %s", dry.status, dry.body)
	}
	if h.count(t, `SELECT max_seats FROM organizations WHERE id = 'acme'`) != 10 {
		t.Error("the dry run applied")
	}
	if got := post(cred{bearer: global}, ""); got.status != 200 || h.count(t, `SELECT max_seats FROM organizations WHERE id = 'acme'`) != 20 {
		t.Errorf("apply: %d %s", got.status, got.body)
	}
	bad := h.do(t, cred{bearer: global}, "POST", "/api/v1/apply", "organizations: []\n", "Content-Type", "application/yaml")
	if bad.status != 422 || bad.errorOf(t).Code != "invalid" {
		t.Errorf("an invalid file: %d %s", bad.status, bad.body)
	}
}
