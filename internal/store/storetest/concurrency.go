package storetest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/jitprov/jitprov/internal/store"
)

var concurrencyTests = []subTest{
	{"SeatRace", testSeatRace},
	{"SameIdentityRace/SeatThenCreate", func(t *testing.T, s store.Store) { testSameIdentityRace(t, s, true) }},
	{"SameIdentityRace/CreateThenSeat", func(t *testing.T, s store.Store) { testSameIdentityRace(t, s, false) }},
	{"LockedLookupsSerialiseUpdates", testLockedLookups},
}

// race runs fn(i) for i in [0, n) in n goroutines released together, and
// returns their errors.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// A thousand simultaneous first logins of distinct people against fifty
// seats, each in its own transaction: exactly fifty get in, and the
// counter matches the users.
func testSeatRace(t *testing.T, s store.Store) {
	const people, seats = 1000, 50
	seed(t, s, seats)
	users := make([]person, people)
	for i := range users {
		users[i] = user(orgA, connS, fmt.Sprintf("person-%03d@idp", i), fmt.Sprintf("person-%03d@acme.example", i))
	}
	errs := race(people, func(i int) error {
		return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if _, err := tx.TakeSeat(ctx, orgA); err != nil {
				return err
			}
			_, err := create(ctx, tx, users[i])
			return err
		})
	})

	var admitted []int
	for i, err := range errs {
		switch {
		case err == nil:
			admitted = append(admitted, i)
		case errors.Is(err, store.ErrSeatsExhausted):
		default:
			t.Errorf("login %d: got error %v, want nil or ErrSeatsExhausted", i, err)
		}
	}
	if len(admitted) != seats {
		t.Errorf("got %d logins admitted, want exactly %d", len(admitted), seats)
	}
	if got := seatsUsed(t, s, orgA); got != seats {
		t.Errorf("seats used: got %d, want %d", got, seats)
	}
	// Exactly the admitted people exist.
	found := 0
	for i, u := range users {
		_, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
			return tx.UserByIdentity(ctx, orgA, connS, u.ext)
		})
		switch {
		case err == nil:
			found++
			if errs[i] != nil {
				t.Errorf("user %d exists although its transaction failed with %v", i, errs[i])
			}
		case errors.Is(err, store.ErrNotFound):
			if errs[i] == nil {
				t.Errorf("user %d is missing although its transaction committed", i)
			}
		default:
			t.Errorf("UserByIdentity(%d): %v", i, err)
		}
	}
	if found != seats {
		t.Errorf("got %d users, want %d (one per seat used)", found, seats)
	}
}

// 20 deliveries of one first login race: one creates the user, the others
// conflict, and only the committed transaction's seat is counted.
func testSameIdentityRace(t *testing.T, s store.Store, seatFirst bool) {
	const deliveries = 20
	seed(t, s, 100)
	candidates := make([]person, deliveries)
	for i := range candidates {
		// Each delivery mints its own user id, as the provisioner does.
		candidates[i] = user(orgA, connS, "same@idp", fmt.Sprintf("same-%d@acme.example", i))
	}
	errs := race(deliveries, func(i int) error {
		return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
			if seatFirst {
				if _, err := tx.TakeSeat(ctx, orgA); err != nil {
					return err
				}
			}
			if _, err := create(ctx, tx, candidates[i]); err != nil {
				return err
			}
			if !seatFirst {
				if _, err := tx.TakeSeat(ctx, orgA); err != nil {
					return err
				}
			}
			return nil
		})
	})
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("deliveries %d and %d both created the user", winner, i)
			}
			winner = i
		case errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("delivery %d: got error %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no delivery created the user")
	}
	if got := seatsUsed(t, s, orgA); got != 1 {
		t.Errorf("seats used: got %d, want 1 (only the committed transaction's)", got)
	}
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "same@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity: %v", err)
	}
	if got.ID != candidates[winner].ID {
		t.Errorf("UserByIdentity: got user %s, want the winner's %s", got.ID, candidates[winner].ID)
	}
}

// UserByIdentity and UserByEmail lock the user until the transaction
// ends, so concurrent read-modify-write cycles of one user never lose an
// update.
func testLockedLookups(t *testing.T, s store.Store) {
	const writers = 10
	seed(t, s, 10)
	u := user(orgA, connS, "counted@idp", "Counted@acme.example")
	u.Attributes = map[string][]string{"logins": {"0"}}
	createUser(t, s, u)

	increment := func(lookup func(ctx context.Context, tx store.Tx) (store.User, error)) func(int) error {
		return func(int) error {
			return s.InTx(t.Context(), func(ctx context.Context, tx store.Tx) error {
				got, err := lookup(ctx, tx)
				if err != nil {
					return err
				}
				n, err := strconv.Atoi(got.Attributes["logins"][0])
				if err != nil {
					return err
				}
				got.Attributes["logins"] = []string{strconv.Itoa(n + 1)}
				_, err = tx.UpdateUser(ctx, got)
				return err
			})
		}
	}
	for _, c := range []struct {
		name   string
		lookup func(ctx context.Context, tx store.Tx) (store.User, error)
	}{
		{"UserByIdentity", func(ctx context.Context, tx store.Tx) (store.User, error) {
			return tx.UserByIdentity(ctx, orgA, connS, "counted@idp")
		}},
		{"UserByEmail", func(ctx context.Context, tx store.Tx) (store.User, error) {
			return tx.UserByEmail(ctx, orgA, "counted@ACME.example")
		}},
	} {
		for i, err := range race(writers, increment(c.lookup)) {
			if err != nil {
				t.Errorf("%s: writer %d: %v", c.name, i, err)
			}
		}
	}
	got, err := read(t, s, func(ctx context.Context, tx store.Tx) (store.User, error) {
		return tx.UserByIdentity(ctx, orgA, connS, "counted@idp")
	})
	if err != nil {
		t.Fatalf("UserByIdentity: %v", err)
	}
	if want := strconv.Itoa(2 * writers); len(got.Attributes["logins"]) != 1 || got.Attributes["logins"][0] != want {
		t.Errorf("after %d concurrent increments: got logins %v, want [%s] (an update was lost)",
			2*writers, got.Attributes["logins"], want)
	}
}
