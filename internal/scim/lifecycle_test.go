package scim_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

func userBody(userName, email string, active bool) string {
	return mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": userName,
		"emails": []any{map[string]any{"value": email, "type": "work", "primary": true}}, "active": active})
}

func patchActive(active bool) string {
	return mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": active}}}})
}

func (h *harness) createUser(t testing.TB, userName, email string) string {
	t.Helper()
	r := h.scim(t, http.MethodPost, "/Users", userBody(userName, email, true))
	if r.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", userName, r.status, r.body)
	}
	return r.json(t)["id"].(string)
}

// A person SCIM created before they ever signed in is found by their
// first sign-in, through the identity SCIM linked or by their verified
// email, and not created twice.
func TestSCIMFirstThenLogin(t *testing.T) {
	h := newHarness(t, 10)
	byName := h.createUser(t, "ada@acme.example", "ada@acme.example")
	res := h.login(t, "ada@acme.example", "ada@acme.example")
	if res.Outcome != events.OutcomeExisting || res.User == nil || res.User.ID != byName {
		t.Fatalf("first sign-in of a SCIM user (by the identity SCIM linked): %+v, want the existing user %s", res, byName)
	}
	// Through a connection without scim_identity: linked by the verified
	// email, as the organisation's link policy allows.
	byEmail := h.createUser(t, "grace", "grace@acme.example")
	res = h.loginThrough(t, "google", "109876543210", "grace@acme.example")
	if res.Outcome != events.OutcomeExisting || res.User == nil || res.User.ID != byEmail {
		t.Fatalf("first sign-in of a SCIM user (by email): %+v, want the existing user %s", res, byEmail)
	}
	var users int
	if err := h.s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM users WHERE org_id = 'acme'`).Scan(&users); err != nil {
		t.Fatal(err)
	}
	if users != 2 {
		t.Errorf("%d users, want 2: a sign-in created someone SCIM had created", users)
	}
	if used, _ := h.seats(t, "acme"); used != 2 {
		t.Errorf("%d seats used, want 2", used)
	}
}

// SCIM's active: false (as Okta and Entra ID send it) and DELETE free the
// seat at once and refuse the next sign-in; active: true brings the person
// back with a seat.
func TestSCIMDeactivationRefusesTheNextLogin(t *testing.T) {
	for _, how := range []string{"patch", "delete"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, 10)
			id := h.createUser(t, "ada@acme.example", "ada@acme.example")
			if res := h.login(t, "ada@acme.example", "ada@acme.example"); res.Outcome != events.OutcomeExisting {
				t.Fatalf("sign-in before: %+v", res)
			}
			seq, _ := h.events(t, 0)
			var r response
			if how == "patch" {
				r = h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(false))
			} else {
				r = h.scim(t, http.MethodDelete, "/Users/"+id, "")
			}
			if r.status/100 != 2 {
				t.Fatalf("%s: %d %s", how, r.status, r.body)
			}
			if used, _ := h.seats(t, "acme"); used != 0 {
				t.Errorf("%d seats used after deactivation, want 0", used)
			}
			if _, types := h.events(t, seq); !slices.Equal(types, []string{"user.deprovisioned"}) {
				t.Errorf("events %v, want [user.deprovisioned]", types)
			}
			if res := h.login(t, "ada@acme.example", "ada@acme.example"); res.Outcome != events.OutcomeRefused {
				t.Errorf("sign-in after %s: %+v, want refused", how, res)
			}
			if how == "patch" {
				if r := h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(true)); r.status != http.StatusOK {
					t.Fatalf("reactivate: %d %s", r.status, r.body)
				}
				if res := h.login(t, "ada@acme.example", "ada@acme.example"); res.Outcome != events.OutcomeExisting {
					t.Errorf("sign-in after reactivation: %+v", res)
				}
				if used, _ := h.seats(t, "acme"); used != 1 {
					t.Errorf("%d seats used after reactivation, want 1", used)
				}
			}
		})
	}
}

// A full organisation: SCIM gets a 409 that says why, and no seat is
// oversold, for a create and for a reactivation.
func TestSCIMFullOrganisation(t *testing.T) {
	h := newHarness(t, 1)
	h.createUser(t, "ada@acme.example", "ada@acme.example")
	r := h.scim(t, http.MethodPost, "/Users", userBody("grace@acme.example", "grace@acme.example", true))
	if r.status != http.StatusConflict || !strings.Contains(string(r.body), "no free seat") {
		t.Fatalf("create in a full organisation: %d %s, want 409 naming the seats", r.status, r.body)
	}
	// An inactive person takes no seat: created.
	r = h.scim(t, http.MethodPost, "/Users", userBody("grace@acme.example", "grace@acme.example", false))
	if r.status != http.StatusCreated {
		t.Fatalf("create an inactive person: %d %s", r.status, r.body)
	}
	grace := r.json(t)["id"].(string)
	if r := h.scim(t, http.MethodPatch, "/Users/"+grace, patchActive(true)); r.status != http.StatusConflict {
		t.Fatalf("activate in a full organisation: %d %s, want 409", r.status, r.body)
	}
	if used, active := h.seats(t, "acme"); used != 1 || active != 1 {
		t.Errorf("seats used %d for %d active, want 1 and 1", used, active)
	}
}

// SCIM group membership feeds the group rules: Managers gives manager,
// leaving it gives the default role back, each change announced; a role
// an admin granted above the JIT ceiling is never taken by a group.
func TestSCIMGroupsGiveRoles(t *testing.T) {
	h := newHarness(t, 10)
	ada := h.createUser(t, "ada@acme.example", "ada@acme.example")
	boss := h.createUser(t, "boss@acme.example", "boss@acme.example")
	if _, err := h.core.ChangeRole(t.Context(), adminOperator(), "acme", boss, "admin"); err != nil {
		t.Fatal(err)
	}
	// An admin made carol a manager by hand: no group takes it away.
	carol := h.createUser(t, "carol@acme.example", "carol@acme.example")
	if _, err := h.core.ChangeRole(t.Context(), adminOperator(), "acme", carol, "manager"); err != nil {
		t.Fatal(err)
	}
	r := h.scim(t, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Managers", "members": []any{map[string]any{"value": ada}, map[string]any{"value": boss}, map[string]any{"value": carol}}}))
	if r.status != http.StatusCreated {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	group := r.json(t)["id"].(string)
	role := func(id string) string {
		u, err := h.s.User(t.Context(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		return u.Role
	}
	if role(ada) != "manager" || role(boss) != "admin" {
		t.Fatalf("roles in Managers: ada %s (want manager), boss %s (want admin)", role(ada), role(boss))
	}
	seq, _ := h.events(t, 0)
	r = h.scim(t, http.MethodPatch, "/Groups/"+group, mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "remove", "path": fmt.Sprintf("members[value eq %q]", ada)}}}))
	if r.status != http.StatusOK {
		t.Fatalf("remove member: %d %s", r.status, r.body)
	}
	if role(ada) != "member" {
		t.Errorf("ada left Managers and holds %s, want the default member", role(ada))
	}
	if _, types := h.events(t, seq); !slices.Equal(types, []string{"user.updated", "user.role-changed"}) {
		t.Errorf("events %v, want [user.updated user.role-changed]", types)
	}
	if r := h.scim(t, http.MethodDelete, "/Groups/"+group, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete group: %d %s", r.status, r.body)
	}
	if role(boss) != "admin" || role(carol) != "manager" {
		t.Errorf("deleting the group changed roles an admin gave: boss %s (want admin), carol %s (want manager)", role(boss), role(carol))
	}
}

// Tokens: a SCIM token reaches SCIM only, and its own organisation only;
// no other token reaches SCIM.
func TestSCIMTokens(t *testing.T) {
	h := newHarness(t, 10)
	ada := h.createUser(t, "ada@acme.example", "ada@acme.example")
	globex := h.newToken(t, "globex", store.ScopeSCIM)
	write := h.newToken(t, "acme", store.ScopeWrite)
	cases := []struct {
		name, bearer, method, path string
		want                       int
	}{
		{"no token", "", http.MethodGet, "/scim/v2/Users", http.StatusUnauthorized},
		{"a token jitprov does not know", "jpt_" + strings.Repeat("x", 40), http.MethodGet, "/scim/v2/Users", http.StatusUnauthorized},
		{"an admin API token on SCIM", write, http.MethodGet, "/scim/v2/Users", http.StatusForbidden},
		{"a SCIM token on the admin API", h.token, http.MethodGet, "/api/v1/organizations", http.StatusForbidden},
		{"a SCIM token on the admin API's users", h.token, http.MethodGet, "/api/v1/organizations/acme/users", http.StatusForbidden},
		{"another organisation's SCIM token", globex, http.MethodGet, "/scim/v2/Users/" + ada, http.StatusNotFound},
		{"another organisation's SCIM token deleting", globex, http.MethodDelete, "/scim/v2/Users/" + ada, http.StatusNotFound},
		{"the organisation's SCIM token", h.token, http.MethodGet, "/scim/v2/Users/" + ada, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(t, c.bearer, c.method, c.path, "")
			if r.status != c.want {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, r.status, r.body, c.want)
			}
			if c.want == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	if r := h.do(t, globex, http.MethodGet, "/scim/v2/Users", ""); !strings.Contains(string(r.body), `"totalResults":0`) {
		t.Errorf("globex's SCIM token lists acme's people: %s", r.body)
	}
}

// Two PATCHes of one user at once, each of another attribute: both land
// (a PATCH that lost the race reads again and applies again).
func TestSCIMConcurrentPatchesLoseNothing(t *testing.T) {
	h := newHarness(t, 10)
	id := h.createUser(t, "ada@acme.example", "ada@acme.example")
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "replace", "path": attrOf(i), "value": fmt.Sprint("v", i)}}})
			if r := h.scim(t, http.MethodPatch, "/Users/"+id, body); r.status != http.StatusOK {
				t.Errorf("patch %d: %d %s", i, r.status, r.body)
			}
		})
	}
	wg.Wait()
	r := h.scim(t, http.MethodGet, "/Users/"+id, "")
	for i := range n {
		if !strings.Contains(string(r.body), fmt.Sprintf("%q", fmt.Sprint("v", i))) {
			t.Errorf("the PATCH of %s was lost: %s", attrOf(i), r.body)
		}
	}
}

func attrOf(i int) string {
	return []string{"name.givenName", "name.familyName", "displayName",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
		"externalId"}[i]
}

// SCIM deactivates people of an organisation while its people sign in,
// first sign-ins and returning ones: seats stay equal to active people,
// nobody is created twice, and each change is announced once.
func TestSCIMDeactivationDuringALoginStorm(t *testing.T) {
	const people = 40
	h := newHarness(t, 2*people)
	ids := make([]string, people)
	for i := range people {
		ids[i] = h.createUser(t, fmt.Sprintf("p%d@acme.example", i), fmt.Sprintf("p%d@acme.example", i))
	}
	var wg sync.WaitGroup
	for i := range people {
		// Each SCIM person signs in twice while SCIM deactivates every
		// other one; a new person (JIT) signs in beside them.
		wg.Go(func() {
			for range 2 {
				h.login(t, fmt.Sprintf("p%d@acme.example", i), fmt.Sprintf("p%d@acme.example", i))
			}
		})
		wg.Go(func() { h.login(t, fmt.Sprintf("new%d@acme.example", i), fmt.Sprintf("new%d@acme.example", i)) })
		if i%2 == 0 {
			wg.Go(func() {
				if r := h.scim(t, http.MethodPatch, "/Users/"+ids[i], patchActive(false)); r.status != http.StatusOK {
					t.Errorf("deactivate %d: %d %s", i, r.status, r.body)
				}
			})
		}
	}
	wg.Wait()
	if used, active := h.seats(t, "acme"); used != active {
		t.Errorf("seats used %d for %d people holding one", used, active)
	}
	var users, identities, dupes int
	if err := h.s.Pool().QueryRow(t.Context(), `SELECT (SELECT count(*) FROM users WHERE org_id = 'acme'),
		(SELECT count(*) FROM identities WHERE org_id = 'acme'),
		(SELECT count(*) FROM (SELECT lower(email) FROM users WHERE org_id = 'acme' GROUP BY 1 HAVING count(*) > 1) d)`).
		Scan(&users, &identities, &dupes); err != nil {
		t.Fatal(err)
	}
	// Seats for everyone: every new person got one.
	if users != 2*people || identities != 2*people || dupes != 0 {
		t.Errorf("%d users, %d identities, %d doubled emails; want %d, %d, 0", users, identities, dupes, 2*people, 2*people)
	}
	_, types := h.events(t, 0)
	if v := h.versions(t, "user.created"); v[events.TypeUserCreatedV2] != people || v[events.TypeUserCreated] != people {
		t.Errorf("user.created by version %v: want v2 for SCIM's %d and v1 for the %d sign-ins", v, people, people)
	}
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	if count["user.created"] != 2*people || count["user.deprovisioned"] != people/2 {
		t.Errorf("events %v: want %d user.created and %d user.deprovisioned", count, 2*people, people/2)
	}
	for i := 0; i < people; i += 2 {
		if res := h.login(t, fmt.Sprintf("p%d@acme.example", i), ""); res.Outcome != events.OutcomeRefused {
			t.Errorf("p%d signs in after SCIM deactivated them: %+v", i, res)
		}
	}
}

func adminOperator() admin.Principal { return admin.Operator("test") }

// A token over its per-minute limit gets 429 with Retry-After, and a body
// over the limit 413: neither reaches the database.
func TestSCIMLimits(t *testing.T) {
	h := newLimitedHarness(t, 10, 2)
	for i := range 2 {
		if r := h.scim(t, http.MethodGet, "/Users", ""); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := h.scim(t, http.MethodGet, "/Users", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Errorf("third request in a minute of a token allowed 2: %d (Retry-After %q) %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	h = newHarness(t, 10)
	id := h.createUser(t, "ada@acme.example", "ada@acme.example")
	big := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"displayName","value":"` +
		strings.Repeat("x", 2<<20) + `"}]}`
	if r := h.scim(t, http.MethodPatch, "/Users/"+id, big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("a 2 MiB PATCH: %d %.200s, want 413", r.status, r.body)
	}
}

// Group PATCHes at once that share members, each listing them in its own
// order: none deadlocks or fails, and every membership lands.
func TestSCIMConcurrentGroupPatchesSharingMembers(t *testing.T) {
	h := newHarness(t, 50)
	var users []string
	for i := range 20 {
		users = append(users, h.createUser(t, fmt.Sprintf("u%d@acme.example", i), fmt.Sprintf("u%d@acme.example", i)))
	}
	var groups []string
	for g := range 4 {
		r := h.scim(t, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": fmt.Sprintf("g%d", g)}))
		if r.status != http.StatusCreated {
			t.Fatalf("create group: %d %s", r.status, r.body)
		}
		groups = append(groups, r.json(t)["id"].(string))
	}
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Go(func() {
			members := []any{}
			for k := range users {
				// every PATCH lists the members in another order: rotated,
				// and reversed for every other one
				j := (k + 7*p) % len(users)
				if p%2 == 1 {
					j = len(users) - 1 - j
				}
				members = append(members, map[string]any{"value": users[j]})
			}
			body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
				"Operations": []any{map[string]any{"op": "add", "path": "members", "value": members}}})
			if r := h.scim(t, http.MethodPatch, "/Groups/"+groups[p%len(groups)], body); r.status != http.StatusOK {
				t.Errorf("PATCH %d: %d %s", p, r.status, r.body)
			}
		})
	}
	wg.Wait()
	for _, id := range users {
		u, err := h.s.User(t.Context(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		if len(u.Groups) != len(groups) {
			t.Errorf("user %s is in %v, want all %d groups", id, u.Groups, len(groups))
		}
	}
}
