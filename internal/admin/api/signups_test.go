package api_test

import (
	"slices"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// Held sign-ups over HTTP: listed with status=held, approved (a seat,
// user.created) or refused with no_seat when none is free, denied with a
// required reason; a second decision is a conflict.
func TestHeldSignups(t *testing.T) {
	h := newHarness(t, 1, limits{failures: 1000, uses: -1})
	o := org("acme", 1)
	o.WhenFull = store.WhenFullHold
	if err := h.s.ApplyOrganizations(t.Context(), []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "idp", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	secret, _ := h.token(t, "acme", store.ScopeWrite)
	as := cred{bearer: secret}
	first := h.login(t, "acme", "p1")
	held := []string{h.login(t, "acme", "p2").User.ID, h.login(t, "acme", "p3").User.ID}
	if first.Outcome != events.OutcomeCreated {
		t.Fatalf("first login %s", first.Outcome)
	}
	list := h.do(t, as, "GET", "/api/v1/organizations/acme/users?status=held", "")
	if list.status != 200 {
		t.Fatalf("list held: %d %s", list.status, list.body)
	}
	var ids []string
	for _, u := range list.json(t)["users"].([]any) {
		ids = append(ids, u.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	want := slices.Clone(held)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("held users %v, want %v", ids, want)
	}
	u := "/api/v1/organizations/acme/users/"
	if got := h.do(t, as, "POST", u+held[0]+"/approve-signup", ""); got.status != 409 || got.errorOf(t).Code != "no_seat" {
		t.Fatalf("approve in a full organisation: %d %s, want 409 no_seat", got.status, got.body)
	}
	if got := h.do(t, as, "POST", u+first.User.ID+"/deprovision", `{"reason":"left"}`); got.status != 200 {
		t.Fatal(got.status, string(got.body))
	}
	last, _ := h.outbox(t, 0)
	got := h.do(t, as, "POST", u+held[0]+"/approve-signup", "")
	if got.status != 200 || got.json(t)["user"].(map[string]any)["status"] != "active" {
		t.Fatalf("approve: %d %s", got.status, got.body)
	}
	if _, types := h.outbox(t, last); !slices.Equal(types, []string{string(events.TypeUserCreated)}) {
		t.Errorf("approval emitted %v, want user.created", types)
	}
	if again := h.do(t, as, "POST", u+held[0]+"/approve-signup", ""); again.status != 409 || again.errorOf(t).Code == "no_seat" {
		t.Errorf("approve twice: %d %s, want a conflict", again.status, again.body)
	}
	if got := h.do(t, as, "POST", u+held[1]+"/deny-signup", `{}`); got.status != 422 || got.errorOf(t).Field != "reason" {
		t.Errorf("deny without a reason: %d %s, want 422 on reason", got.status, got.body)
	}
	if got := h.do(t, as, "POST", u+held[1]+"/deny-signup", `{"reason":"not ours"}`); got.status != 200 ||
		got.json(t)["user"].(map[string]any)["status"] != "deprovisioned" {
		t.Errorf("deny: %d %s", got.status, got.body)
	}
	if n := h.count(t, `SELECT seats_used FROM organizations WHERE id = 'acme'`); n != 1 {
		t.Errorf("seats used %d, want 1", n)
	}
}
