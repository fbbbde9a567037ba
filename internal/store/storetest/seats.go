package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
)

var seatTests = []subTest{
	{"TakeSeatUntilMax", testTakeSeatUntilMax},
	{"ZeroSeats", testZeroSeats},
	{"RolledBackSeatIsFree", testRolledBackSeat},
	{"RaisingMaxSeats", testRaisingMaxSeats},
}

func takeSeat(t *testing.T, s store.Store, orgID string) (store.Organization, error) {
	t.Helper()
	return read(t, s, func(ctx context.Context, tx store.Tx) (store.Organization, error) {
		return tx.TakeSeat(ctx, orgID)
	})
}

// wantExhausted checks a TakeSeat that must fail, and the seat counts it
// returns with the error.
func wantExhausted(t *testing.T, s store.Store, orgID string, used, max int) {
	t.Helper()
	o, err := takeSeat(t, s, orgID)
	wantErr(t, "TakeSeat with every seat used", err, store.ErrSeatsExhausted)
	if o.ID != orgID || o.SeatsUsed != used || o.MaxSeats != max {
		t.Errorf("TakeSeat with every seat used: got organisation %q with %d/%d seats, want %q with %d/%d",
			o.ID, o.SeatsUsed, o.MaxSeats, orgID, used, max)
	}
	if got := seatsUsed(t, s, orgID); got != used {
		t.Errorf("seats used after a refused TakeSeat: got %d, want %d", got, used)
	}
}

func testTakeSeatUntilMax(t *testing.T, s store.Store) {
	seed(t, s, 3)
	// Two seats in one transaction, one in another.
	inTx(t, s, func(ctx context.Context, tx store.Tx) error {
		for want := 1; want <= 2; want++ {
			o, err := tx.TakeSeat(ctx, orgA)
			if err != nil {
				return err
			}
			if o.ID != orgA || o.SeatsUsed != want || o.MaxSeats != 3 {
				t.Errorf("TakeSeat %d: got %q with %d/%d seats, want %q with %d/3", want, o.ID, o.SeatsUsed, o.MaxSeats, orgA, want)
			}
		}
		return nil
	})
	o, err := takeSeat(t, s, orgA)
	if err != nil {
		t.Fatalf("TakeSeat 3: %v", err)
	}
	if o.SeatsUsed != 3 {
		t.Errorf("TakeSeat 3: got %d seats used, want 3", o.SeatsUsed)
	}
	// The returned organisation is the whole organisation.
	want := org(orgA, 3)
	want.SeatsUsed = 3
	if !reflect.DeepEqual(normOrg(o), normOrg(want)) {
		t.Errorf("TakeSeat: got organisation %+v, want %+v", o, want)
	}

	wantExhausted(t, s, orgA, 3, 3)
	wantExhausted(t, s, orgA, 3, 3)

	// Seats are per organisation.
	if got := seatsUsed(t, s, orgB); got != 0 {
		t.Errorf("seats used in %q: got %d, want 0", orgB, got)
	}
	if _, err := takeSeat(t, s, orgB); err != nil {
		t.Errorf("TakeSeat in %q: %v", orgB, err)
	}
}

func testZeroSeats(t *testing.T, s store.Store) {
	seed(t, s, 0)
	wantExhausted(t, s, orgA, 0, 0)
}

func testRolledBackSeat(t *testing.T, s store.Store) {
	seed(t, s, 1)
	err := s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.TakeSeat(ctx, orgA); err != nil {
			return err
		}
		// The last seat is taken inside this transaction.
		_, err := tx.TakeSeat(ctx, orgA)
		wantErr(t, "TakeSeat past max inside a transaction", err, store.ErrSeatsExhausted)
		return errRollback
	})
	wantErr(t, "InTx", err, errRollback)
	if got := seatsUsed(t, s, orgA); got != 0 {
		t.Errorf("seats used after a rolled-back TakeSeat: got %d, want 0", got)
	}
	if _, err := takeSeat(t, s, orgA); err != nil {
		t.Errorf("TakeSeat after the rollback: %v", err)
	}
	wantExhausted(t, s, orgA, 1, 1)
}

func testRaisingMaxSeats(t *testing.T, s store.Store) {
	seed(t, s, 1)
	if _, err := takeSeat(t, s, orgA); err != nil {
		t.Fatalf("TakeSeat: %v", err)
	}
	wantExhausted(t, s, orgA, 1, 1)
	if err := s.ApplyOrganizations(t.Context(), []store.Organization{org(orgA, 2)}, nil); err != nil {
		t.Fatalf("ApplyOrganizations: %v", err)
	}
	o, err := takeSeat(t, s, orgA)
	if err != nil {
		t.Fatalf("TakeSeat after raising max_seats: %v", err)
	}
	if o.SeatsUsed != 2 || o.MaxSeats != 2 {
		t.Errorf("TakeSeat after raising max_seats: got %d/%d seats, want 2/2", o.SeatsUsed, o.MaxSeats)
	}
	wantExhausted(t, s, orgA, 2, 2)
}
