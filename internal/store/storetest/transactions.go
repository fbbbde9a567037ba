package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/jitprov/jitprov/internal/store"
)

var transactionTests = []subTest{
	{"ErrorRollsBack", testErrorRollsBack},
	{"PanicRollsBackAndPropagates", testPanicRollsBack},
	{"CanceledContextDoesNotCommit", testCanceledContext},
	{"CommitIsVisible", testCommitIsVisible},
}

// writeEverything does one of every write a decision does, for orgA.
func writeEverything(ctx context.Context, tx store.Tx, tag string) error {
	if _, err := tx.TakeSeat(ctx, orgA); err != nil {
		return err
	}
	u, err := create(ctx, tx, user(orgA, connS, tag+"@idp", tag+"@acme.example"))
	if err != nil {
		return err
	}
	if _, err := tx.CreateRoleReview(ctx, store.RoleReview{ID: uuid.NewString(), OrganizationID: orgA,
		UserID: u.ID, CurrentRole: "viewer", RequestedRole: "editor", LoginID: "login-" + tag}); err != nil {
		return err
	}
	if err := tx.AppendOutbox(ctx, msg("evt-"+tag)); err != nil {
		return err
	}
	result, _ := json.Marshal(map[string]string{"login_id": "login-" + tag})
	return tx.RecordDecision(ctx, store.Decision{LoginID: "login-" + tag, OrganizationID: orgA, ConnectionID: connS,
		ExternalID: tag + "@idp", Outcome: "created", UserID: u.ID, Result: result, DecidedAt: timestamp()})
}

// checkNothingWritten checks that no trace of writeEverything(tag) is
// visible.
func checkNothingWritten(t *testing.T, s store.Store, tag string) {
	t.Helper()
	if got := seatsUsed(t, s, orgA); got != 0 {
		t.Errorf("seats used: got %d, want 0", got)
	}
	_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, tag+"@idp")
	})
	wantErr(t, "UserByIdentity", err, store.ErrNotFound)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByEmail(ctx, orgA, tag+"@acme.example")
	})
	wantErr(t, "UserByEmail", err, store.ErrNotFound)
	_, err = read(t, s, func(ctx context.Context, tx store.Tx) (store.Decision, error) {
		return tx.Decision(ctx, "login-"+tag)
	})
	wantErr(t, "Decision", err, store.ErrNotFound)
	if got := relay(t, s, 100); len(got) != 0 {
		t.Errorf("outbox: got %v, want nothing", eventIDs(got))
	}
	// The user id is the caller's, so the same writes must now succeed —
	// nothing half-written blocks them (the role review included).
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return writeEverything(ctx, tx, tag) })
	if got := seatsUsed(t, s, orgA); got != 1 {
		t.Errorf("seats used after redoing the writes: got %d, want 1", got)
	}
}

func testErrorRollsBack(t *testing.T, s store.Store) {
	seed(t, s, 10)
	errBoom := errors.New("boom")
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if err := writeEverything(ctx, tx, "rolled-back"); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("InTx: got error %v, want fn's error", err)
	}
	checkNothingWritten(t, s, "rolled-back")
}

type panicValue struct{ msg string }

func testPanicRollsBack(t *testing.T, s store.Store) {
	seed(t, s, 10)
	want := &panicValue{"fn panicked"}
	var returned error
	recovered := func() (r any) {
		defer func() { r = recover() }()
		returned = s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if err := writeEverything(ctx, tx, "panicked"); err != nil {
				t.Errorf("writes inside the transaction: %v", err)
			}
			panic(want)
		})
		return nil
	}()
	if recovered != want {
		t.Errorf("InTx with a panicking fn: recovered %v and InTx returned %v; want the panic to propagate unchanged",
			recovered, returned)
	}
	checkNothingWritten(t, s, "panicked")
}

func testCanceledContext(t *testing.T, s store.Store) {
	seed(t, s, 10)
	ctx, cancel := context.WithCancel(t.Context())
	err := s.InTx(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := writeEverything(ctx, tx, "canceled"); err != nil {
			t.Errorf("writes inside the transaction: %v", err)
		}
		cancel()
		return nil
	})
	if err == nil {
		t.Errorf("InTx whose context was canceled before commit: got nil error, want the commit to fail")
	}
	checkNothingWritten(t, s, "canceled")
}

func testCommitIsVisible(t *testing.T, s store.Store) {
	seed(t, s, 10)
	inTx(t, s, func(ctx context.Context, tx store.Tx) error { return writeEverything(ctx, tx, "committed") })
	if got := seatsUsed(t, s, orgA); got != 1 {
		t.Errorf("seats used: got %d, want 1", got)
	}
	u, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "committed@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity: %v", err)
	}
	if _, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.RoleReview, error) {
		return tx.PendingRoleReview(ctx, u.ID, "editor")
	}); err != nil {
		t.Errorf("PendingRoleReview: %v", err)
	}
	d, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.Decision, error) {
		return tx.Decision(ctx, "login-committed")
	})
	if err != nil {
		t.Errorf("Decision: %v", err)
	} else if d.UserID != u.ID {
		t.Errorf("Decision: got user %q, want %q", d.UserID, u.ID)
	}
	checkMessages(t, "outbox", relay(t, s, 100), []store.OutboxMessage{msg("evt-committed")})
}
