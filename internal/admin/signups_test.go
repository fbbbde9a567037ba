package admin_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/admin"
	"github.com/jitprov/jitprov/internal/store"
)

// holdingWorld is newWorld whose acme holds new people (newPeople) or
// holds them when full.
func holdingWorld(t *testing.T, seats int, newPeople, whenFull string) *world {
	t.Helper()
	w := newWorld(t, seats)
	o := org("acme", seats)
	o.NewPeople, o.WhenFull = newPeople, whenFull
	if err := w.s.ApplyOrganizations(t.Context(), []store.Organization{o}, []store.Connection{{OrganizationID: "acme", ID: "idp", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) seats(t *testing.T) int {
	return w.count(t, `SELECT seats_used FROM organizations WHERE id = 'acme'`)
}

func (w *world) held(t *testing.T, p admin.Principal) []string {
	t.Helper()
	page, err := w.core.Users(t.Context(), p, store.UserFilter{OrganizationID: "acme", Status: store.StatusHeld})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, u := range page.Users {
		out = append(out, u.ID)
	}
	return out
}

// Approval takes a seat at that moment, makes the person active and
// announces them with user.created (the login that was held, and their
// identity), with an audit row naming the admin; approving again is a
// conflict that changes nothing.
func TestApproveSignup(t *testing.T) {
	w := holdingWorld(t, 5, store.NewPeopleHold, store.WhenFullRefuse)
	ctx := t.Context()
	res := w.login(t, "acme", "ada")
	if res.Outcome != events.OutcomeHeld || res.User == nil {
		t.Fatalf("login: %+v, want held", res)
	}
	id := res.User.ID
	if got := w.held(t, acmeAdmin); !slices.Equal(got, []string{id}) {
		t.Fatalf("held people %v, want [%s]", got, id)
	}
	if w.seats(t) != 0 {
		t.Fatalf("a held person took a seat")
	}
	after, _ := w.outbox(t, 0)
	got, err := w.core.ApproveSignup(ctx, acmeAdmin, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Changed || got.User.Status != store.StatusActive {
		t.Fatalf("ApproveSignup = %+v", got)
	}
	if w.seats(t) != 1 {
		t.Errorf("seats used %d after approval, want 1", w.seats(t))
	}
	_, evs := w.outbox(t, after)
	if !slices.Equal(types(evs), []string{string(events.TypeUserCreated)}) {
		t.Fatalf("events %v, want one user.created", types(evs))
	}
	created, err := events.DataAs[events.UserCreated](evs[0], events.TypeUserCreated)
	if err != nil {
		t.Fatal(err)
	}
	if created.LoginID != res.LoginID || created.User.ID != id || created.User.Status != "active" ||
		created.User.ConnectionID != "idp" || created.User.ExternalID != "ada" {
		t.Errorf("user.created %+v, want the held login %s and the person's identity", created, res.LoginID)
	}
	if n := w.count(t, `SELECT count(*) FROM admin_audit WHERE action = 'signup.approve' AND target = $1 AND actor_id = $2`, id, acmeAdmin.ID); n != 1 {
		t.Errorf("%d audit rows for the approval, want 1", n)
	}
	if len(w.held(t, acmeAdmin)) != 0 {
		t.Error("the approved person is still listed as held")
	}
	// The person signs in from now on.
	if again := w.login(t, "acme", "ada"); again.Outcome != events.OutcomeExisting || again.User.Status != "active" {
		t.Errorf("the approved person's next login: %s/%s, want existing and active", again.Outcome, again.Reason)
	}
	last, _ := w.outbox(t, 0)
	if _, err := w.core.ApproveSignup(ctx, acmeAdmin, "acme", id); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("approving twice: %v, want ErrConflict", err)
	}
	if _, evs := w.outbox(t, last); len(evs) != 0 || w.seats(t) != 1 {
		t.Errorf("approving twice changed something: events %v, seats %d", types(evs), w.seats(t))
	}
}

// With no seat free, approval is refused, says why and what to do, and
// changes nothing; freeing a seat lets it through.
func TestApproveSignupWithoutSeat(t *testing.T) {
	w := holdingWorld(t, 1, store.NewPeopleActive, store.WhenFullHold)
	ctx := t.Context()
	first := w.login(t, "acme", "p1")
	held := w.login(t, "acme", "p2")
	if first.Outcome != events.OutcomeCreated || held.Outcome != events.OutcomeHeld || held.Reason != events.ReasonSeatsExhausted {
		t.Fatalf("logins: %s, %s/%s; want created, then held: no seat", first.Outcome, held.Outcome, held.Reason)
	}
	last, _ := w.outbox(t, 0)
	_, err := w.core.ApproveSignup(ctx, acmeAdmin, "acme", held.User.ID)
	if !errors.Is(err, admin.ErrNoSeat) {
		t.Fatalf("approval in a full organisation: %v, want ErrNoSeat", err)
	}
	for _, want := range []string{"uses 1 of its 1 seats", "free a seat", "max_seats"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
	if _, evs := w.outbox(t, last); len(evs) != 0 || w.seats(t) != 1 || len(w.held(t, acmeAdmin)) != 1 {
		t.Errorf("a refused approval changed something: events %v, seats %d", types(evs), w.seats(t))
	}
	if _, err := w.core.Deprovision(ctx, acmeAdmin, "acme", first.User.ID, "left"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.core.ApproveSignup(ctx, acmeAdmin, "acme", held.User.ID); err != nil {
		t.Fatalf("approval once a seat is free: %v", err)
	}
	if w.seats(t) != 1 {
		t.Errorf("seats used %d, want 1", w.seats(t))
	}
}

// Denial needs a reason, deprovisions the held person without ever giving
// them a seat, records why in user.deprovisioned and the audit; their next
// login is refused.
func TestDenySignup(t *testing.T) {
	w := holdingWorld(t, 5, store.NewPeopleHold, store.WhenFullRefuse)
	ctx := t.Context()
	held := w.login(t, "acme", "eve")
	if _, err := w.core.DenySignup(ctx, acmeAdmin, "acme", held.User.ID, "  "); !errors.Is(err, admin.ErrInvalid) {
		t.Errorf("denial without a reason: %v, want ErrInvalid", err)
	}
	last, _ := w.outbox(t, 0)
	got, err := w.core.DenySignup(ctx, acmeAdmin, "acme", held.User.ID, "not one of ours")
	if err != nil {
		t.Fatal(err)
	}
	if got.User.Status != store.StatusDeprovisioned || w.seats(t) != 0 {
		t.Errorf("denied: status %s, seats %d; want deprovisioned and no seat", got.User.Status, w.seats(t))
	}
	_, evs := w.outbox(t, last)
	if !slices.Equal(types(evs), []string{string(events.TypeUserDeprovisioned)}) {
		t.Fatalf("events %v, want one user.deprovisioned", types(evs))
	}
	d, err := events.DataAs[events.UserStatusChanged](evs[0], events.TypeUserDeprovisioned)
	if err != nil {
		t.Fatal(err)
	}
	if d.PreviousStatus != events.PreviousStatusHeld || d.Reason != "not one of ours" || d.Actor.ID != acmeAdmin.ID {
		t.Errorf("user.deprovisioned %+v", d)
	}
	if n := w.count(t, `SELECT count(*) FROM admin_audit WHERE action = 'signup.deny' AND target = $1 AND details->>'reason' = 'not one of ours'`, held.User.ID); n != 1 {
		t.Errorf("%d audit rows for the denial, want 1", n)
	}
	if again := w.login(t, "acme", "eve"); again.Outcome != events.OutcomeRefused || again.Reason != events.ReasonDeprovisioned {
		t.Errorf("the denied person's next login: %s/%s, want refused: deprovisioned", again.Outcome, again.Reason)
	}
	if _, err := w.core.DenySignup(ctx, acmeAdmin, "acme", held.User.ID, "again"); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("denying twice: %v, want ErrConflict", err)
	}
	if _, err := w.core.ApproveSignup(ctx, acmeAdmin, "acme", held.User.ID); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("approving a denied sign-up: %v, want ErrConflict", err)
	}
	if w.seats(t) != 0 {
		t.Errorf("seats used %d, want 0", w.seats(t))
	}
}

// Only who may change the organisation approves or denies; the other
// status changes do not apply to a held person (they would move seats
// that were never taken).
func TestHeldSignupAuthorizationAndStatusChanges(t *testing.T) {
	w := holdingWorld(t, 5, store.NewPeopleHold, store.WhenFullRefuse)
	ctx := t.Context()
	id := w.login(t, "acme", "mal").User.ID
	for _, p := range []admin.Principal{acmeMember, acmeReader, globexWriter, globalReader} {
		if _, err := w.core.ApproveSignup(ctx, p, "acme", id); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("%s %s approves: %v, want ErrForbidden", p.Kind, p.ID, err)
		}
		if _, err := w.core.DenySignup(ctx, p, "acme", id, "no"); !errors.Is(err, admin.ErrForbidden) {
			t.Errorf("%s %s denies: %v, want ErrForbidden", p.Kind, p.ID, err)
		}
	}
	if _, err := w.core.Deprovision(ctx, acmeAdmin, "acme", id, "x"); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("deprovisioning a held person: %v, want ErrConflict (deny them)", err)
	}
	if _, err := w.core.Reactivate(ctx, acmeAdmin, "acme", id, "x"); !errors.Is(err, admin.ErrConflict) {
		t.Errorf("reactivating a held person: %v, want ErrConflict (approve them)", err)
	}
	if w.seats(t) != 0 || len(w.held(t, globalWriter)) != 1 {
		t.Errorf("seats %d, held %v", w.seats(t), w.held(t, globalWriter))
	}
	if _, err := w.core.ApproveSignup(ctx, globalWriter, "acme", id); err != nil {
		t.Errorf("a global token approves: %v", err)
	}
}
