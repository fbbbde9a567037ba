package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// Expiry without SCIM: Tx.SuspendInactive and the fields it reads and
// writes.
var inactiveTests = []subTest{
	{"InactiveAfterStored", testInactiveAfterStored},
	{"SuspendInactive", testSuspendInactive},
	{"SuspendInactiveLimit", testSuspendInactiveLimit},
	{"SuspendInactiveRace", testSuspendInactiveRace},
}

// An organisation's InactiveAfter is stored to the second, and applying the
// file again changes it.
func testInactiveAfterStored(t *testing.T, s store.Store) {
	o := org(orgA, 5)
	o.InactiveAfter = 90 * 24 * time.Hour
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o, org(orgB, 5)}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	if got := getOrg(t, s, orgA).InactiveAfter; got != o.InactiveAfter {
		t.Errorf("InactiveAfter: got %s, want %s", got, o.InactiveAfter)
	}
	if got := getOrg(t, s, orgB).InactiveAfter; got != 0 {
		t.Errorf("InactiveAfter left out: got %s, want 0", got)
	}
	o.InactiveAfter = 0
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{o}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	orgs, err := s.Organizations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(orgs, func(x store.Organization) bool { return x.ID == orgA }); i < 0 || orgs[i].InactiveAfter != 0 {
		t.Errorf("Organizations after turning inactive_after off: %+v", orgs)
	}
}

// suspendInactive runs SuspendInactive in its own transaction.
func suspendInactive(t *testing.T, s store.Store, orgID string, cutoff time.Time, limit int) []store.User {
	t.Helper()
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.User, error) {
		return tx.SuspendInactive(ctx, orgID, cutoff, limit)
	})
	if err != nil {
		t.Fatalf("SuspendInactive: %v", err)
	}
	return got
}

func ids(users []store.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	slices.Sort(out)
	return out
}

// Only active people created by JIT and not managed by SCIM, unseen since
// the cutoff, are suspended — with the reason inactive, which an admin's
// status change clears — and nothing else moves.
func testSuspendInactive(t *testing.T, s store.Store) {
	seed(t, s, 10)
	now := time.Now().UTC()
	stale := createUser(t, s, user(orgA, connS, "stale", "stale@acme.example"))
	admin := user(orgA, connS, "by-admin", "by-admin@acme.example")
	admin.CreatedBy = store.CreatedByAdmin
	byAdmin := createUser(t, s, admin)
	scim := user(orgA, connS, "scim", "scim@acme.example")
	scim.SCIM.Managed = true
	scimUser := createUser(t, s, scim)
	if !scimUser.SCIM.Managed || stale.SCIM.Managed {
		t.Errorf("SCIMManaged as created: %v and %v, want true and false", scimUser.SCIM.Managed, stale.SCIM.Managed)
	}
	recent := createUser(t, s, user(orgA, connS, "recent", "recent@acme.example"))
	if err := recordLogin(t, s, store.Login{OrganizationID: orgA, ConnectionID: connS, ExternalID: "recent",
		UserID: recent.ID, At: now.Add(2 * time.Hour)}); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	held := user(orgA, connS, "held", "held@acme.example")
	held.Status = store.StatusHeld
	heldUser := createUser(t, s, held)
	suspended := createUser(t, s, user(orgA, connS, "suspended", "suspended@acme.example"))
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.SetUserStatus(ctx, orgA, suspended.ID, store.StatusSuspended)
		return err
	})
	other := createUser(t, s, user(orgB, connS, "stale", "stale@globex.example"))
	seats := seatsUsed(t, s, orgA)

	// Not before the threshold: everybody signed in (was created) after
	// the cutoff.
	if got := suspendInactive(t, s, orgA, now.Add(-time.Hour), 100); len(got) != 0 {
		t.Errorf("SuspendInactive before anyone is inactive: suspended %v", ids(got))
	}
	got := suspendInactive(t, s, orgA, now.Add(time.Hour), 100)
	if len(got) != 1 || got[0].ID != stale.ID {
		t.Fatalf("SuspendInactive: suspended %v, want only %s", ids(got), stale.ID)
	}
	if got[0].Status != store.StatusSuspended || got[0].SuspendedReason != store.SuspendedInactive {
		t.Errorf("SuspendInactive returned status %q reason %q, want suspended, inactive", got[0].Status, got[0].SuspendedReason)
	}
	if u, err := s.User(t.Context(), orgA, stale.ID); err != nil || u.Status != store.StatusSuspended || u.SuspendedReason != store.SuspendedInactive {
		t.Errorf("User after SuspendInactive: %+v, %v", u, err)
	}
	for _, u := range []store.User{byAdmin, scimUser, recent, heldUser, suspended} {
		now, err := s.User(t.Context(), orgA, u.ID)
		if err != nil || now.Status != u.Status && u.ID != suspended.ID || now.SuspendedReason != "" {
			t.Errorf("user %s (%s) after SuspendInactive: status %q reason %q, %v; want untouched", u.ID, u.Email, now.Status, now.SuspendedReason, err)
		}
	}
	if u, err := s.User(t.Context(), orgB, other.ID); err != nil || u.Status != store.StatusActive {
		t.Errorf("user of another organisation: %+v, %v; want active", u, err)
	}
	if n := seatsUsed(t, s, orgA); n != seats {
		t.Errorf("seats used moved from %d to %d: seats are the caller's", seats, n)
	}
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) ([]store.User, error) {
		return tx.SuspendInactive(ctx, "nowhere", now.Add(time.Hour), 100)
	})
	wantErr(t, "SuspendInactive of an unknown organisation", err, store.ErrNotFound)
	// Once suspended, not again.
	if got := suspendInactive(t, s, orgA, now.Add(time.Hour), 100); len(got) != 0 {
		t.Errorf("SuspendInactive again: suspended %v", ids(got))
	}
	// Any other change of status is an admin's, and clears the reason.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		u, err := tx.SetUserStatus(ctx, orgA, stale.ID, store.StatusActive)
		if err == nil && (u.Status != store.StatusActive || u.SuspendedReason != "") {
			t.Errorf("SetUserStatus active: status %q reason %q, want active and none", u.Status, u.SuspendedReason)
		}
		return err
	})
	// A later sign-in keeps them.
	later := now.Add(3 * time.Hour)
	if err := recordLogin(t, s, store.Login{OrganizationID: orgA, ConnectionID: connS, ExternalID: "stale",
		UserID: stale.ID, At: later}); err != nil {
		t.Fatalf("RecordLogin: %v", err)
	}
	// (recent, who signed in before that, goes now.)
	if got := suspendInactive(t, s, orgA, later.Add(-time.Minute), 100); !slices.Equal(ids(got), []string{recent.ID}) {
		t.Errorf("SuspendInactive after a sign-in: suspended %v, want only %s", ids(got), recent.ID)
	}
	if got := suspendInactive(t, s, orgA, later.Add(time.Minute), 100); !slices.Equal(ids(got), []string{stale.ID}) {
		t.Errorf("SuspendInactive after the sign-in aged: suspended %v, want %s", ids(got), stale.ID)
	}
}

// One call suspends at most limit users, longest unseen first.
func testSuspendInactiveLimit(t *testing.T, s store.Store) {
	seed(t, s, 10)
	now := time.Now().UTC()
	var users []store.User
	for i := range 5 {
		u := createUser(t, s, user(orgA, connS, fmt.Sprintf("p%d", i), fmt.Sprintf("p%d@acme.example", i)))
		// p0 signed in last, p4 first.
		if err := recordLogin(t, s, store.Login{OrganizationID: orgA, ConnectionID: connS, ExternalID: fmt.Sprintf("p%d", i),
			UserID: u.ID, At: now.Add(time.Duration(10-i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	cutoff := now.Add(time.Hour)
	first := suspendInactive(t, s, orgA, cutoff, 2)
	if want := ids(users[3:]); !slices.Equal(ids(first), want) {
		t.Errorf("SuspendInactive limit 2: suspended %v, want the two longest unseen %v", ids(first), want)
	}
	if got := suspendInactive(t, s, orgA, cutoff, 0); len(got) != 0 {
		t.Errorf("SuspendInactive limit 0: suspended %v", ids(got))
	}
	rest := suspendInactive(t, s, orgA, cutoff, 100)
	if want := ids(users[:3]); !slices.Equal(ids(rest), want) {
		t.Errorf("SuspendInactive: suspended %v, want the rest %v", ids(rest), want)
	}
}

// Sweeps running at once, each in its own transaction, suspend every
// inactive user exactly once between them.
func testSuspendInactiveRace(t *testing.T, s store.Store) {
	const people, sweeps = 40, 4
	seed(t, s, people)
	for i := range people {
		createUser(t, s, user(orgA, connS, fmt.Sprintf("r%d", i), fmt.Sprintf("r%d@acme.example", i)))
	}
	cutoff := time.Now().UTC().Add(time.Hour)
	got := make([][]store.User, sweeps)
	errs := race(sweeps, func(i int) error {
		return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			var err error
			got[i], err = tx.SuspendInactive(ctx, orgA, cutoff, 15)
			return err
		})
	})
	seen := map[string]int{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("sweep %d: %v", i, err)
		}
		for _, u := range got[i] {
			seen[u.ID]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("user %s suspended by %d sweeps, want 1", id, n)
		}
	}
	// The sweeps together took at most sweeps×15; a sweep may find the
	// rest locked and leave them, but a later one takes every one left.
	rest := suspendInactive(t, s, orgA, cutoff, store.MaxInactivePerSweep)
	for _, u := range rest {
		seen[u.ID]++
	}
	if len(seen) != people {
		t.Errorf("suspended %d distinct users, want %d", len(seen), people)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("user %s suspended %d times, want once", id, n)
		}
	}
}
