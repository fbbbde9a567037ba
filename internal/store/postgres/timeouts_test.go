package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitprov/jitprov/internal/store"
	"github.com/jitprov/jitprov/internal/store/postgres"
	"github.com/jitprov/jitprov/internal/testenv"
)

func openWith(t *testing.T, dbURL string, opts postgres.Options) *postgres.Store {
	t.Helper()
	opts.Logger = testenv.Logger(t)
	s, err := postgres.Open(t.Context(), dbURL, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// A client that stops in the middle of a decision — a frozen or
// partitioned provisioner holding an organisation's seat row — costs the
// others a bounded wait: a waiter on the row gives up after lock_timeout
// (a retryable ErrUnavailable, not a failure), and the server ends the
// frozen session after idle_in_transaction_session_timeout, which frees
// the row and rolls back what it had not committed.
func TestAFrozenTransactionIsBounded(t *testing.T) {
	dbURL := testenv.NewDatabase(t)
	opts := postgres.Options{LockTimeout: 300 * time.Millisecond, StatementTimeout: 5 * time.Second, IdleInTxTimeout: time.Second}
	frozen, s := openWith(t, dbURL, opts), openWith(t, dbURL, opts)
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{{ID: "acme", Name: "Acme", MaxSeats: 10,
		Roles: []string{"member", "admin"}, DefaultRole: "member", JITRoleCeiling: "member",
		UpdatePolicy: store.PreferIdP, LinkByEmail: store.LinkNever}}, nil); err != nil {
		t.Fatal(err)
	}
	takeSeat := func(st store.Store, then func()) error {
		return st.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.TakeSeat(ctx, "acme"); err != nil {
				return err
			}
			then()
			return nil
		})
	}

	holding, resume := make(chan struct{}), make(chan struct{})
	frozenDone := make(chan error, 1)
	go func() {
		frozenDone <- takeSeat(frozen, func() {
			close(holding)
			<-resume // frozen mid-transaction, holding acme's row
		})
	}()
	<-holding

	// A waiter gives up after the lock timeout, retryably.
	err := takeSeat(s, func() {})
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrContended) {
		t.Fatalf("TakeSeat behind a frozen transaction: %v, want ErrUnavailable and ErrContended (lock_timeout)", err)
	}
	// The server ends the frozen session; the row is free again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err = takeSeat(s, func() {}); err == nil {
			break
		}
		if !errors.Is(err, store.ErrUnavailable) || time.Now().After(deadline) {
			t.Fatalf("TakeSeat once the frozen session should be ended: %v", err)
		}
	}
	close(resume)
	if err := <-frozenDone; !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("the frozen transaction, resumed: %v, want ErrUnavailable (its session was ended)", err)
	}
	var used int
	if err := s.Pool().QueryRow(t.Context(), `SELECT seats_used FROM organizations WHERE id = 'acme'`).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if used != 1 {
		t.Errorf("seats_used = %d, want 1: the frozen transaction's seat rolled back, the other's committed", used)
	}
}

// The timeouts are the decision transaction's (SET LOCAL, so that they
// work behind a transaction-mode pooler): the session outside it keeps
// the server's, the role's or the URL's settings.
func TestTimeoutsDoNotLeakIntoTheSession(t *testing.T) {
	dbURL := testenv.NewDatabase(t)
	s := openWith(t, dbURL+"&statement_timeout=9000", postgres.Options{MaxConns: 1, LockTimeout: 1500 * time.Millisecond,
		StatementTimeout: 4 * time.Second, IdleInTxTimeout: 6 * time.Second})
	if _, err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Organization(ctx, "none")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for setting, want := range map[string]string{"lock_timeout": "0", "statement_timeout": "9s", "idle_in_transaction_session_timeout": "0"} {
		var got string
		if err := s.Pool().QueryRow(t.Context(), "SHOW "+setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s on the session after a decision = %s, want %s", setting, got, want)
		}
	}
}
