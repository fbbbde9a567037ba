package scim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"gopkg.in/yaml.v3"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/admin/authn"
	"github.com/jitprov/jitprov/internal/admin/service"
	"github.com/jitprov/jitprov/internal/admin/token"
	"github.com/jitprov/jitprov/internal/provisioner"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

// harness is the admin service (API and SCIM) on a real Postgres, over
// HTTP, with organisation acme (its connection okta: SAML, whose people
// are known by their SCIM userName) and globex.
type harness struct {
	s     *postgres.Store
	core  *admin.Core
	dec   *provisioner.Decider
	srv   *httptest.Server
	token string // acme's SCIM token
}

func org(id string, seats int) store.Organization {
	return store.Organization{ID: id, Name: "Org " + id, MaxSeats: seats, Roles: []string{"viewer", "member", "manager", "admin"},
		DefaultRole: "member", JITRoleCeiling: "manager", UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkVerifiedDomains,
		VerifiedDomains: []string{"acme.example"}}
}

// oktaSettings is a SAML connection whose people are known by their SCIM
// userName, with a group rule.
const oktaSettings = `{"idp_metadata_url": "https://idp.acme.example/metadata", "sp_entity_id": "urn:test",
	"scim_identity": "userName", "group_roles": [{"group": "Managers", "role": "manager"}]}`

func newHarness(t testing.TB, seats int) *harness {
	t.Helper()
	return newLimitedHarness(t, seats, -1)
}

// newLimitedHarness allows each token perMinute requests a minute (-1: no
// limit).
func newLimitedHarness(t testing.TB, seats, perMinute int) *harness {
	t.Helper()
	s, _ := testenv.Store(t)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org("acme", seats), org("globex", seats)}, []store.Connection{
		{OrganizationID: "acme", ID: "okta", Protocol: "saml", Settings: []byte(oktaSettings)},
		{OrganizationID: "acme", ID: "google", Protocol: "oidc", Settings: []byte(`{"issuer": "https://accounts.google.com", "client_id": "c", "client_secret_env": "X"}`)},
		{OrganizationID: "globex", ID: "idp", Protocol: "saml", Settings: []byte(`{"idp_metadata_url": "https://idp.globex.example/m"}`)},
	}); err != nil {
		t.Fatal(err)
	}
	h := &harness{s: s, core: admin.New(s, testenv.Logger(t)), dec: provisioner.NewDecider(s, testenv.Logger(t))}
	auth := authn.New(authn.Config{Store: s, UsesPerMinute: perMinute, Failures: token.NewLimiter(1000, time.Minute, nil)})
	h.srv = httptest.NewServer(service.Handler(h.core, auth, nil, testenv.Logger(t)))
	t.Cleanup(h.srv.Close)
	h.token = h.newToken(t, "acme", store.ScopeSCIM)
	return h
}

func (h *harness) newToken(t testing.TB, orgID, scope string) string {
	t.Helper()
	c, err := h.core.CreateToken(t.Context(), admin.Operator("test"), admin.NewToken{Name: "scim-" + orgID + "-" + scope + "-" + uuid.NewString()[:8],
		OrganizationID: orgID, Scope: scope})
	if err != nil {
		t.Fatal(err)
	}
	return c.Secret
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

func (h *harness) do(t testing.TB, bearer, method, path, body string, headers ...string) response {
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
		req.Header.Set("Content-Type", "application/scim+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// scim is h.do with acme's SCIM token.
func (h *harness) scim(t testing.TB, method, path, body string, headers ...string) response {
	t.Helper()
	return h.do(t, h.token, method, "/scim/v2"+path, body, headers...)
}

// login is a sign-in through acme's okta connection, decided by the
// provisioner.
func (h *harness) login(t testing.TB, ext, email string) events.ProvisioningResult {
	t.Helper()
	return h.loginThrough(t, "okta", ext, email)
}

// loginThrough is a sign-in through another of acme's connections.
func (h *harness) loginThrough(t testing.TB, conn, ext, email string) events.ProvisioningResult {
	t.Helper()
	proto := events.ProtocolSAML
	if conn == "google" {
		proto = events.ProtocolOIDC
	}
	res, err := h.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: "acme", ConnectionID: conn,
		Protocol: proto, ExternalID: ext, Email: email, EmailVerified: email != "",
		AuthenticatedAt: time.Now().UTC()})
	if err != nil {
		t.Fatalf("login %s: %v", ext, err)
	}
	return res
}

// events decodes the outbox rows after seq (each checked against its
// schema, as consumers would) and returns the last seq and the types.
func (h *harness) events(t testing.TB, after int64) (int64, []string) {
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
		ev, err := events.Decode(&m)
		if err != nil {
			t.Fatalf("outbox row %d breaks the contract: %v", last, err)
		}
		types = append(types, events.Type(ev.Type()).Short())
	}
	return last, types
}

// versions counts the outbox's events of one short name by type (version).
func (h *harness) versions(t testing.TB, short string) map[events.Type]int {
	t.Helper()
	rows, err := h.s.Pool().Query(t.Context(), `SELECT header->'ce-type'->>0 FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[events.Type]int{}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if events.Type(typ).Short() == short {
			out[events.Type(typ)]++
		}
	}
	return out
}

func (h *harness) seats(t testing.TB, orgID string) (used, active int) {
	t.Helper()
	if err := h.s.Pool().QueryRow(t.Context(), `SELECT seats_used, (SELECT count(*) FROM users WHERE org_id = $1 AND status IN ('active', 'suspended'))
		FROM organizations WHERE id = $1`, orgID).Scan(&used, &active); err != nil {
		t.Fatal(err)
	}
	return used, active
}

// A replay is a recorded exchange of a SCIM client with a service
// provider (testdata/replay/*.yaml): each step's request, sent as is
// (with ${name} replaced by what an earlier step saved), and what its
// response must be.
type step struct {
	Name    string            `yaml:"name"`
	Method  string            `yaml:"method"`
	Path    string            `yaml:"path"`
	Headers map[string]string `yaml:"headers"`
	Body    any               `yaml:"body"`
	// Status is the response's status; Expect a JSON document the
	// response's must contain (objects by their keys, lists item by item
	// in order, scalars equal); Absent keys (dotted paths) it must not
	// have.
	Status int      `yaml:"status"`
	Expect any      `yaml:"expect"`
	Absent []string `yaml:"absent"`
	// Save names values of the response to reuse: name → dotted path
	// (e.g. Resources.0.id), or "header:ETag".
	Save map[string]string `yaml:"save"`
	// Login signs a person in through acme's okta connection before the
	// request: external id and email.
	Login *struct {
		ExternalID string `yaml:"external_id"`
		Email      string `yaml:"email"`
		Save       string `yaml:"save"` // the user id, under this name
	} `yaml:"login"`
}

var placeholder = regexp.MustCompile(`\$\{(\w+)\}`)

func TestReplays(t *testing.T) {
	files, err := filepath.Glob("testdata/replay/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no replays in testdata/replay: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var steps []step
			dec := yaml.NewDecoder(bytes.NewReader(raw))
			dec.KnownFields(true)
			if err := dec.Decode(&steps); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			h := newHarness(t, 50)
			vars := map[string]string{"token": h.token}
			subst := func(s string) string {
				return placeholder.ReplaceAllStringFunc(s, func(m string) string {
					name := placeholder.FindStringSubmatch(m)[1]
					v, ok := vars[name]
					if !ok {
						t.Fatalf("${%s} was saved by no earlier step", name)
					}
					return v
				})
			}
			for i, st := range steps {
				if st.Login != nil {
					res := h.login(t, st.Login.ExternalID, st.Login.Email)
					if res.User == nil {
						t.Fatalf("step %d (%s): login of %s: %+v", i+1, st.Name, st.Login.ExternalID, res)
					}
					if st.Login.Save != "" {
						vars[st.Login.Save] = res.User.ID
					}
				}
				if st.Method == "" {
					continue
				}
				body := ""
				if st.Body != nil {
					b, _ := json.Marshal(st.Body)
					body = subst(string(b))
				}
				var headers []string
				for k, v := range st.Headers {
					headers = append(headers, k, subst(v))
				}
				resp := h.do(t, h.token, st.Method, subst(st.Path), body, headers...)
				if resp.status != st.Status {
					t.Fatalf("step %d (%s): %s %s: status %d, want %d\n%s", i+1, st.Name, st.Method, subst(st.Path), resp.status, st.Status, resp.body)
				}
				var got any
				if len(resp.body) > 0 {
					if err := json.Unmarshal(resp.body, &got); err != nil {
						t.Fatalf("step %d (%s): body is not JSON: %q", i+1, st.Name, resp.body)
					}
				}
				if st.Expect != nil {
					want := st.Expect
					b, _ := json.Marshal(want)
					_ = json.Unmarshal([]byte(subst(string(b))), &want)
					if msg := contains(got, want, ""); msg != "" {
						t.Fatalf("step %d (%s): %s\nresponse: %s", i+1, st.Name, msg, resp.body)
					}
				}
				for _, p := range st.Absent {
					if _, ok := at(got, p); ok {
						t.Fatalf("step %d (%s): %s is present\nresponse: %s", i+1, st.Name, p, resp.body)
					}
				}
				for name, p := range st.Save {
					if h, ok := strings.CutPrefix(p, "header:"); ok {
						vars[name] = resp.header.Get(h)
						continue
					}
					v, ok := at(got, p)
					if !ok {
						t.Fatalf("step %d (%s): nothing at %s to save\nresponse: %s", i+1, st.Name, p, resp.body)
					}
					vars[name] = fmt.Sprint(v)
				}
			}
			// Whatever the exchange did, seats equal the people holding one.
			if used, active := h.seats(t, "acme"); used != active {
				t.Errorf("acme uses %d seats for %d people holding one", used, active)
			}
			h.events(t, 0) // every event the exchange caused keeps the contract
		})
	}
}

// contains reports how got fails to contain want ("" when it does).
func contains(got, want any, path string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %v is not an object", path, got)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s: missing", path, k)
			}
			if msg := contains(gv, wv, path+"."+k); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: %v, want %d items", path, got, len(w))
		}
		for i := range w {
			if msg := contains(g[i], w[i], fmt.Sprintf("%s.%d", path, i)); msg != "" {
				return msg
			}
		}
	default:
		if !reflect.DeepEqual(got, want) {
			return fmt.Sprintf("%s: %v, want %v", path, got, want)
		}
	}
	return ""
}

// at reads a dotted path (list indexes as numbers).
func at(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return nil, false
			}
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func mustJSON(v any) string {
	var b bytes.Buffer
	_ = json.NewEncoder(&b).Encode(v)
	return b.String()
}
