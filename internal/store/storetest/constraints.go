package storetest

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

var constraintTests = []subTest{
	{"DuplicateExternalID", testDuplicateExternalID},
	{"DuplicateEmailIgnoresCase", testDuplicateEmail},
	{"DuplicateEventID", testDuplicateEventID},
	{"ConflictRollsBackTheTransaction", testConflictRollsBack},
	{"NotFound", testNotFound},
}

func testDuplicateExternalID(t *testing.T, s store.Store) {
	seed(t, s, 10)
	first := createUser(t, s, user(orgA, connS, "dup@idp", "first@acme.example"))

	// Another user (new id, new email) with the same identity.
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return create(ctx, tx, user(orgA, connS, "dup@idp", "second@acme.example"))
	})
	wantErr(t, "CreateUser with a taken (organisation, connection, external id)", err, store.ErrConflict)

	// The same external id is another identity on another connection or in
	// another organisation.
	createUser(t, s, user(orgA, connO, "dup@idp", "third@acme.example"))
	createUser(t, s, user(orgB, connS, "dup@idp", "first@acme.example"))

	// Linking a taken identity to another user, or again to its own,
	// conflicts too.
	other := createUser(t, s, user(orgA, connS, "other@idp", "other@acme.example"))
	for _, to := range []string{other.ID, first.ID} {
		_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Identity, error) {
			return tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connS, ExternalID: "dup@idp",
				UserID: to, LinkedBy: store.LinkedByAdmin})
		})
		wantErr(t, "LinkIdentity of a taken identity", err, store.ErrConflict)
	}

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "dup@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity: %v", err)
	}
	if got.ID != first.ID {
		t.Errorf("UserByIdentity after refused duplicates: got user %s, want the first %s", got.ID, first.ID)
	}
}

func testDuplicateEmail(t *testing.T, s store.Store) {
	seed(t, s, 10)
	first := createUser(t, s, user(orgA, connS, "bob@idp", "Bob@Example.com"))

	for _, email := range []string{"Bob@Example.com", "bob@example.com", "BOB@EXAMPLE.COM"} {
		_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
			return create(ctx, tx, user(orgA, connO, "bob-"+email, email))
		})
		wantErr(t, "CreateUser with taken email "+email, err, store.ErrConflict)
	}

	// The same email in another organisation is another person's.
	createUser(t, s, user(orgB, connS, "bob@idp", "bob@example.com"))

	// Changing another user's email to a taken one, in any case, conflicts.
	other := createUser(t, s, user(orgA, connS, "robert@idp", "robert@example.com"))
	other.Email = "BOB@example.com"
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UpdateUser(ctx, other)
	})
	wantErr(t, "UpdateUser to a taken email", err, store.ErrConflict)

	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, "bob@example.com")
	})
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if got.ID != first.ID || got.Email != "Bob@Example.com" {
		t.Errorf("UserByEmail after refused duplicates: got user %s <%s>, want %s <%s>", got.ID, got.Email, first.ID, first.Email)
	}
}

func testDuplicateEventID(t *testing.T, s store.Store) {
	appendOutbox(t, s, msg("evt-1"))
	// Two rows with one event id would reach NATS under one Nats-Msg-Id.
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		return tx.AppendOutbox(ctx, msg("evt-2"), msg("evt-1"))
	})
	wantErr(t, "AppendOutbox with a duplicate event id", err, store.ErrConflict)
	// evt-2 went down with its transaction.
	checkMessages(t, "outbox after a refused duplicate", relay(t, s, 100), []store.OutboxMessage{msg("evt-1")})
}

// A conflict inside a decision fails the whole transaction: the seat taken
// before it is given back, so a retry starts from a clean state.
func testConflictRollsBack(t *testing.T, s store.Store) {
	seed(t, s, 10)
	createUser(t, s, user(orgA, connS, "dup@idp", "dup@acme.example"))
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, orgA); err != nil {
			return err
		}
		if err := tx.AppendOutbox(ctx, msg("evt-lost")); err != nil {
			return err
		}
		_, err := create(ctx, tx, user(orgA, connS, "dup@idp", "new@acme.example"))
		return err
	})
	wantErr(t, "InTx whose CreateUser conflicts", err, store.ErrConflict)
	if got := seatsUsed(t, s, orgA); got != 0 {
		t.Errorf("seats used after a conflicting transaction: got %d, want 0", got)
	}
	if got := relay(t, s, 100); len(got) != 0 {
		t.Errorf("outbox after a conflicting transaction: got %v, want nothing", eventIDs(got))
	}
}

func testNotFound(t *testing.T, s store.Store) {
	seed(t, s, 10)
	u := createUser(t, s, user(orgA, connS, "known@idp", "known@acme.example"))
	missingUser := user(orgA, connS, "missing@idp", "missing@acme.example")

	for _, c := range []struct {
		name string
		fn   func(ctx context.Context, tx store.Tx) error
	}{
		{"Organization", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Organization(ctx, "no-such-org")
			return err
		}},
		{"Connection/unknown connection", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Connection(ctx, orgA, "no-such-connection")
			return err
		}},
		{"Connection/unknown organisation", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Connection(ctx, "no-such-org", connS)
			return err
		}},
		{"UserByIdentity", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UserByIdentity(ctx, orgA, connS, "missing@idp")
			return err
		}},
		{"UserByIdentity/unknown organisation", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UserByIdentity(ctx, "no-such-org", connS, "known@idp")
			return err
		}},
		{"UserByEmail", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UserByEmail(ctx, orgA, "missing@acme.example")
			return err
		}},
		{"UserByEmail/unknown organisation", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UserByEmail(ctx, "no-such-org", "known@acme.example")
			return err
		}},
		{"UpdateUser", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UpdateUser(ctx, missingUser.User)
			return err
		}},
		{"LinkIdentity/unknown user", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: connO, ExternalID: "new@idp",
				UserID: uuid.NewString(), LinkedBy: store.LinkedByAdmin})
			return err
		}},
		{"LinkIdentity/user of another organisation", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgB, ConnectionID: connS, ExternalID: "new@idp",
				UserID: u.ID, LinkedBy: store.LinkedByAdmin})
			return err
		}},
		{"LinkIdentity/unknown connection", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.LinkIdentity(ctx, store.Identity{OrganizationID: orgA, ConnectionID: "no-such-connection",
				ExternalID: "new@idp", UserID: u.ID, LinkedBy: store.LinkedByAdmin})
			return err
		}},
		{"UnlinkIdentity", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.UnlinkIdentity(ctx, orgA, connS, "missing@idp")
			return err
		}},
		{"SeeIdentity", func(ctx context.Context, tx store.Tx) error {
			return tx.SeeIdentity(ctx, orgA, connS, "missing@idp")
		}},
		{"PendingRoleReview/unknown user", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.PendingRoleReview(ctx, uuid.NewString(), "editor")
			return err
		}},
		{"PendingRoleReview/no review", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.PendingRoleReview(ctx, u.ID, "editor")
			return err
		}},
		{"Decision", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.Decision(ctx, "no-such-login")
			return err
		}},
		{"TakeSeat", func(ctx context.Context, tx store.Tx) error {
			_, err := tx.TakeSeat(ctx, "no-such-org")
			return err
		}},
	} {
		err := s.InTx(t.Context(), c.fn)
		wantErr(t, c.name, err, store.ErrNotFound)
	}
}
