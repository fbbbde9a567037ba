package scim_test

// Regression tests of the SCIM security review (F1–F11): each asserts what
// docs/scim.md promises or the project's rules require, and failed before
// its fix.

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
)

// F1: a SCIM client takes over an account it may not sign in as. The org
// admin signed up through google with an email outside the verified
// domains: okta's sign-in with that email does not link to them (link
// policy). A SCIM POST naming the admin's email "adopts" the admin and links
// an okta identity the attacker chooses; signing in through okta with that
// NameID is then signing in as the admin.
func TestSecurityAdoptByEmailTakesOverAdmin(t *testing.T) {
	h := newHarness(t, 10)
	res := h.loginThrough(t, "google", "g-boss", "boss@partner.example")
	if res.User == nil {
		t.Fatalf("boss sign-in: %+v", res)
	}
	boss := res.User.ID
	if _, err := h.core.ChangeRole(t.Context(), adminOperator(), "acme", boss, "admin"); err != nil {
		t.Fatal(err)
	}
	// Control: okta with the admin's email does not reach the admin's
	// account (the domain is not verified).
	if res := h.login(t, "boss@partner.example", "boss@partner.example"); res.User != nil && res.User.ID == boss {
		t.Fatalf("control: okta sign-in linked to the admin by email already: %+v", res)
	}
	r := h.scim(t, http.MethodPost, "/Users", userBody("mallory@acme.example", "boss@partner.example", true))
	t.Logf("SCIM POST with the admin's email: %d %s", r.status, r.body)
	res = h.login(t, "mallory@acme.example", "")
	if res.User != nil && res.User.ID == boss {
		t.Errorf("account takeover: okta NameID %q chosen by the SCIM client signs in as org admin %s (role %q)",
			"mallory@acme.example", boss, res.User.Role)
	}
}

// F1b: the same through PATCH of userName on any user SCIM lists (JIT
// users are in SCIM's view without being adopted).
func TestSecurityPatchUserNameLinksIdentityToAdmin(t *testing.T) {
	h := newHarness(t, 10)
	res := h.loginThrough(t, "google", "g-boss", "boss@partner.example")
	boss := res.User.ID
	if _, err := h.core.ChangeRole(t.Context(), adminOperator(), "acme", boss, "admin"); err != nil {
		t.Fatal(err)
	}
	body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "userName", "value": "mallory2@acme.example"}}})
	r := h.scim(t, http.MethodPatch, "/Users/"+boss, body)
	t.Logf("PATCH userName of the admin: %d %s", r.status, r.body)
	res = h.login(t, "mallory2@acme.example", "")
	if res.User != nil && res.User.ID == boss {
		t.Errorf("account takeover via PATCH userName: okta NameID chosen by the SCIM client signs in as org admin %s", boss)
	}
}

// F2: docs/scim.md: "SCIM's active: true does not lift an admin's
// suspension". active:false then active:true does.
func TestSecuritySuspensionBypass(t *testing.T) {
	h := newHarness(t, 10)
	id := h.createUser(t, "ada@acme.example", "ada@acme.example")
	if _, err := h.core.Suspend(t.Context(), adminOperator(), "acme", id, "investigation"); err != nil {
		t.Fatal(err)
	}
	if r := h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(true)); r.status != http.StatusOK {
		t.Fatalf("active true: %d %s", r.status, r.body)
	}
	if res := h.login(t, "ada@acme.example", "ada@acme.example"); res.Outcome != events.OutcomeRefused {
		t.Fatalf("control: suspended user signed in after active:true: %+v", res)
	}
	for _, active := range []bool{false, true} {
		if r := h.scim(t, http.MethodPatch, "/Users/"+id, patchActive(active)); r.status != http.StatusOK {
			t.Fatalf("active %v: %d %s", active, r.status, r.body)
		}
	}
	if res := h.login(t, "ada@acme.example", "ada@acme.example"); res.Outcome != events.OutcomeRefused {
		t.Errorf("admin's suspension lifted by SCIM active:false then active:true: sign-in %s", res.Outcome)
	}
}

// F3: SCIM deprovisioning a person suspended for inactivity releases a
// seat they do not hold: seats_used drifts below the people holding one,
// and the organisation then holds more people than max_seats.
func TestSecuritySeatDriftInactiveSuspended(t *testing.T) {
	h := newHarness(t, 2)
	if res := h.login(t, "b@acme.example", "b@acme.example"); res.User == nil {
		t.Fatalf("login b: %+v", res)
	}
	// The inactivity sweep suspends b (as the expiry job does: the seat
	// released).
	var suspended []store.User
	err := h.s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		if suspended, err = tx.SuspendInactive(ctx, "acme", time.Now().Add(time.Hour), 10); err != nil {
			return err
		}
		for range suspended {
			if _, err := tx.ReleaseSeat(ctx, "acme"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(suspended) != 1 {
		t.Fatalf("sweep: %v, %d", err, len(suspended))
	}
	if res := h.login(t, "a@acme.example", "a@acme.example"); res.User == nil || res.Outcome != events.OutcomeCreated {
		t.Fatalf("login a: %+v", res)
	}
	// SCIM deprovisions b, who holds no seat.
	if r := h.scim(t, http.MethodPatch, "/Users/"+suspended[0].ID, patchActive(false)); r.status != http.StatusOK {
		t.Fatalf("deprovision b: %d %s", r.status, r.body)
	}
	var used int
	_ = h.s.Pool().QueryRow(t.Context(), `SELECT seats_used FROM organizations WHERE id = 'acme'`).Scan(&used)
	if used != 1 {
		t.Errorf("seats_used %d with one active person (a), want 1", used)
	}
	// max_seats 2, a holds one: only one more fits.
	for _, who := range []string{"c", "d"} {
		r := h.scim(t, http.MethodPost, "/Users", userBody(who+"@acme.example", who+"@acme.example", true))
		t.Logf("create %s: %d", who, r.status)
	}
	var active int
	_ = h.s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM users WHERE org_id = 'acme' AND status = 'active'`).Scan(&active)
	if active > 2 {
		t.Errorf("%d active people in an organisation of max_seats 2 (seat limit bypassed)", active)
	}
}

// F4: NUL in an enterprise attribute or a group's externalId: the
// database refuses it and the client gets 500, not 400.
func TestSecurityNULInAttributes(t *testing.T) {
	h := newHarness(t, 10)
	body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", EnterpriseUserURN},
		"userName": "ada@acme.example", EnterpriseUserURN: map[string]any{"department": "a\x00b"}})
	if r := h.scim(t, http.MethodPost, "/Users", body); r.status != http.StatusBadRequest {
		t.Errorf("NUL in department: %d %s, want 400", r.status, r.body)
	}
	gbody := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "G", "externalId": "x\x00y"})
	if r := h.scim(t, http.MethodPost, "/Groups", gbody); r.status != http.StatusBadRequest {
		t.Errorf("NUL in group externalId: %d %s, want 400", r.status, r.body)
	}
	gbody = mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "G2", "externalId": strings.Repeat("x", 200000)})
	if r := h.scim(t, http.MethodPost, "/Groups", gbody); r.status != http.StatusBadRequest {
		t.Errorf("200 kB group externalId: %d, want 400", r.status)
	}
}

const EnterpriseUserURN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

// F7: identities SCIM links and unlinks are announced, as an admin's are:
// a rename of a person who signs in through the SCIM IdP moves their
// identity to the new name (user.identity-unlinked, user.identity-linked)
// and the audit row names both. A person SCIM may not take over (signed in
// through another IdP, outside the verified domains) is refused, not
// linked.
func TestSecuritySCIMLinkIsAnnounced(t *testing.T) {
	h := newHarness(t, 10)
	ada := h.login(t, "ada@acme.example", "ada@acme.example").User.ID
	seq, _ := h.events(t, 0)
	body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "userName", "value": "ada.new@acme.example"}}})
	if r := h.scim(t, http.MethodPatch, "/Users/"+ada, body); r.status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	_, types := h.events(t, seq)
	if !slices.Contains(types, "user.identity-unlinked") || !slices.Contains(types, "user.identity-linked") {
		t.Errorf("a rename moved the okta identity; events %v, want user.identity-unlinked and user.identity-linked", types)
	}
	var ids []string
	rows, _ := h.s.Pool().Query(t.Context(), `SELECT external_id FROM identities WHERE user_id = $1 AND connection_id = 'okta'`, ada)
	for rows.Next() {
		var e string
		_ = rows.Scan(&e)
		ids = append(ids, e)
	}
	rows.Close()
	if !slices.Equal(ids, []string{"ada.new@acme.example"}) {
		t.Errorf("okta identities %v, want only the new name", ids)
	}
	res := h.loginThrough(t, "google", "g-eve", "eve@partner.example")
	body = mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "userName", "value": "eve@acme.example"}}})
	if r := h.scim(t, http.MethodPatch, "/Users/"+res.User.ID, body); r.status != http.StatusConflict {
		t.Errorf("SCIM renamed a person it may not take over: %d %s, want 409", r.status, r.body)
	}
}

// F8: DELETE of a user takes them out of their groups but leaves their
// groups field and the role the groups gave: a later POST of the same
// person (resurrection) brings them back as manager with no group giving
// it; no user.updated (groups) / user.role-changed is emitted on DELETE.
func TestSecurityDeleteKeepsGroupRole(t *testing.T) {
	h := newHarness(t, 10)
	id := h.createUser(t, "ada@acme.example", "ada@acme.example")
	r := h.scim(t, http.MethodPost, "/Groups", mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "Managers", "members": []any{map[string]any{"value": id}}}))
	if r.status != http.StatusCreated {
		t.Fatalf("group: %d %s", r.status, r.body)
	}
	if u, _ := h.s.User(t.Context(), "acme", id); u.Role != "manager" {
		t.Fatalf("role %q, want manager", u.Role)
	}
	seq, _ := h.events(t, 0)
	if r := h.scim(t, http.MethodDelete, "/Users/"+id, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	_, types := h.events(t, seq)
	u, _ := h.s.User(t.Context(), "acme", id)
	t.Logf("after DELETE: role %q groups %v events %v", u.Role, u.Groups, types)
	if len(u.Groups) != 0 || u.Role != "member" {
		t.Errorf("after DELETE (no group membership left) the user keeps groups %v and role %q", u.Groups, u.Role)
	}
	r = h.scim(t, http.MethodPost, "/Users", userBody("ada@acme.example", "ada@acme.example", true))
	u, _ = h.s.User(t.Context(), "acme", id)
	if r.status == http.StatusCreated && u.Role == "manager" {
		t.Errorf("resurrected user is manager with no group: %s", r.body)
	}
}

// F9: an admin's decisions that keep a person out are undone by SCIM's
// active: true: a denied sign-up (new_people: hold) and an admin's
// deprovisioning. DenySignup says "JIT does not re-create them"; SCIM
// reactivates the very record, taking a seat, without approval.
func TestSecuritySCIMUndoesDeniedSignup(t *testing.T) {
	h := newHarness(t, 10)
	if _, err := h.s.Pool().Exec(t.Context(), `UPDATE organizations SET new_people = 'hold' WHERE id = 'acme'`); err != nil {
		t.Fatal(err)
	}
	res := h.login(t, "eve@acme.example", "eve@acme.example")
	if res.Outcome != events.OutcomeHeld {
		t.Fatalf("sign-up not held: %+v", res)
	}
	if _, err := h.core.DenySignup(t.Context(), adminOperator(), "acme", res.User.ID, "not one of ours"); err != nil {
		t.Fatal(err)
	}
	if r := h.scim(t, http.MethodPatch, "/Users/"+res.User.ID, patchActive(true)); r.status == http.StatusOK {
		if res := h.login(t, "eve@acme.example", "eve@acme.example"); res.Outcome == events.OutcomeExisting {
			t.Errorf("SCIM active:true reactivated a sign-up an admin denied; sign-in now %s", res.Outcome)
		}
	}
}

// F10: a userName change (scim_identity: userName) links the new name but
// leaves the old identity linked: the old NameID keeps signing in as this
// user, and when the IdP later gives the old name to someone else, that
// person signs in as this user (their SCIM create is a 409).
func TestSecurityRenameLeavesOldIdentity(t *testing.T) {
	h := newHarness(t, 10)
	id := h.createUser(t, "alice@acme.example", "alice@acme.example")
	body := mustJSON(map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"userName": "alice.smith@acme.example",
			"emails": []any{map[string]any{"value": "alice.smith@acme.example", "type": "work", "primary": true}}}}}})
	if r := h.scim(t, http.MethodPatch, "/Users/"+id, body); r.status != http.StatusOK {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	r := h.scim(t, http.MethodPost, "/Users", userBody("alice@acme.example", "alice.jones@acme.example", true))
	t.Logf("new person given the old name: %d %s", r.status, r.body)
	if res := h.login(t, "alice@acme.example", "alice.jones@acme.example"); res.User != nil && res.User.ID == id {
		t.Errorf("sign-in with the old NameID %q reaches the renamed user %s (now alice.smith)", "alice@acme.example", id)
	}
}

// F11: SCIM removes only people it manages or could take over: an
// organisation admin who signs in through another IdP is refused (409),
// and still signs in.
func TestSecuritySCIMDeletesOrgAdmin(t *testing.T) {
	h := newHarness(t, 10)
	res := h.loginThrough(t, "google", "g-boss", "boss@partner.example")
	if _, err := h.core.ChangeRole(t.Context(), adminOperator(), "acme", res.User.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []response{h.scim(t, http.MethodDelete, "/Users/"+res.User.ID, ""),
		h.scim(t, http.MethodPatch, "/Users/"+res.User.ID, patchActive(false))} {
		if r.status != http.StatusConflict {
			t.Errorf("SCIM removed an org admin who signs in through google: %d %s, want 409", r.status, r.body)
		}
	}
	if res := h.loginThrough(t, "google", "g-boss", "boss@partner.example"); res.Outcome != events.OutcomeExisting {
		t.Errorf("the admin's sign-in after SCIM tried: %s", res.Outcome)
	}
}
