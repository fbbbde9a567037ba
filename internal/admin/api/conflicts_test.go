package api_test

import (
	"time"

	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// An overruled change is read over the API: the organisation's list, the
// user's page, filtered by user and field; another organisation's token
// sees none of it.
func TestFieldConflictsOverHTTP(t *testing.T) {
	h := newHarness(t, 5, limits{failures: 1000, uses: -1})
	acme := org("acme", 5)
	acme.FieldOwners = map[string]string{store.FieldDisplayName: store.OwnerApp}
	if err := h.s.ApplyOrganizations(t.Context(), []store.Organization{acme}, nil); err != nil {
		t.Fatal(err)
	}
	signIn := func(name string) events.ProvisioningResult {
		t.Helper()
		res, err := h.dec.Decide(t.Context(), uuid.NewString(), events.Identity{OrganizationID: "acme", ConnectionID: "idp",
			Protocol: events.ProtocolSAML, ExternalID: "ada", Email: "ada@acme.example", EmailVerified: true, DisplayName: name,
			AuthenticatedAt: time.Now().UTC()})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ada := signIn("Ada").User.ID // created: the display name is set
	signIn("Ada L.")             // overruled: the application owns it
	h.login(t, "acme", "grace")  // no conflict

	read, _ := h.token(t, "acme", store.ScopeRead)
	as := cred{bearer: read}
	got := h.do(t, as, "GET", "/api/v1/organizations/acme/conflicts", "")
	if got.status != 200 {
		t.Fatalf("list: %d %s", got.status, got.body)
	}
	list, _ := got.json(t)["conflicts"].([]any)
	if len(list) != 1 {
		t.Fatalf("conflicts %s, want one", got.body)
	}
	c := list[0].(map[string]any)
	if c["user_id"] != ada || c["field"] != "display_name" || c["source"] != "login" || c["owner"] != "app" ||
		c["rejected"].([]any)[0] != "Ada L." || c["kept"].([]any)[0] != "Ada" || c["count"].(float64) != 1 || c["login_id"] == "" {
		t.Errorf("conflict %v", c)
	}
	for _, q := range []string{"?user=" + ada, "?field=display_name", "?user=" + ada + "&field=display_name&limit=10"} {
		if got := h.do(t, as, "GET", "/api/v1/organizations/acme/conflicts"+q, ""); got.status != 200 || len(got.json(t)["conflicts"].([]any)) != 1 {
			t.Errorf("%s: %d %s", q, got.status, got.body)
		}
	}
	for _, q := range []string{"?user=" + uuid.NewString(), "?field=email"} {
		if got := h.do(t, as, "GET", "/api/v1/organizations/acme/conflicts"+q, ""); got.status != 200 || len(got.json(t)["conflicts"].([]any)) != 0 {
			t.Errorf("%s: %d %s, want none", q, got.status, got.body)
		}
	}
	user := h.do(t, as, "GET", "/api/v1/organizations/acme/users/"+ada, "")
	if cs, _ := user.json(t)["conflicts"].([]any); user.status != 200 || len(cs) != 1 {
		t.Errorf("user page: %d %s", user.status, user.body)
	}
	org := h.do(t, as, "GET", "/api/v1/organizations/acme", "")
	if owners, _ := org.json(t)["field_owners"].(map[string]any); owners["display_name"] != "app" {
		t.Errorf("organisation's field_owners: %s", org.body)
	}
	if got := h.do(t, as, "GET", "/api/v1/organizations/acme/conflicts?cursor=nope", ""); got.status != 422 || got.errorOf(t).Field != "cursor" {
		t.Errorf("bad cursor: %d %s", got.status, got.body)
	}
	other, _ := h.token(t, "globex", store.ScopeRead)
	if got := h.do(t, cred{bearer: other}, "GET", "/api/v1/organizations/acme/conflicts", ""); got.status != 403 && got.status != 404 {
		t.Errorf("another organisation's token: %d %s", got.status, got.body)
	}
}
