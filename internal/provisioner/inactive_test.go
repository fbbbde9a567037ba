package provisioner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

const inactiveAfter = 90 * 24 * time.Hour

// statusEvents decodes (validating against the schemas) every user.suspended
// and user.reactivated in the outbox.
func statusEvents(t *testing.T, s *postgres.Store) (suspended, reactivated []events.UserStatusChanged) {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT subject, header, data FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var m nats.Msg
		var h map[string][]string
		if err := rows.Scan(&m.Subject, &h, &m.Data); err != nil {
			t.Fatal(err)
		}
		m.Header = nats.Header(h)
		ev, err := events.Decode(&m) // validates against the schema
		if err != nil {
			t.Fatalf("outbox message breaks the contract: %v", err)
		}
		switch typ := events.Type(ev.Type()); typ {
		case events.TypeUserSuspended, events.TypeUserReactivated:
			d, err := events.DataAs[events.UserStatusChanged](ev, typ)
			if err != nil {
				t.Fatal(err)
			}
			if typ == events.TypeUserSuspended {
				suspended = append(suspended, d)
			} else {
				reactivated = append(reactivated, d)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return suspended, reactivated
}

// addUser creates a user the way an admin or SCIM would (not JIT's way),
// with a seat and an identity.
func addUser(t *testing.T, s store.Store, ext string, edit func(*store.User)) store.User {
	t.Helper()
	u := store.User{ID: uuid.NewString(), OrganizationID: "acme", Email: ext + "@acme.com", Role: "member",
		Status: store.StatusActive, CreatedBy: store.CreatedByJIT}
	edit(&u)
	var out store.User
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
			return err
		}
		var err error
		if out, err = tx.CreateUser(ctx, u); err != nil {
			return err
		}
		_, err = tx.LinkIdentity(ctx, store.Identity{OrganizationID: "acme", ConnectionID: "okta", ExternalID: ext,
			UserID: out.ID, LinkedBy: store.LinkedByCreated})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func userStatus(t *testing.T, s store.Store, id string) store.User {
	t.Helper()
	u, err := s.User(t.Context(), "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The whole lifecycle, with the sweep's clock in the test's hand: nobody
// before inactive_after; after it, the people JIT created — not those an
// admin created, not SCIM's — suspended once, seats freed, announced and
// audited; their next sign-in reactivates them while a seat is free and is
// refused like a full organisation when none is; a person an admin
// suspended stays suspended.
func TestInactiveLifecycle(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) { o.MaxSeats = 5; o.InactiveAfter = inactiveAfter })
	ctx := t.Context()
	log := testenv.Logger(t)
	decide := func(ext string) events.ProvisioningResult {
		t.Helper()
		res, err := d.Decide(ctx, uuid.NewString(), login(ext, ext+"@acme.com"))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	ann, bob := decide("ann").User, decide("bob").User
	byAdmin := addUser(t, s, "admin-made", func(u *store.User) { u.CreatedBy = store.CreatedByAdmin })
	scim := addUser(t, s, "scim-made", func(u *store.User) { u.SCIM.Managed = true })
	if seats, _ := seatsAndStatuses(t, s); seats != 4 {
		t.Fatalf("seats_used %d, want 4", seats)
	}
	now := time.Now().UTC()

	// Not before the threshold.
	if n, err := SweepInactive(ctx, s, now.Add(inactiveAfter-time.Hour), 0, log); n != 0 || err != nil {
		t.Fatalf("sweep before inactive_after: suspended %d, %v; want none", n, err)
	}
	// After it: ann and bob, once.
	later := now.Add(inactiveAfter + time.Hour)
	for i, want := range []int{2, 0} {
		if n, err := SweepInactive(ctx, s, later, 0, log); n != want || err != nil {
			t.Fatalf("sweep %d after inactive_after: suspended %d, %v; want %d", i+1, n, err, want)
		}
	}
	for _, id := range []string{ann.ID, bob.ID} {
		if u := userStatus(t, s, id); u.Status != store.StatusSuspended || u.SuspendedReason != store.SuspendedInactive {
			t.Errorf("user %s: status %q reason %q, want suspended for inactivity", u.Email, u.Status, u.SuspendedReason)
		}
	}
	for _, id := range []string{byAdmin.ID, scim.ID} {
		if u := userStatus(t, s, id); u.Status != store.StatusActive {
			t.Errorf("user %s: status %q, want untouched (active)", u.Email, u.Status)
		}
	}
	if seats, st := seatsAndStatuses(t, s); seats != 2 || st[store.StatusActive] != 2 {
		t.Errorf("seats_used %d, users %v; want 2 seats for the 2 active users", seats, st)
	}
	suspended, _ := statusEvents(t, s)
	var who []string
	for _, e := range suspended {
		who = append(who, e.User.ID)
		if e.Reason != ReasonInactive || e.Actor.Type != store.ActorSystem || e.Actor.ID != actorInactiveSweep ||
			e.PreviousStatus != store.StatusActive || e.User.Status != store.StatusSuspended {
			t.Errorf("user.suspended %+v, want reason inactive by the system, active to suspended", e)
		}
	}
	slices.Sort(who)
	if want := []string{ann.ID, bob.ID}; !slices.Equal(who, slices.Sorted(slices.Values(want))) {
		t.Errorf("user.suspended for %v, want once each for %v", who, want)
	}
	digests := outboxData[events.InactiveUsersSuspended](t, s, events.TypeInactiveUsersSuspended)
	if len(digests) != 1 {
		t.Fatalf("%d inactive-users.suspended, want one for the sweep that suspended anyone", len(digests))
	}
	if g := digests[0]; g.Count != 2 || len(g.Users) != 2 || g.SeatsUsed != 2 || g.MaxSeats != 5 ||
		// Event data carries times to the microsecond (events.TimeLayout).
		g.InactiveAfterSeconds != int64(inactiveAfter/time.Second) || !g.SweptAt.Equal(later.Truncate(time.Microsecond)) {
		t.Errorf("inactive-users.suspended %+v, want 2 people, 2 of 5 seats used, swept at %s", g, later)
	}
	page, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.AuditPage, error) {
		return tx.ListAudit(ctx, store.AuditFilter{OrganizationID: "acme", Limit: 50})
	})
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, e := range page.Entries {
		if e.Action == "user.suspend" && e.ActorType == store.ActorSystem && e.ActorID == actorInactiveSweep {
			audited++
		}
	}
	if audited != 2 {
		t.Errorf("%d audit rows of the sweep's suspensions, want 2: %+v", audited, page.Entries)
	}

	// An admin suspends carol (the admin core's way: SetUserStatus, seat
	// kept): her sign-in stays refused.
	carol := decide("carol").User
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SetUserStatus(ctx, "acme", carol.ID, store.StatusSuspended)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res := decide("carol"); res.Outcome != events.OutcomeRefused || res.Reason != events.ReasonSuspended {
		t.Errorf("sign-in of a person an admin suspended: %s/%s, want refused/suspended", res.Outcome, res.Reason)
	}

	// ann signs in: a seat is free (3 of 5 taken), she is back.
	res := decide("ann")
	if res.Outcome != events.OutcomeExisting || res.User == nil || res.User.Status != store.StatusActive || res.User.ID != ann.ID {
		t.Fatalf("sign-in after a suspension for inactivity: %+v, want existing, active, ann", res)
	}
	if u := userStatus(t, s, ann.ID); u.Status != store.StatusActive || u.SuspendedReason != "" {
		t.Errorf("ann after signing in: status %q reason %q", u.Status, u.SuspendedReason)
	}
	// dave takes the last seat; bob finds none.
	if res := decide("dave"); res.Outcome != events.OutcomeCreated {
		t.Fatalf("dave: %s/%s, want created", res.Outcome, res.Reason)
	}
	res = decide("bob")
	if res.Outcome != events.OutcomeRejected || res.Reason != events.ReasonSeatsExhausted {
		t.Errorf("sign-in for inactivity with no seat free: %s/%s, want rejected/seats_exhausted", res.Outcome, res.Reason)
	}
	if u := userStatus(t, s, bob.ID); u.Status != store.StatusSuspended || u.SuspendedReason != store.SuspendedInactive {
		t.Errorf("bob after a refused sign-in: status %q reason %q, want still suspended for inactivity", u.Status, u.SuspendedReason)
	}
	if seats, st := seatsAndStatuses(t, s); seats != 5 || st[store.StatusActive] != 4 || st[store.StatusSuspended] != 2 {
		t.Errorf("seats_used %d, users %v; want 5 seats: 4 active and carol (suspended by an admin, seat kept)", seats, st)
	}
	if got := outboxData[events.SeatsExhausted](t, s, events.TypeSeatsExhausted); len(got) != 1 || got[0].ExternalID != "bob" {
		t.Errorf("seats.exhausted %+v, want one, for bob", got)
	}
	_, reactivated := statusEvents(t, s)
	if len(reactivated) != 1 || reactivated[0].User.ID != ann.ID || reactivated[0].PreviousStatus != store.StatusSuspended ||
		reactivated[0].Reason != ReasonInactive || reactivated[0].Actor.Type != store.ActorSystem {
		t.Errorf("user.reactivated %+v, want one for ann, from suspended, for inactivity, by the system", reactivated)
	}
	// ann's sign-in counts from when it was: inactive_after later, she and
	// dave (who signed in at the same time) go again, not before.
	signedIn := time.Now().UTC()
	if n, err := SweepInactive(ctx, s, signedIn.Add(inactiveAfter-time.Minute), 0, log); n != 0 || err != nil {
		t.Errorf("sweep before inactive_after since ann signed in again: suspended %d, %v; want none", n, err)
	}
	if n, err := SweepInactive(ctx, s, signedIn.Add(inactiveAfter+time.Minute), 0, log); n != 2 || err != nil {
		t.Errorf("sweep inactive_after since ann signed in again: suspended %d, %v; want ann and dave", n, err)
	}
	if u := userStatus(t, s, ann.ID); u.Status != store.StatusSuspended {
		t.Errorf("ann inactive_after after her sign-in: %q, want suspended", u.Status)
	}
}

// A batch of sign-ins (DecideBatch) reactivates as one sign-in does.
func TestInactiveReactivatedInABatch(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) { o.MaxSeats = 5; o.InactiveAfter = inactiveAfter })
	ctx := t.Context()
	var users []string
	for _, ext := range []string{"ann", "bob"} {
		res, err := d.Decide(ctx, uuid.NewString(), login(ext, ext+"@acme.com"))
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, res.User.ID)
	}
	if n, err := SweepInactive(ctx, s, time.Now().Add(inactiveAfter+time.Hour), 0, testenv.Logger(t)); n != 2 || err != nil {
		t.Fatalf("sweep: %d, %v; want 2", n, err)
	}
	answers := d.DecideBatch(ctx, []Login{
		{ID: uuid.NewString(), Identity: login("ann", "ann@acme.com")},
		{ID: uuid.NewString(), Identity: login("bob", "bob@acme.com")},
		{ID: uuid.NewString(), Identity: login("cyd", "cyd@acme.com")},
	})
	for i, a := range answers {
		if a.Err != nil {
			t.Fatalf("login %d: %v", i, a.Err)
		}
		if a.Result.User == nil || a.Result.User.Status != store.StatusActive {
			t.Errorf("login %d: %+v, want an active user", i, a.Result)
		}
	}
	if seats, st := seatsAndStatuses(t, s); seats != 3 || st[store.StatusActive] != 3 {
		t.Errorf("seats_used %d, users %v; want 3 active users on 3 seats", seats, st)
	}
}

// Two replicas sweeping one database at once suspend each person exactly
// once: one event and one seat each.
func TestInactiveSweepRace(t *testing.T) {
	const people, sweepers = 30, 3
	s, d := heldWorld(t, func(o *store.Organization) { o.MaxSeats = people; o.InactiveAfter = inactiveAfter })
	ctx := t.Context()
	for i := range people {
		ext := fmt.Sprintf("p%02d", i)
		if _, err := d.Decide(ctx, uuid.NewString(), login(ext, ext+"@acme.com")); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(inactiveAfter + time.Hour)
	counts := make([]int, sweepers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range sweepers {
		wg.Go(func() {
			<-start
			// A small limit, so that the sweepers' runs interleave.
			for {
				n, err := SweepInactive(ctx, s, later, 4, testenv.Logger(t))
				if err != nil {
					t.Errorf("sweeper %d: %v", i, err)
					return
				}
				if n == 0 {
					return
				}
				counts[i] += n
			}
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != people {
		t.Errorf("sweepers suspended %v people, %d in all, want %d", counts, total, people)
	}
	suspended, _ := statusEvents(t, s)
	seen := map[string]int{}
	for _, e := range suspended {
		seen[e.User.ID]++
	}
	if len(seen) != people || len(suspended) != people {
		t.Errorf("%d user.suspended for %d people, want one each for %d", len(suspended), len(seen), people)
	}
	if seats, st := seatsAndStatuses(t, s); seats != 0 || st[store.StatusSuspended] != people {
		t.Errorf("seats_used %d, users %v; want 0 seats, everyone suspended", seats, st)
	}
}

// read runs fn in its own transaction and returns its result.
func read[T any](t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) (T, error)) (T, error) {
	t.Helper()
	var out T
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}
