package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

var batchTests = []subTest{
	{"LookupLogins", testLookupLogins},
	{"WriteGroup", testWriteGroup},
	{"WriteGroupRoleSource", testWriteGroupRoleSource},
	{"ReserveSeats", testReserveSeats},
}

// LookupLogins finds, for each login, its stored decision and the users
// of its identity and email (any case), and the organisation and its
// connections; an unknown organisation is no error.
func testLookupLogins(t *testing.T, s store.Store) {
	seed(t, s, 10)
	ada := createUser(t, s, user(orgA, connS, "ada", "ada@acme.example"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.RecordDecision(ctx, store.Decision{LoginID: "l-ada", OrganizationID: orgA, ConnectionID: connS, ExternalID: "ada",
			Outcome: "created", UserID: ada.ID, Result: []byte(`{"outcome":"created"}`)})
	})
	keys := []store.LoginKey{
		{LoginID: "l-ada", ConnectionID: connS, ExternalID: "ada", Email: "ada@acme.example"},
		{LoginID: "l-new", ConnectionID: connO, ExternalID: "ada-g", Email: "ADA@acme.example"},
		{LoginID: "l-none", ConnectionID: connO, ExternalID: "nobody"},
	}
	g, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.GroupLookup, error) {
		return tx.LookupLogins(ctx, orgA, false, keys)
	})
	if err != nil {
		t.Fatalf("LookupLogins: %v", err)
	}
	if !g.OrganizationFound || g.Organization.ID != orgA || len(g.Connections) != 2 || len(g.Logins) != 3 {
		t.Fatalf("LookupLogins: found %t %q, %d connections, %d logins", g.OrganizationFound, g.Organization.ID, len(g.Connections), len(g.Logins))
	}
	if d := g.Logins[0].Decision; d == nil || d.UserID != ada.ID || g.Logins[0].IdentityUserID != ada.ID || g.Logins[0].EmailUserID != ada.ID {
		t.Errorf("known login: %+v", g.Logins[0])
	}
	if l := g.Logins[1]; l.Decision != nil || l.IdentityUserID != "" || l.EmailUserID != ada.ID {
		t.Errorf("new identity, known email in another case: %+v", l)
	}
	if l := g.Logins[2]; l.Decision != nil || l.IdentityUserID != "" || l.EmailUserID != "" {
		t.Errorf("nobody: %+v", l)
	}
	for _, lock := range []bool{false, true} {
		g, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.GroupLookup, error) {
			return tx.LookupLogins(ctx, "no-such-org", lock, keys[2:])
		})
		if err != nil || g.OrganizationFound || len(g.Logins) != 1 {
			t.Errorf("unknown organisation (lock %t): %+v, %v", lock, g, err)
		}
	}
}

// WriteGroup writes users with their identities at the time given,
// reviews, audit, outbox and decisions; a duplicate rolls nothing in by
// itself (the caller rolls back) and reports ErrConflict.
func testWriteGroup(t *testing.T, s store.Store) {
	seed(t, s, 10)
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	p := user(orgA, connS, "grace", "grace@acme.example")
	p.CreatedAt = at
	w := store.GroupWrites{
		OrganizationID: orgA,
		Users: []store.NewUser{{User: p.User, Identity: store.Identity{OrganizationID: orgA, ConnectionID: connS,
			ExternalID: "grace", UserID: p.ID, LinkedBy: store.LinkedByCreated}}},
		Reviews: []store.RoleReview{{ID: uuid.NewString(), OrganizationID: orgA, UserID: p.ID, CurrentRole: "viewer",
			RequestedRole: "admin", LoginID: "l-grace"}},
		Outbox:    []store.OutboxMessage{{EventID: "e-grace", Subject: "jit.user.created." + orgA, Data: []byte(`{}`)}},
		Decisions: []store.Decision{{LoginID: "l-grace", OrganizationID: orgA, ConnectionID: connS, ExternalID: "grace", Outcome: "created", UserID: p.ID, Result: []byte(`{}`)}},
		Seats:     store.SeatReservation{Seats: 1},
	}
	o, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) { return tx.WriteGroup(ctx, w) })
	if err != nil || o.SeatsUsed != 1 {
		t.Fatalf("WriteGroup: %d seats used, %v", o.SeatsUsed, err)
	}
	u, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "grace")
	})
	if err != nil || u.ID != p.ID || !u.CreatedAt.Equal(at) || !u.UpdatedAt.Equal(at) {
		t.Errorf("created user: %+v, %v; want %s created at %s", u, err, p.ID, at)
	}
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.PendingRoleReview(ctx, p.ID, "admin")
	}); err != nil {
		t.Errorf("review: %v", err)
	}
	if _, err := s.Decision(t.Context(), "l-grace"); err != nil {
		t.Errorf("decision: %v", err)
	}
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) { return tx.WriteGroup(ctx, w) })
	wantErr(t, "WriteGroup again", err, store.ErrConflict)
	if got := seatsUsed(t, s, orgA); got != 1 {
		t.Errorf("seats after a conflicting group: %d, want 1", got)
	}

	// Her next sign-in (SeeIdentity) is her last login, and her identity's
	// last sighting.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return tx.SeeIdentity(ctx, orgA, connS, "grace") })
	u, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "grace")
	})
	if err != nil || !u.LastLoginAt.After(at) || !u.UpdatedAt.Equal(at) {
		t.Errorf("after a sign-in: last login %s, updated %s (%v); want the last login after %s, nothing updated", u.LastLoginAt, u.UpdatedAt, err, at)
	}
}

// The reservation takes all its seats or none, within max_seats, while the
// seats in use are IfUsed (when set), and without crossing NotCrossing
// (when set).
func testReserveSeats(t *testing.T, s store.Store) {
	seed(t, s, 10)
	reserve := func(r store.SeatReservation) (store.Organization, error) {
		return read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) {
			return tx.WriteGroup(ctx, store.GroupWrites{OrganizationID: orgA, Seats: r})
		})
	}
	used := func(n int) *int { return &n }
	steps := []struct {
		r    store.SeatReservation
		ok   bool
		want int
	}{
		{store.SeatReservation{Seats: 3}, true, 3},
		{store.SeatReservation{Seats: 2, IfUsed: used(2)}, false, 3},
		{store.SeatReservation{Seats: 2, IfUsed: used(3)}, true, 5},
		{store.SeatReservation{Seats: 3, NotCrossing: 8}, false, 5}, // 5 → 8 crosses
		{store.SeatReservation{Seats: 2, NotCrossing: 8}, true, 7},
		{store.SeatReservation{Seats: 4}, false, 7}, // past max_seats
		{store.SeatReservation{Seats: 3, NotCrossing: 2}, true, 10},
		{store.SeatReservation{Seats: 0}, true, 10}, // touches nothing
	}
	for i, st := range steps {
		o, err := reserve(st.r)
		if st.ok && (err != nil || (st.r.Seats > 0 && o.SeatsUsed != st.want)) {
			t.Errorf("step %d %+v: %d seats used, %v; want %d", i, st.r, o.SeatsUsed, err, st.want)
		}
		if !st.ok {
			wantErr(t, "a reservation that cannot hold", err, store.ErrSeatsExhausted)
		}
		if got := seatsUsed(t, s, orgA); got != st.want {
			t.Errorf("step %d: %d seats used, want %d", i, got, st.want)
		}
	}
}
