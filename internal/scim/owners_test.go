package scim_test

import (
	"net/http"
	"testing"

	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// Over SCIM, a field the application owns is not changed by a PUT: the
// answer shows the value kept, and the change is a conflict of the
// token's; a field without an owner changes as before.
func TestSCIMKeepsFieldsItDoesNotOwn(t *testing.T) {
	h := newHarness(t, 10)
	acme := org("acme", 10)
	acme.FieldOwners = map[string]string{store.FieldDisplayName: store.OwnerApp}
	if err := h.s.ApplyOrganizations(t.Context(), []store.Organization{acme}, nil); err != nil {
		t.Fatal(err)
	}
	body := func(display, given string) string {
		return mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "ada@acme.example",
			"displayName": display, "name": map[string]any{"givenName": given}, "active": true,
			"emails": []any{map[string]any{"value": "ada@acme.example", "type": "work", "primary": true}}})
	}
	r := h.scim(t, http.MethodPost, "/Users", body("Ada", "Ada"))
	if r.status != http.StatusCreated || r.json(t)["displayName"] != "Ada" {
		t.Fatalf("create: %d %s (the creation sets every field)", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	r = h.scim(t, http.MethodPut, "/Users/"+id, body("Countess Lovelace", "Augusta"))
	if r.status != http.StatusOK {
		t.Fatalf("put: %d %s", r.status, r.body)
	}
	v := r.json(t)
	if v["displayName"] != "Ada" {
		t.Errorf("displayName %v, want Ada kept (the application owns it)", v["displayName"])
	}
	if name, _ := v["name"].(map[string]any); name["givenName"] != "Augusta" {
		t.Errorf("name %v, want givenName Augusta (no owner: SCIM changes it)", v["name"])
	}
	page, err := h.core.FieldConflicts(t.Context(), admin.Operator("test"), store.ConflictFilter{OrganizationID: "acme", UserID: id})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Conflicts) != 1 {
		t.Fatalf("conflicts %+v, want one", page.Conflicts)
	}
	c := page.Conflicts[0]
	if c.Field != store.FieldDisplayName || c.Source != store.SourceSCIM || c.Owner != store.OwnerApp ||
		len(c.Rejected) != 1 || c.Rejected[0] != "Countess Lovelace" || len(c.Kept) != 1 || c.Kept[0] != "Ada" ||
		len(c.Actor) < len("token:") || c.Actor[:len("token:")] != "token:" {
		t.Errorf("conflict %+v", c)
	}
}
