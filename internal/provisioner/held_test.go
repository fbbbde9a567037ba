package provisioner

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/events"
	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
	"github.com/jitprov/jitprov/schemas"
)

func heldWorld(t *testing.T, edit func(*store.Organization)) (*postgres.Store, *Decider) {
	t.Helper()
	s, _ := testenv.Store(t)
	o := baseOrg()
	edit(&o)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o},
		[]store.Connection{{OrganizationID: "acme", ID: "okta", Protocol: "saml"}}); err != nil {
		t.Fatal(err)
	}
	return s, NewDecider(s, testenv.Logger(t))
}

func seatsAndStatuses(t *testing.T, s *postgres.Store) (seats int, statuses map[string]int) {
	t.Helper()
	ctx := t.Context()
	if err := s.Pool().QueryRow(ctx, `SELECT seats_used FROM organizations WHERE id = 'acme'`).Scan(&seats); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Pool().Query(ctx, `SELECT status, count(*) FROM users WHERE org_id = 'acme' GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	statuses = map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			t.Fatal(err)
		}
		statuses[st] = n
	}
	return seats, statuses
}

// checkStoredHeld checks that the stored decision of a held login is the
// answer sent, valid provisioning.result v2 and not v1.
func checkStoredHeld(t *testing.T, s *postgres.Store, loginID string) {
	t.Helper()
	d, err := s.Decision(t.Context(), loginID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Outcome != string(events.OutcomeHeld) || d.UserID == "" {
		t.Errorf("stored decision %s/%s user %q, want held with the user", d.Outcome, d.Reason, d.UserID)
	}
	if err := schemas.Validate("provisioning.result/v2.json", d.Result); err != nil {
		t.Errorf("stored result breaks provisioning.result v2: %v", err)
	}
	if err := schemas.Validate("provisioning.result/v1.json", d.Result); err == nil {
		t.Error("stored held result is valid v1, which cannot say held")
	}
}

// new_people: hold holds a new person even with seats free: a held user,
// their identity linked, no seat, no user.created, a signup.held alert;
// their next login is held again, and changes nothing.
func TestNewPeopleHoldHoldsWithFreeSeats(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) { o.NewPeople = store.NewPeopleHold })
	ctx := t.Context()
	loginID := uuid.NewString()
	res, err := d.Decide(ctx, loginID, login("ext-1", "ann@acme.com"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != events.OutcomeHeld || res.Reason != events.ReasonApprovalRequired || res.User == nil || res.User.Status != store.StatusHeld {
		t.Fatalf("got %+v, want held/approval_required with a held user", res)
	}
	if got := events.ResultType(res); got != events.TypeProvisioningResultV2 {
		t.Errorf("answered as %s, want v2", got)
	}
	checkStoredHeld(t, s, loginID)
	seats, st := seatsAndStatuses(t, s)
	if seats != 0 || st[store.StatusHeld] != 1 || len(st) != 1 {
		t.Errorf("seats_used %d, users %v; want 0 seats and one held user", seats, st)
	}
	if got, want := outboxTypes(t, s), []string{string(events.TypeSignupHeld)}; !slices.Equal(got, want) {
		t.Errorf("outbox %v, want %v (no user.created before approval)", got, want)
	}
	err = s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.UserByIdentity(ctx, "acme", "okta", "ext-1")
		if err == nil && u.ID != res.User.ID {
			t.Errorf("identity linked to %s, want the held user %s", u.ID, res.User.ID)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the held person's identity is not linked: %v", err)
	}

	again, err := d.Decide(ctx, uuid.NewString(), login("ext-1", "ann@acme.com"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Outcome != events.OutcomeHeld || again.User == nil || again.User.ID != res.User.ID {
		t.Errorf("the held person's next login: %+v, want held again as the same user", again)
	}
	if seats, st := seatsAndStatuses(t, s); seats != 0 || st[store.StatusHeld] != 1 {
		t.Errorf("after the next login: seats_used %d, users %v", seats, st)
	}
	if got := outboxTypes(t, s); len(got) != 1 {
		t.Errorf("the next login emitted more: %v", got)
	}
}

// An initial admin named by the organisations file is not held by
// new_people: hold, or nobody could approve anyone.
func TestNewPeopleHoldLetsTheInitialAdminIn(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) {
		o.NewPeople = store.NewPeopleHold
		o.InitialAdmins = []string{"boss@acme.com"}
	})
	res, err := d.Decide(t.Context(), uuid.NewString(), login("ext-boss", "boss@acme.com"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != events.OutcomeCreated || res.User.Role != "admin" {
		t.Fatalf("initial admin got %+v, want created as admin", res)
	}
	if seats, _ := seatsAndStatuses(t, s); seats != 1 {
		t.Errorf("seats_used %d, want 1", seats)
	}
}

// when_full: hold holds a new person who finds no seat, instead of
// turning them away; the alert says why.
func TestWhenFullHoldHoldsWithoutSeat(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) { o.MaxSeats, o.WhenFull = 1, store.WhenFullHold })
	ctx := t.Context()
	first, err := d.Decide(ctx, uuid.NewString(), login("ext-1", "ann@acme.com"))
	if err != nil || first.Outcome != events.OutcomeCreated {
		t.Fatalf("first: %+v, %v", first, err)
	}
	loginID := uuid.NewString()
	res, err := d.Decide(ctx, loginID, login("ext-2", "bob@acme.com"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != events.OutcomeHeld || res.Reason != events.ReasonSeatsExhausted {
		t.Fatalf("got %+v, want held/seats_exhausted", res)
	}
	checkStoredHeld(t, s, loginID)
	if seats, st := seatsAndStatuses(t, s); seats != 1 || st[store.StatusActive] != 1 || st[store.StatusHeld] != 1 {
		t.Errorf("seats_used %d, users %v", seats, st)
	}
	if got, want := outboxTypes(t, s), []string{string(events.TypeUserCreated), string(events.TypeSignupHeld)}; !slices.Equal(got, want) {
		t.Errorf("outbox %v, want %v (no seats.exhausted: nobody was turned away)", got, want)
	}
}

// A burst of 200 first logins against 10 free seats with when_full: hold:
// exactly 10 active with a seat, 190 held, and seats_used never above
// max_seats meanwhile.
func TestWhenFullHoldBurst(t *testing.T) {
	s, d := heldWorld(t, func(o *store.Organization) { o.MaxSeats, o.WhenFull = 10, store.WhenFullHold })
	ctx := t.Context()
	const n = 200
	var over atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // watch seats_used while the burst runs
		defer close(watched)
		for {
			var used int
			if err := s.Pool().QueryRow(ctx, `SELECT seats_used FROM organizations WHERE id = 'acme'`).Scan(&used); err == nil && used > 10 {
				over.Store(int64(used))
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	var wg sync.WaitGroup
	results := make([]events.ProvisioningResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = d.Decide(ctx, uuid.NewString(), login(uuid.NewString(), ""))
		})
	}
	wg.Wait()
	close(stop)
	<-watched
	got := map[events.Outcome]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		got[results[i].Outcome]++
	}
	if got[events.OutcomeCreated] != 10 || got[events.OutcomeHeld] != 190 || len(got) != 2 {
		t.Errorf("outcomes %v, want 10 created and 190 held", got)
	}
	seats, st := seatsAndStatuses(t, s)
	if seats != 10 || st[store.StatusActive] != 10 || st[store.StatusHeld] != 190 {
		t.Errorf("seats_used %d, users %v; want 10 seats, 10 active, 190 held", seats, st)
	}
	if v := over.Load(); v != 0 {
		t.Errorf("seats_used reached %d, above max_seats 10", v)
	}
	types := outboxTypes(t, s)
	count := map[string]int{}
	for _, ty := range types {
		count[ty]++
	}
	if count[string(events.TypeSignupHeld)] != 190 || count[string(events.TypeUserCreated)] != 10 || count[string(events.TypeSeatsExhausted)] != 0 {
		t.Errorf("outbox counts %v, want 190 signup.held, 10 user.created, no seats.exhausted", count)
	}
}
