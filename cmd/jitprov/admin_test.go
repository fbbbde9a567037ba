package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/api"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/client"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/cli"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// adminEnv is the real admin API (its handler, the core, token
// authentication) on a real Postgres, served over HTTP, with a global
// write token created through the store, for the CLI to call.
type adminEnv struct {
	s     *postgres.Store
	core  *admin.Core
	dec   *provisioner.Decider
	srv   *httptest.Server
	token string // global, write
}

func testOrg(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Org " + id, MaxSeats: seats, Roles: []string{"viewer", "member", "admin"},
		DefaultRole: "member", JITRoleCeiling: "member", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}
}

func newAdminEnv(t *testing.T) *adminEnv {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{testOrg("acme", 3), testOrg("globex", 3)}, []store.Connection{
		{OrganizationID: "acme", ID: "idp", Protocol: "saml"}, {OrganizationID: "globex", ID: "idp", Protocol: "saml"},
	}); err != nil {
		t.Fatal(err)
	}
	h := &adminEnv{s: s, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t))}
	auth := authn.New(authn.Config{Store: s, UsesPerMinute: -1, Failures: token.NewLimiter(1000, time.Minute, nil)})
	h.srv = httptest.NewServer(api.New(api.Config{Core: h.core, Authn: auth, Log: testenv.Logger(t)}).Handler())
	t.Cleanup(h.srv.Close)
	h.token = h.newToken(t, "", "write")
	return h
}

// newToken creates a token through the core, as `admin token create` does.
func (h *adminEnv) newToken(t *testing.T, org, scope string) string {
	t.Helper()
	c, err := h.core.CreateToken(t.Context(), admin.Operator("test"), admin.NewToken{Name: "cli-" + org + "-" + scope + "-" + uuid.NewString()[:8],
		OrganizationID: org, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return c.Secret
}

// login provisions a person through the pipeline's decision.
func (h *adminEnv) login(t *testing.T, orgID, ext string, roles ...string) events.ProvisioningResult {
	t.Helper()
	res, err := h.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: orgID, ConnectionID: "idp",
		Protocol: events.ProtocolSAML, ExternalID: ext, Email: ext + "@" + orgID + ".example", EmailVerified: true,
		GivenName: strings.ToUpper(ext[:1]) + ext[1:], Roles: roles, AuthenticatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatalf("login %s: %v", ext, err)
	}
	return res
}

type ran struct {
	stdout, stderr string
	code           int
	err            error
}

// jitprov runs the CLI with the server and token in the environment, as
// an operator's shell has them.
func (h *adminEnv) jitprov(t *testing.T, args ...string) ran {
	t.Helper()
	return h.jitprovAs(t, h.token, args...)
}

func (h *adminEnv) jitprovAs(t *testing.T, tok string, args ...string) ran {
	t.Helper()
	env := map[string]string{"JITPROV_ADMIN_URL": h.srv.URL, "JITPROV_TOKEN": tok}
	return runCLI(t, env, args...)
}

func runCLI(t *testing.T, env map[string]string, args ...string) ran {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		errOut.WriteString("jitprov: " + err.Error() + "\n")
	}
	return ran{stdout: out.String(), stderr: errOut.String(), code: cli.ExitCode(err), err: err}
}

func (r ran) must(t *testing.T, args ...string) ran {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("jitprov %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// Every read command, in table and in JSON and YAML: the table has its
// header and the row expected; JSON is the API's answer; YAML the same
// data.
func TestCLIReads(t *testing.T) {
	h := newAdminEnv(t)
	ann := h.login(t, "acme", "ann").User
	grace := h.login(t, "acme", "grace", "admin").RoleReview
	if grace == nil {
		t.Fatal("grace's login opened no review")
	}
	h.jitprov(t, "users", "suspend", "acme", ann.ID, "--reason", "on leave").must(t)
	identity := filepath.Join(t.TempDir(), "identity.json")
	if err := os.WriteFile(identity, []byte(`{"connection_id":"idp","protocol":"saml","external_id":"zed","email":"zed@acme.example","email_verified":true}`), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		args      []string
		table     []string // in the table output
		jsonKey   string   // a key of the JSON answer
		jsonCheck func(t *testing.T, v map[string]any)
	}{
		{[]string{"orgs", "list"}, []string{"ID  ", "SEATS", "acme", "globex", "2/3"}, "organizations", nil},
		{[]string{"orgs", "get", "acme"}, []string{"Seats:", "2/3", "Connections:", "idp", "saml"}, "connections", func(t *testing.T, v map[string]any) {
			if v["id"] != "acme" || v["seats_used"] != 2.0 {
				t.Errorf("orgs get: %v", v)
			}
		}},
		{[]string{"connections", "list", "acme"}, []string{"PROTOCOL", "idp", "saml"}, "connections", nil},
		{[]string{"users", "list", "acme"}, []string{"EMAIL", "ann@acme.example", "suspended", "grace@acme.example", "active"}, "users", func(t *testing.T, v map[string]any) {
			if us, _ := v["users"].([]any); len(us) != 2 {
				t.Errorf("users list: %v", v)
			}
		}},
		{[]string{"users", "list", "--org", "acme", "--status", "suspended"}, []string{"ann@acme.example"}, "users", func(t *testing.T, v map[string]any) {
			if us, _ := v["users"].([]any); len(us) != 1 {
				t.Errorf("users list --status suspended: %v", v)
			}
		}},
		{[]string{"users", "list", "acme", "--search", "grace", "--limit", "1", "--all"}, []string{"grace@acme.example"}, "users", nil},
		{[]string{"users", "get", "acme", ann.ID}, []string{"Status:", "suspended", "Identities:", "idp", "ann", "Admin actions:", "user.suspend"}, "identities", func(t *testing.T, v map[string]any) {
			if u, _ := v["user"].(map[string]any); u["status"] != "suspended" {
				t.Errorf("users get: %v", v)
			}
		}},
		{[]string{"reviews", "list", "acme"}, []string{"REQUESTED ROLE", grace.ID, "admin", "pending"}, "reviews", nil},
		{[]string{"reviews", "list", "acme", "--status", "approved"}, nil, "reviews", func(t *testing.T, v map[string]any) {
			if rs, _ := v["reviews"].([]any); len(rs) != 0 {
				t.Errorf("no review is approved: %v", v)
			}
		}},
		{[]string{"audit", "acme"}, []string{"ACTION", "user.suspend", "token:", ann.ID, "on leave"}, "entries", nil},
		{[]string{"audit", "acme", "--target", "nobody"}, nil, "entries", nil},
		{[]string{"decisions", "acme"}, []string{"OUTCOME", "created", "ann", "grace"}, "decisions", nil},
		{[]string{"decisions", "acme", "--external-id", "grace"}, []string{"grace"}, "decisions", func(t *testing.T, v map[string]any) {
			if ds, _ := v["decisions"].([]any); len(ds) != 1 {
				t.Errorf("decisions --external-id grace: %v", v)
			}
		}},
		{[]string{"dry-run", "acme", "-f", identity}, []string{"Outcome:", "created", "Role:", "member", "nothing was written"}, "result", func(t *testing.T, v map[string]any) {
			if r, _ := v["result"].(map[string]any); r["outcome"] != "created" {
				t.Errorf("dry-run: %v", v)
			}
		}},
		{[]string{"tokens", "list"}, []string{"SCOPE", "(global)", "write", "active"}, "tokens", nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := h.jitprov(t, tc.args...).must(t, tc.args...)
			for _, want := range tc.table {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("table lacks %q:\n%s", want, r.stdout)
				}
			}
			if strings.Contains(r.stdout, h.token) || strings.Contains(r.stderr, h.token) {
				t.Error("the output shows the token")
			}
			js := h.jitprov(t, append(tc.args, "-o", "json")...).must(t, tc.args...)
			var v map[string]any
			if err := json.Unmarshal([]byte(js.stdout), &v); err != nil {
				t.Fatalf("-o json: %v\n%s", err, js.stdout)
			}
			if _, ok := v[tc.jsonKey]; !ok {
				t.Errorf("-o json lacks %q: %s", tc.jsonKey, js.stdout)
			}
			if tc.jsonCheck != nil {
				tc.jsonCheck(t, v)
			}
			ym := h.jitprov(t, append(tc.args, "--output=yaml")...).must(t, tc.args...)
			var y map[string]any
			if err := yaml.Unmarshal([]byte(ym.stdout), &y); err != nil {
				t.Fatalf("-o yaml: %v\n%s", err, ym.stdout)
			}
			if _, ok := y[tc.jsonKey]; !ok {
				t.Errorf("-o yaml lacks %q: %s", tc.jsonKey, ym.stdout)
			}
		})
	}

	// Empty lists say so on stderr and keep stdout for data.
	if r := h.jitprov(t, "reviews", "list", "globex").must(t); r.stdout != "" || !strings.Contains(r.stderr, "No role reviews match") {
		t.Errorf("empty list: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// The paged lists: a page ends with the cursor of the next on stderr
// (and in the data), the cursor gives the next page, --all every page,
// and an empty list says so on stderr with nothing on stdout.
func TestCLIPages(t *testing.T) {
	h := newAdminEnv(t)
	ann := h.login(t, "acme", "ann").User
	h.login(t, "acme", "grace")
	h.jitprov(t, "users", "suspend", "acme", ann.ID, "--reason", "on leave").must(t)
	h.jitprov(t, "users", "reactivate", "acme", ann.ID).must(t)

	cursor := regexp.MustCompile(`add --cursor (\S+), or --all`)
	for _, tc := range []struct {
		list []string // the command
		key  string   // its items in the data
		noun string   // in the note on the next page
		none []string // a query that matches nothing
		note string   // what it says then
	}{
		{[]string{"users", "list", "acme"}, "users", "users", []string{"--search", "nobody"}, "No users match."},
		{[]string{"decisions", "acme"}, "decisions", "decisions", []string{"--external-id", "nobody"}, "No decisions match."},
		{[]string{"audit", "acme"}, "entries", "entries", []string{"--target", "nobody"}, "No admin actions match."},
		{[]string{"conflicts", "acme"}, "conflicts", "conflicts", []string{"--user", ann.ID}, "No overruled changes match."},
	} {
		t.Run(strings.Join(tc.list, " "), func(t *testing.T) {
			items := func(r ran) ([]any, string) {
				t.Helper()
				var v map[string]any
				if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
					t.Fatalf("-o json: %v\n%s", err, r.stdout)
				}
				got, _ := v[tc.key].([]any)
				next, _ := v["next"].(string)
				return got, next
			}
			all, next := items(h.jitprov(t, append(tc.list, "--all", "-o", "json")...).must(t))
			if next != "" {
				t.Errorf("--all: next %q, want none after the last page", next)
			}
			if tc.key != "conflicts" { // nobody's fields are owned here
				if len(all) != 2 {
					t.Fatalf("--all: %d %s, want 2", len(all), tc.key)
				}
				first := h.jitprov(t, append(tc.list, "--limit", "1")...).must(t)
				m := cursor.FindStringSubmatch(first.stderr)
				if m == nil || !strings.Contains(first.stderr, "More "+tc.noun+":") || strings.Contains(first.stdout, "--cursor") {
					t.Fatalf("a first page of 1: stderr %q, want the next page's cursor there (not on stdout)", first.stderr)
				}
				one, next := items(h.jitprov(t, append(tc.list, "--limit", "1", "-o", "json")...).must(t))
				if len(one) != 1 || next != m[1] {
					t.Errorf("a first page of 1 as data: %d items, next %q; the table said %q", len(one), next, m[1])
				}
				second, _ := items(h.jitprov(t, append(tc.list, "--limit", "1", "--cursor", m[1], "-o", "json")...).must(t))
				if len(second) != 1 || reflect.DeepEqual(second[0], one[0]) || !reflect.DeepEqual(second[0], all[1]) {
					t.Errorf("the page at the cursor: %v, want the second of %v", second, all)
				}
			}
			r := h.jitprov(t, append(tc.list, tc.none...)...).must(t)
			if r.stdout != "" || strings.TrimSpace(r.stderr) != tc.note {
				t.Errorf("nothing matches: stdout %q, stderr %q, want only %q on stderr", r.stdout, r.stderr, tc.note)
			}
		})
	}
}

// Writes: what they print, that a repeat changes nothing (exit 0), and
// that the store has what they said.
func TestCLIWrites(t *testing.T) {
	h := newAdminEnv(t)
	bob := h.login(t, "acme", "bob").User
	rv1 := h.login(t, "acme", "grace", "admin").RoleReview.ID
	rv2 := h.login(t, "acme", "mallory", "admin").RoleReview.ID

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"users", "suspend", "acme", bob.ID, "--reason", "laptop stolen"}, "suspended (status suspended, role member)"},
		{[]string{"users", "suspend", "acme", bob.ID}, "unchanged (status suspended"},
		{[]string{"users", "reactivate", "acme", bob.ID}, "reactivated (status active"},
		{[]string{"users", "set-role", "acme", bob.ID, "viewer"}, "changed, role viewer"},
		{[]string{"users", "set-role", "acme", bob.ID, "viewer"}, "unchanged, role viewer"},
		{[]string{"users", "unlink", "acme", "idp", "bob"}, "identity idp/bob unlinked"},
		{[]string{"users", "link", "acme", bob.ID, "idp", "bob"}, "identity idp/bob linked"},
		{[]string{"reviews", "approve", "acme", rv1}, "now has role admin"},
		{[]string{"reviews", "deny", "acme", rv2, "--reason", "not on the team"}, "keeps role member"},
		{[]string{"users", "deprovision", "acme", bob.ID}, "deprovisioned (status deprovisioned"},
	} {
		r := h.jitprov(t, tc.args...).must(t, tc.args...)
		if !strings.Contains(r.stdout, tc.want) {
			t.Errorf("jitprov %q: %q, want %q", tc.args, r.stdout, tc.want)
		}
	}
	d, err := h.core.User(t.Context(), admin.Operator("test"), "acme", bob.ID)
	u := d.User
	if err != nil || u.Status != store.StatusDeprovisioned || u.Role != "viewer" {
		t.Errorf("bob in the store: %+v %v", u, err)
	}

	// JSON of a write: the API's answer, changed false on a repeat.
	var res client.UserResult
	r := h.jitprov(t, "users", "deprovision", "acme", bob.ID, "-o", "json").must(t)
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Changed || res.User.Status != "deprovisioned" {
		t.Errorf("deprovision again -o json: %s %v", r.stdout, err)
	}

	// Tokens: created (the secret printed once, the note on stderr), listed, revoked, revoked again.
	r = h.jitprov(t, "tokens", "create", "--name", "ci", "--scope", "read", "--org", "acme", "--expires", "24h", "-o", "json").must(t)
	var ct client.CreatedToken
	if err := json.Unmarshal([]byte(r.stdout), &ct); err != nil || !strings.HasPrefix(ct.Secret, "jpt_") || ct.Token.OrganizationID != "acme" {
		t.Fatalf("tokens create: %s %v", r.stdout, err)
	}
	if !strings.Contains(r.stderr, "shown this once") {
		t.Errorf("tokens create's note: %q", r.stderr)
	}
	if r := h.jitprovAs(t, ct.Secret, "users", "list", "acme").must(t); !strings.Contains(r.stdout, "bob@acme.example") {
		t.Errorf("the new token reads acme: %s", r.stdout)
	}
	if r := h.jitprov(t, "tokens", "list", "--org", "acme").must(t); !strings.Contains(r.stdout, ct.Token.ID) || strings.Contains(r.stdout, ct.Secret) {
		t.Errorf("tokens list: %s", r.stdout)
	}
	if r := h.jitprov(t, "tokens", "revoke", ct.Token.ID).must(t); !strings.Contains(r.stdout, ": revoked") {
		t.Errorf("tokens revoke: %s", r.stdout)
	}
	if r := h.jitprov(t, "tokens", "revoke", ct.Token.ID).must(t); !strings.Contains(r.stdout, "revoked already: unchanged") {
		t.Errorf("tokens revoke again: %s", r.stdout)
	}
}

// Exit statuses scripts rely on, and errors that say what to do.
func TestCLIExitCodes(t *testing.T) {
	h := newAdminEnv(t)
	ann := h.login(t, "acme", "ann").User
	rv := h.login(t, "acme", "grace", "admin").RoleReview.ID
	h.jitprov(t, "reviews", "approve", "acme", rv).must(t)
	readAcme := h.newToken(t, "acme", "read")
	globexToken := h.newToken(t, "globex", "write")
	// Two people fill acme's three seats (ann, grace, and carl); a
	// deprovisioned one cannot come back.
	carl := h.login(t, "acme", "carl").User
	h.jitprov(t, "users", "deprovision", "acme", carl.ID).must(t)
	h.login(t, "acme", "dora")

	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()
	bogus := "jpt_" + strings.Repeat("A", 43)

	for _, tc := range []struct {
		name  string
		tok   string
		env   map[string]string // instead of the harness's
		args  []string
		code  int
		words []string // in the error
	}{
		{"no command of a noun", "", nil, []string{"users"}, exitUsage, []string{"list, get"}},
		{"unknown command", "", nil, []string{"users", "frobnicate", "acme"}, exitUsage, []string{`unknown command "users frobnicate"`}},
		{"missing argument", "", nil, []string{"users", "get", "acme"}, exitUsage, []string{"takes ORG USER", "usage: jitprov users get ORG USER"}},
		{"bad flag", "", nil, []string{"users", "list", "acme", "--colour"}, exitUsage, []string{"flag provided but not defined: -colour"}},
		{"bad output", "", nil, []string{"orgs", "list", "-o", "xml"}, exitUsage, []string{"want table, json or yaml"}},
		{"deny without reason", "", nil, []string{"reviews", "deny", "acme", rv}, exitUsage, []string{"--reason"}},
		{"invalid value", "", nil, []string{"users", "list", "acme", "--status", "sleeping"}, exitUsage, []string{`(field "status")`, "want one of active"}},
		{"unknown role", "", nil, []string{"users", "set-role", "acme", ann.ID, "emperor"}, exitUsage, []string{"emperor", "role"}},
		{"no server", "", map[string]string{"JITPROV_TOKEN": "x"}, []string{"orgs", "list"}, exitUsage, []string{"--server", "JITPROV_ADMIN_URL"}},
		{"org not found", "", nil, []string{"orgs", "get", "initech"}, exitNotFound, []string{"initech", "jitprov orgs list"}},
		{"user not found", "", nil, []string{"users", "get", "acme", uuid.NewString()}, exitNotFound, []string{"not"}},
		{"review not found", "", nil, []string{"reviews", "approve", "acme", uuid.NewString()}, exitNotFound, nil},
		{"unlink nobody's", "", nil, []string{"users", "unlink", "acme", "idp", "nobody"}, exitNotFound, nil},
		{"no token", "", map[string]string{"JITPROV_ADMIN_URL": h.srv.URL}, []string{"orgs", "list"}, exitDenied, []string{"JITPROV_TOKEN", "jitprov tokens create"}},
		{"unknown token", bogus, nil, []string{"orgs", "list"}, exitDenied, []string{"unknown, expired or revoked", "jitprov tokens create"}},
		{"read token writes", readAcme, nil, []string{"users", "suspend", "acme", ann.ID}, exitDenied, []string{"may read, not change", "write token"}},
		{"other organisation", globexToken, nil, []string{"users", "list", "acme"}, exitDenied, []string{"globex"}},
		{"apply takes a global token", globexToken, nil, []string{"apply", "-f", "../../examples/organizations.yaml", "--dry-run"}, exitDenied, []string{"operator"}},
		{"approve twice", "", nil, []string{"reviews", "approve", "acme", rv}, exitConflict, nil},
		{"no seat", "", nil, []string{"users", "reactivate", "acme", carl.ID}, exitConflict, []string{"no free seat"}},
		{"unreachable", "", map[string]string{"JITPROV_ADMIN_URL": downURL, "JITPROV_TOKEN": "x"}, []string{"orgs", "list"}, exitUnavailable, []string{"cannot reach the admin API", "--server"}},
		{"not the admin API", "", map[string]string{"JITPROV_ADMIN_URL": h.srv.URL + "/elsewhere", "JITPROV_TOKEN": "x"}, []string{"orgs", "list"}, exitInternal, []string{"without the admin API's JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r ran
			switch {
			case tc.env != nil:
				r = runCLI(t, tc.env, tc.args...)
			case tc.tok != "":
				r = h.jitprovAs(t, tc.tok, tc.args...)
			default:
				r = h.jitprov(t, tc.args...)
			}
			if r.code != tc.code {
				t.Errorf("exit %d, want %d: %v", r.code, tc.code, r.err)
			}
			for _, w := range tc.words {
				if r.err == nil || !strings.Contains(r.err.Error(), w) {
					t.Errorf("error %v, want it to say %q", r.err, w)
				}
			}
			for _, secret := range []string{h.token, readAcme, globexToken, bogus} {
				if strings.Contains(r.stdout+r.stderr, secret) {
					t.Error("the output shows a token")
				}
			}
		})
	}

	// The store down: the API answers 503, the CLI exits 5.
	s, err := postgres.Open(context.Background(), "postgres://jitprov:secretpw@127.0.0.1:1/jitprov?connect_timeout=1", postgres.Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(api.New(api.Config{Core: admin.New(s, nil), Authn: authn.New(authn.Config{Store: s})}).Handler())
	defer srv.Close()
	r := runCLI(t, map[string]string{"JITPROV_ADMIN_URL": srv.URL, "JITPROV_TOKEN": bogus}, "orgs", "list")
	if r.code != exitUnavailable || !strings.Contains(r.err.Error(), "try again") {
		t.Errorf("store down: exit %d, %v", r.code, r.err)
	}
}

const orgsV1 = `organizations:
  - id: acme
    name: Acme Corp
    max_seats: 50
    roles: [viewer, member, admin]
    default_role: member
    connections:
      - id: okta
        protocol: saml
        settings:
          idp_metadata_url: https://acme.okta.example/metadata
          sp_entity_id: https://sso.example.com/saml/acme/okta
  - id: tiny
    name: Tiny Ltd
    max_seats: 3
`

// v2: acme grows and gains a connection, initech is new, tiny is left out
// (kept: apply never deletes), okta is as it was.
const orgsV2 = `organizations:
  - id: acme
    name: Acme Corporation
    max_seats: 60
    roles: [viewer, member, admin]
    default_role: member
    connections:
      - id: okta
        protocol: saml
        settings:
          idp_metadata_url: https://acme.okta.example/metadata
          sp_entity_id: https://sso.example.com/saml/acme/okta
      - id: entra
        protocol: saml
        settings:
          idp_metadata_url: https://login.entra.example/acme/metadata
          sp_entity_id: https://sso.example.com/saml/acme/entra
  - id: initech
    name: Initech
    max_seats: 10
`

// apply --dry-run then apply on a changed file: the difference printed is
// what the apply does, as the store shows afterwards.
func TestCLIApply(t *testing.T) {
	h := newAdminEnv(t)
	dir := t.TempDir()
	v1, v2 := filepath.Join(dir, "v1.yaml"), filepath.Join(dir, "organizations.yaml")
	os.WriteFile(v1, []byte(orgsV1), 0o600)
	os.WriteFile(v2, []byte(orgsV2), 0o600)
	h.jitprov(t, "apply", "-f", v1).must(t)
	before := snapshot(t, h.s)

	applyJSON := func(args ...string) client.ApplyResult {
		t.Helper()
		r := h.jitprov(t, append(args, "-o", "json")...).must(t, args...)
		var res client.ApplyResult
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
			t.Fatalf("%s: %v", r.stdout, err)
		}
		return res
	}
	action := func(res client.ApplyResult) map[string]string {
		out := map[string]string{}
		for _, c := range res.Changes {
			out[c.Organization+"/"+c.Connection] = c.Action + " " + strings.Join(c.Fields, ",")
		}
		return out
	}

	// The dry run's table says what would happen, and writes nothing.
	r := h.jitprov(t, "apply", "-f", v2, "--dry-run").must(t)
	for _, want := range []string{"would update", "name, max_seats", "would create", "entra", "initech", "kept", "tiny",
		"dry run, nothing written", "2 to create, 1 to update, 1 unchanged, 4 kept", "Apply never deletes", "Apply it with: jitprov apply -f " + v2} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run's table lacks %q:\n%s", want, r.stdout)
		}
	}
	dry := applyJSON("apply", "-f", v2, "--dry-run")
	if !dry.DryRun {
		t.Error("dry_run false in a dry run")
	}
	if after := snapshot(t, h.s); !equalJSON(before, after) {
		t.Errorf("the dry run wrote:\nbefore %s\nafter  %s", before, after)
	}
	want := map[string]string{"acme/": "update name,max_seats", "acme/okta": "unchanged ", "acme/entra": "create ",
		"initech/": "create ", "tiny/": "kept ", "globex/": "kept ", "globex/idp": "kept ", "acme/idp": "kept "}
	if got := action(dry); !equalJSON(got, want) {
		t.Errorf("dry run: %v\nwant %v", got, want)
	}

	// Apply: the same changes, and the store has them.
	applied := applyJSON("apply", "-f", v2)
	if applied.DryRun || !equalJSON(action(applied), action(dry)) {
		t.Errorf("apply did %v, the dry run said %v", action(applied), action(dry))
	}
	orgs, err := h.s.Organizations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.Organization{}
	for _, o := range orgs {
		byID[o.ID] = o
	}
	if a := byID["acme"]; a.Name != "Acme Corporation" || a.MaxSeats != 60 {
		t.Errorf("acme after apply: %+v", a)
	}
	if _, ok := byID["initech"]; !ok {
		t.Error("initech was not created")
	}
	if _, ok := byID["tiny"]; !ok {
		t.Error("tiny was deleted")
	}
	conns, err := h.s.Connections(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(conns, func(c store.Connection) bool { return c.OrganizationID == "acme" && c.ID == "entra" }) {
		t.Errorf("entra was not created: %+v", conns)
	}
	// Applied, the file makes no difference any more.
	for k, v := range action(applyJSON("apply", "-f", v2, "--dry-run")) {
		if !strings.HasPrefix(v, "unchanged") && !strings.HasPrefix(v, "kept") {
			t.Errorf("after apply, %s: %s", k, v)
		}
	}
	// A file's problems, with the operator's file name and line, before anything is sent.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("organizations:\n  - id: acme\n    max_seats: many\n"), 0o600)
	r = h.jitprov(t, "apply", "-f", bad, "--dry-run")
	if r.code != exitUsage || !strings.Contains(r.err.Error(), bad+":3") || !strings.Contains(r.err.Error(), "nothing was sent") {
		t.Errorf("bad file: exit %d %v", r.code, r.err)
	}
	if r := h.jitprov(t, "apply", "--dry-run"); r.code != exitUsage || !strings.Contains(r.err.Error(), "-f FILE") {
		t.Errorf("no file: exit %d %v", r.code, r.err)
	}
}

// snapshot is the organisations and connections in the store, as JSON.
func snapshot(t *testing.T, s *postgres.Store) string {
	t.Helper()
	orgs, err := s.Organizations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conns, err := s.Connections(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal([]any{orgs, conns})
	return string(raw)
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func flagSetFor() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// Flags go anywhere on the line; "--" ends them; help is there for each.
func TestCLICommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		out  string
	}{
		{[]string{"acme", "-o", "json", "u1"}, []string{"acme", "u1"}, "json"},
		{[]string{"-o=yaml", "acme", "u1"}, []string{"acme", "u1"}, "yaml"},
		{[]string{"acme", "--", "-u1"}, []string{"acme", "-u1"}, "table"},
	} {
		fs := flagSetFor()
		out := fs.String("o", "table", "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *out != tc.out {
			t.Errorf("parse %q: %q -o %s, %v", tc.args, pos, *out, err)
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"help"}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("jitprov help lacks %q", c.name)
		}
	}
	for _, args := range [][]string{{"help", "users", "list"}, {"users", "list", "--help"}} {
		out.Reset()
		if err := run(t.Context(), args, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.Contains(out.String(), "usage: jitprov users list ORG") || !strings.Contains(out.String(), "-created-by") ||
			!strings.Contains(out.String(), "Exit status") {
			t.Errorf("%q:\n%s", args, out.String())
		}
	}
}

// Held sign-ups from the CLI: listed with --status held, approved (exit 4
// with the reason when no seat is free), denied only with a reason.
func TestCLIHeldSignups(t *testing.T) {
	h := newAdminEnv(t)
	o := testOrg("acme", 1)
	o.WhenFull = store.WhenFullHold
	if err := h.s.ApplyOrganizations(t.Context(), []store.Organization{o}, nil); err != nil {
		t.Fatal(err)
	}
	ann := h.login(t, "acme", "ann").User
	bea := h.login(t, "acme", "bea")
	cy := h.login(t, "acme", "cy")
	if bea.Outcome != events.OutcomeHeld || cy.Outcome != events.OutcomeHeld {
		t.Fatalf("logins in a full organisation: %s, %s; want held", bea.Outcome, cy.Outcome)
	}
	list := h.jitprov(t, "users", "list", "acme", "--status", "held").must(t)
	if !strings.Contains(list.stdout, "bea@acme.example") || !strings.Contains(list.stdout, "cy@acme.example") || strings.Contains(list.stdout, "ann@") {
		t.Errorf("users list --status held: %q", list.stdout)
	}
	if r := h.jitprov(t, "users", "approve", "acme", bea.User.ID); r.code != exitConflict || !strings.Contains(r.stderr, "no free seat") {
		t.Errorf("approve in a full organisation: exit %d %q, want %d saying there is no free seat", r.code, r.stderr, exitConflict)
	}
	if r := h.jitprov(t, "users", "deny", "acme", cy.User.ID); r.code != exitUsage || !strings.Contains(r.stderr, "--reason") {
		t.Errorf("deny without a reason: exit %d %q", r.code, r.stderr)
	}
	if r := h.jitprov(t, "users", "deny", "acme", cy.User.ID, "--reason", "not ours").must(t); !strings.Contains(r.stdout, "denied (status deprovisioned") {
		t.Errorf("deny: %q", r.stdout)
	}
	h.jitprov(t, "users", "deprovision", "acme", ann.ID).must(t)
	if r := h.jitprov(t, "users", "approve", "acme", bea.User.ID).must(t); !strings.Contains(r.stdout, "approved (status active") {
		t.Errorf("approve: %q", r.stdout)
	}
	if r := h.jitprov(t, "users", "approve", "acme", bea.User.ID); r.code != exitConflict {
		t.Errorf("approve twice: exit %d, want %d", r.code, exitConflict)
	}
}

// `jitprov conflicts` and `users get` show the changes the fields' owners
// kept out.
func TestCLIConflicts(t *testing.T) {
	h := newAdminEnv(t)
	ann := h.login(t, "acme", "ann").User
	acme := testOrg("acme", 3)
	acme.FieldOwners = map[string]string{store.FieldRole: store.OwnerApp}
	if err := h.s.ApplyOrganizations(t.Context(), []store.Organization{acme}, nil); err != nil {
		t.Fatal(err)
	}
	if res := h.login(t, "acme", "ann", "viewer"); res.User.Role != "member" {
		t.Fatalf("ann's role %q, want member kept", res.User.Role)
	}
	r := h.jitprov(t, "conflicts", "acme").must(t)
	for _, want := range []string{"FIELD", ann.ID, "role", "login", "viewer", "member", "app"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("conflicts lacks %q:\n%s", want, r.stdout)
		}
	}
	r = h.jitprov(t, "conflicts", "acme", "--field", "email").must(t)
	if !strings.Contains(r.stderr+r.stdout, "No overruled changes match.") {
		t.Errorf("conflicts --field email: %q %q", r.stdout, r.stderr)
	}
	r = h.jitprov(t, "conflicts", "acme", "--user", ann.ID, "-o", "json").must(t)
	if !strings.Contains(r.stdout, `"conflicts"`) || !strings.Contains(r.stdout, `"owner":"app"`) && !strings.Contains(r.stdout, `"owner": "app"`) {
		t.Errorf("conflicts -o json: %s", r.stdout)
	}
	r = h.jitprov(t, "users", "get", "acme", ann.ID).must(t)
	if !strings.Contains(r.stdout, "Changes kept out by the fields' owners") || !strings.Contains(r.stdout, "viewer") {
		t.Errorf("users get:\n%s", r.stdout)
	}
	if r = h.jitprov(t, "orgs", "get", "acme").must(t); !strings.Contains(r.stdout, "role=app") {
		t.Errorf("orgs get lacks the field owners:\n%s", r.stdout)
	}
}
