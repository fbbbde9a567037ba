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

func show(t *testing.T, s *postgres.Store, setting string) string {
	t.Helper()
	var v string
	if err := s.Pool().QueryRow(t.Context(), "SHOW "+setting).Scan(&v); err != nil {
		t.Fatalf("SHOW %s: %v", setting, err)
	}
	return v
}

// The session timeouts reach every connection, and a URL that sets one
// itself wins.
func TestSessionTimeoutsAreSet(t *testing.T) {
	dbURL := testenv.NewDatabase(t)
	opts := postgres.Options{LockTimeout: 1500 * time.Millisecond, StatementTimeout: 4 * time.Second, IdleInTxTimeout: 6 * time.Second}
	s := openWith(t, dbURL, opts)
	for setting, want := range map[string]string{"lock_timeout": "1500ms", "statement_timeout": "4s", "idle_in_transaction_session_timeout": "6s"} {
		if got := show(t, s, setting); got != want {
			t.Errorf("%s = %s, want %s", setting, got, want)
		}
	}
	s = openWith(t, dbURL+"&lock_timeout=9s", opts)
	if got := show(t, s, "lock_timeout"); got != "9s" {
		t.Errorf("lock_timeout with lock_timeout=9s in the URL = %s, want the URL's 9s", got)
	}
	s = openWith(t, dbURL, postgres.Options{})
	if got := show(t, s, "lock_timeout"); got != "0" {
		t.Errorf("lock_timeout without options = %s, want the server's default 0", got)
	}
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
